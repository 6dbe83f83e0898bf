"""The console's one way to data: the node's own API, called in-process with the caller's key.

The request goes through the whole application (authentication, scopes, tenant scoping, rate
limits, the audit log) exactly as one from `suanli` or curl would, so the console cannot show
or do more than the key may.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request

API_TIMEOUT_S = 30.0
INTERNAL_BASE = "http://console.internal"  # never resolved: the transport is the app itself


class ApiError(Exception):
    """An API answer other than 2xx: its status and the problem's detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class Api:
    """The API as the signed-in key sees it (or anonymously, for the sign-in check)."""

    def __init__(self, request: Request, key: str) -> None:
        client = request.client
        self._transport = httpx.ASGITransport(
            app=request.app, client=(client.host, client.port) if client else ("127.0.0.1", 0))
        self._headers = {"Authorization": f"Bearer {key}"}

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self._transport, base_url=INTERNAL_BASE,
                                 headers=self._headers, timeout=API_TIMEOUT_S)

    async def raw(self, method: str, path: str, *, params: Any = None, json: Any = None,
                  headers: dict[str, str] | None = None) -> httpx.Response:
        async with self._client() as client:
            return await client.request(method, path, params=params, json=json,
                                        headers=headers)

    async def call(self, method: str, path: str, *, params: Any = None, json: Any = None,
                   headers: dict[str, str] | None = None) -> Any:
        response = await self.raw(method, path, params=params, json=json, headers=headers)
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response.json()

    async def get(self, path: str, params: Any = None) -> Any:
        return await self.call("GET", path, params=params)

    async def get_or_none(self, path: str, params: Any = None) -> Any:
        """The answer, or None where the key may not see it or it does not exist."""
        try:
            return await self.get(path, params)
        except ApiError as error:
            if error.status in (403, 404, 409, 422):
                return None
            raise

    async def post(self, path: str, json: Any, headers: dict[str, str] | None = None) -> Any:
        return await self.call("POST", path, json=json, headers=headers)

    async def all_pages(self, path: str, params: dict[str, Any], max_items: int) -> list[Any]:
        """Every item of a paged listing, up to `max_items` (a bound, asserted by the caller's
        page size)."""
        items: list[Any] = []
        offset = 0
        while len(items) < max_items:
            page = await self.get(path, {**params, "offset": offset})
            items.extend(page["items"])
            if page.get("next_offset") is None:
                break
            offset = page["next_offset"]
        return items[:max_items]


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)
    return str(body)
