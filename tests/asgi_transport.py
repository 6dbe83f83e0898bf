"""An httpx transport that hands each request to an app's TestClient.

Starlette's TestClient is built on `httpx2` when that package is installed (the `mcp` SDK
brings it in) and on `httpx` otherwise; suanli's own clients (agent, peers) use `httpx`.
Reaching into `TestClient._transport` gave them responses of the wrong library. This
transport asks the TestClient, whichever library it runs on, and answers an `httpx.Response`.
"""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient


class TestClientTransport(httpx.BaseTransport):
    """Requests from an `httpx.Client`, answered in process by a TestClient's app."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.client.request(request.method, str(request.url),
                                     headers=list(request.headers.multi_items()),
                                     content=request.read())
        return httpx.Response(answer.status_code, headers=list(answer.headers.multi_items()),
                              content=answer.content, request=request)
