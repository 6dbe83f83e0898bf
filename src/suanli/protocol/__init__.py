"""The wires: one module of message models per protocol, used by both of its ends.

`agent`: provider agents <-> platform (`/v1/agents`); `federation`: platform <-> platform
(`/federation/v1`, signed). Below services and the entry points; imports domain and pydantic
only.
"""
