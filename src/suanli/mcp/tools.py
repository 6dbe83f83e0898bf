"""The tools' bodies, free of the SDK's decorators: plain calls to the platform, the quote
book and the spend caps."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from suanli.catalog import ALIASES, load_catalog, load_cities
from suanli.domain import ask as asking
from suanli.domain.errors import NotFound
from suanli.domain.geo import City
from suanli.mcp.access import Access, Caller
from suanli.mcp.models import (
    AskOut,
    BidOut,
    JobOut,
    JobSpecIn,
    MarketOptionOut,
    MarketQuoteOut,
    MarketShapeIn,
    QuoteJobOut,
    QuoteOptionOut,
    SpendStatusOut,
    SubmitOut,
)
from suanli.mcp.platform import Platform, PlatformError
from suanli.mcp.safety import QUOTE_TTL_S, DailySpend, SpendRefused, check_caps, yuan


class Tools:
    """The tools' bodies, free of the SDK so they read as plain calls to the platform."""

    def __init__(self, platform: Platform, access: Access, daily: DailySpend,
                 now: Callable[[], datetime]) -> None:
        self.platform = platform
        self.access = access
        self.daily = daily
        self.now = now
        cities = self.cities = load_cities()
        self.vocabulary = asking.build_vocabulary(load_catalog().all(), cities, ALIASES)
        self.hub_provinces = asking.hub_provinces(cities)

    def caller(self, ctx: Context) -> Caller:
        try:
            return self.access.caller(ctx.headers)
        except SpendRefused as exc:
            raise ToolError(str(exc)) from None

    async def call(self, caller: Caller, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return await self.platform.call(caller.api_key, method, path, **kwargs)
        except PlatformError as exc:
            raise ToolError(f"the platform refused {method} {path}: {exc}") from None

    async def quote(self, caller: Caller, job: JobSpecIn, options: int,
                    near_city: str | None = None) -> QuoteJobOut:
        spec = job.model_dump()
        near = self._city(near_city) if near_city else None
        body = await self.call(caller, "POST", "/v1/quotes", json=spec,
                               params={"limit": options})
        flat = [_option(o, self._latency(o["city"], near)) for o in body["options"]]
        held = caller.session.remember(spec, [o.model_dump() for o in flat])
        return QuoteJobOut(quote_id=held.quote_id, expires_in_s=QUOTE_TTL_S,
                           candidates=body["candidates"], options=flat,
                           message=body.get("message", ""), spending=self._spending(caller))

    def _city(self, name: str) -> City:
        try:
            return self.cities.city(name)
        except NotFound as exc:
            raise ToolError(exc.detail) from None

    def _latency(self, city: str, near: City | None) -> float | None:
        if near is None:
            return None
        try:
            return round(self.cities.rtt_ms_between(city, near), 1)
        except NotFound:  # a pool's city the table does not hold
            return None

    async def market_quote(self, caller: Caller, block: MarketShapeIn) -> MarketQuoteOut:
        body = await self.call(caller, "POST", "/v1/market/quotes", json={
            "accelerator_class": block.accelerator_class, "location": block.location,
            "shape": _shape(block)})
        options = [MarketOptionOut(rank=rank, escrow_fen=_escrow(q["price_fen_per_unit_hour"],
                                                                 block), **q)
                   for rank, q in enumerate(body, start=1)]
        held = caller.session.remember(_market_spec(block),
                                       [o.model_dump() for o in options])
        return MarketQuoteOut(quote_id=held.quote_id, expires_in_s=QUOTE_TTL_S,
                              options=options, spending=self._spending(caller))

    def _spending(self, caller: Caller) -> str:
        policy = caller.policy
        if not policy.allow_spend:
            return ("read-only: this server does not spend (start it with --allow-spend, or "
                    "send X-Suanli-Allow-Spend: true)")
        today = self.daily.spent_today(caller.session.key_fingerprint, self.now())
        left = min(policy.max_session_fen - caller.session.spent_fen,
                   policy.max_day_fen - today)
        return f"may commit up to {yuan(left)} yuan more now (session and day caps)"

    async def submit(self, caller: Caller, quote_id: str, job: JobSpecIn,
                     option: int) -> SubmitOut:
        spec = job.model_dump()

        def cost_of(chosen: dict[str, Any]) -> int:
            estimate = chosen["estimated_cost_fen"]
            return int(chosen["hold_fen"] if estimate is None else estimate)

        async def send(chosen: dict[str, Any]) -> Any:
            price_cap = chosen["price_fen_per_device_hour"]
            if spec["max_price_fen_per_device_hour"] is not None:
                price_cap = min(price_cap, spec["max_price_fen_per_device_hour"])
            return await self.call(caller, "POST", "/v1/jobs", json={
                **spec, "pool_id": chosen["pool_id"], "max_price_fen_per_device_hour": price_cap},
                idempotency_key=f"mcp-{quote_id}")  # a retried submit is the same job

        body, cost, today = await self._commit(caller, quote_id, spec, option, cost_of, send)
        return SubmitOut(job=job_out(body), committed_fen=cost,
                         session_spent_fen=caller.session.spent_fen, today_spent_fen=today)

    async def bid(self, caller: Caller, quote_id: str, block: MarketShapeIn,
                  option: int) -> BidOut:
        async def send(chosen: dict[str, Any]) -> Any:
            return await self.call(caller, "POST", "/v1/market/orders", json={
                "client_order_id": f"mcp-{quote_id}", "side": "bid",
                "accelerator_class": block.accelerator_class, "location": block.location,
                "price_fen_per_unit_hour": chosen["price_fen_per_unit_hour"],
                "shape": _shape(block), "all_or_none": True})

        body, cost, today = await self._commit(caller, quote_id, _market_spec(block), option,
                                               lambda chosen: int(chosen["escrow_fen"]), send)
        return BidOut(order=body, committed_fen=cost,
                      session_spent_fen=caller.session.spent_fen, today_spent_fen=today)

    async def _commit(self, caller: Caller, quote_id: str, spec: dict[str, Any], option: int,
                      cost_of: Callable[[dict[str, Any]], int],
                      send: Callable[[dict[str, Any]], Awaitable[Any]]) -> tuple[Any, int, int]:
        """Check the quote and the caps, send, record: one commitment at a time per key, so
        the caps stay exact. Returns the platform's answer, the cost and today's sum."""
        if not caller.policy.allow_spend:
            raise ToolError("read-only: this server was not started to spend (suanli mcp "
                            "--allow-spend, or X-Suanli-Allow-Spend: true over HTTP)")
        session = caller.session
        async with self.access.sessions.key_lock(session.key_fingerprint):
            try:
                held = session.quote_for(quote_id, spec, time.monotonic())
                if not 1 <= option <= len(held.options):
                    raise SpendRefused(f"quote {quote_id} has options 1..{len(held.options)}")
                chosen = held.options[option - 1]
                cost = cost_of(chosen)
                today = self.daily.spent_today(session.key_fingerprint, self.now())
                check_caps(caller.policy, session, today, cost)
            except SpendRefused as exc:
                raise ToolError(str(exc)) from None
            body = await send(chosen)
            session.spent_fen += cost
            today = self.daily.add(session.key_fingerprint, cost, self.now())
            session.quotes.pop(quote_id, None)  # a quote buys one commitment
        return body, cost, today

    def status(self, caller: Caller) -> SpendStatusOut:
        policy = caller.policy
        return SpendStatusOut(
            spending_enabled=policy.allow_spend, destructive_enabled=policy.allow_destructive,
            max_session_fen=policy.max_session_fen, session_spent_fen=caller.session.spent_fen,
            max_day_fen=policy.max_day_fen,
            today_spent_fen=self.daily.spent_today(caller.session.key_fingerprint, self.now()))

    def ask(self, text: str) -> AskOut:
        try:
            parsed = asking.parse(text, self.vocabulary)
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        planned = asking.plan(parsed, self.hub_provinces)
        return AskOut(understood=list(parsed.understood), unknown=list(parsed.unknown),
                      ambiguous=list(parsed.ambiguous), search=planned.search,
                      searches_per_hub=list(planned.searches_per_hub), job=planned.quote)


def _option(option: dict[str, Any], latency_ms: float | None) -> QuoteOptionOut:
    estimate = option["estimate"]
    return QuoteOptionOut(**{**option, "estimated_cost_fen": estimate["estimated_cost_fen"],
                             "hold_fen": estimate["hold_fen"], "latency_ms": latency_ms})


def _shape(block: MarketShapeIn) -> dict[str, Any]:
    end = block.start + timedelta(hours=block.hours)
    return {"intervals": [[block.start.isoformat(), end.isoformat()]], "counts": [block.count]}


def _escrow(price_fen_per_unit_hour: int, block: MarketShapeIn) -> int:
    """A bid holds its worst case: the limit price for every unit of every hour."""
    return price_fen_per_unit_hour * block.count * block.hours


def _market_spec(block: MarketShapeIn) -> dict[str, Any]:
    return {"market": "bid", **block.model_dump(mode="json")}


def job_out(body: dict[str, Any]) -> JobOut:
    return JobOut(**{**body, "created_at": str(body["created_at"])})


