"""The platform's /v1 API as the MCP server sees it: one async HTTP client, one key per call."""

from __future__ import annotations

from typing import Any

import httpx

TIMEOUT_S = 30.0
MAX_ERROR_CHARS = 500


class PlatformError(Exception):
    """The platform refused a call (or could not be reached); `detail` is its own message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class Platform:
    """Calls /v1 over `client` (a loopback or remote base URL, or the node's own ASGI app)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    @classmethod
    def remote(cls, url: str) -> Platform:
        return cls(httpx.AsyncClient(base_url=url.rstrip("/"), timeout=TIMEOUT_S))

    @classmethod
    def in_process(cls, app: Any) -> Platform:
        """The node's own FastAPI app: every call still passes its middleware (body limit,
        key guard, rate limits, audit) and its routes' dependencies."""
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 0))
        return cls(httpx.AsyncClient(transport=transport, base_url="http://suanli.internal",
                                     timeout=TIMEOUT_S))

    async def call(self, api_key: str | None, method: str, path: str, *,
                   params: dict[str, Any] | None = None, json: Any = None,
                   text: bool = False, idempotency_key: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = await self._client.request(method, path, params=clean, json=json,
                                                  headers=headers)
        except httpx.HTTPError as exc:
            raise PlatformError(503, f"cannot reach the platform: {exc}") from None
        if response.status_code >= 400:
            raise PlatformError(response.status_code, _problem(response))
        if text:
            return response.text
        return response.json() if response.content else None

    async def aclose(self) -> None:
        await self._client.aclose()


def _problem(response: httpx.Response) -> str:
    """The problem+json detail (and the field it names), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:MAX_ERROR_CHARS]
    if not isinstance(body, dict):
        return str(body)[:MAX_ERROR_CHARS]
    detail = str(body.get("detail") or body.get("title") or "")
    field = body.get("field")
    return (f"{field}: {detail}" if field and field not in detail else detail)[:MAX_ERROR_CHARS]
