"""suanli's MCP server (可对话): tools, resources and prompts for AI assistants.

An entry point beside `suanli.api` and `suanli.agent`: it calls the platform's HTTP API as
the user whose key it carries, so roles, tenant scoping, rate limits and audit are the API's
own. `suanli mcp` runs it over stdio; `suanli serve` mounts it at `/mcp` (streamable HTTP).
See docs/agents.md.
"""
