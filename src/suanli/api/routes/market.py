"""The exchange over HTTP (/v1/market): orders, books, the tape, the event log, bars, the price
index, reservations, requests for quote, and the operator's sweep and check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import ValidationError
from fastapi.responses import PlainTextResponse
from pydantic import AwareDatetime

from suanli.api.billing_schemas import LedgerCheckOut
from suanli.api.context import AppContext, context, principal
from suanli.api.problems import field_path, status_of
from suanli.api.market_schemas import (
    AnswerOut,
    BatchIn,
    BatchOut,
    BarOut,
    BookOut,
    EventOut,
    IndicativeOut,
    LegOut,
    LevelOut,
    MarketCheckOut,
    ProblemItemOut,
    ProblemOut,
    OrderIn,
    OrderOut,
    ProductOut,
    QuoteIn,
    QuoteOut,
    ReplaceIn,
    ResellIn,
    ReservationOut,
    SeriesOut,
    ShapeIn,
    ShapeOut,
    SweepOut,
    TradeOut,
)
from suanli.domain.errors import Forbidden, SuanliError, ValidationFailed
from suanli.domain.market.events import LOBSTER_TYPE, lobster_row
from suanli.domain.market.index import Period
from suanli.domain.market.orders import OrderRequest, OrderState, Shape, Side
from suanli.domain.market.products import check_accelerator_class, check_location
from suanli.domain.market.records import ProductRecord, Reservation, TradeRecord
from suanli.domain.market.rfq import QuoteRequest
from suanli.domain.tenants import Principal
from suanli.services.market import (
    batch,
    checks,
    data,
    exchange,
    index,
    reservations,
    resale,
    rfq,
    settlement,
    sweep,
)

router = APIRouter(prefix="/v1/market", tags=["market"])
Ctx = Annotated[AppContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
Limit = Annotated[int, Query(ge=1, le=1_000)]
METHODOLOGY = ("volume-weighted average price of printed trades (value / volume), per "
               "accelerator class and location, hourly and daily (China Standard Time); a bar "
               "is published once its period ends and never restated; trades between two "
               "orders of one member do not count (docs/market.md)")


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _s(moment: datetime) -> int:
    return int(moment.timestamp())


def _shape(shape: ShapeIn) -> Shape:
    """The body's shape as the domain's; its errors name `shape.<field>`."""
    try:
        return Shape(tuple((_s(a), _s(b)) for a, b in shape.intervals), tuple(shape.counts))
    except ValidationFailed as exc:
        raise ValidationFailed(exc.detail, field=f"shape.{exc.field}") from None


def _request(body: OrderIn) -> OrderRequest:
    shape = _shape(body.shape)
    return OrderRequest(Side(body.side), body.accelerator_class, body.location,
                        body.price_fen_per_unit_hour, shape, body.client_order_id,
                        body.min_fill, body.all_or_none,
                        None if body.good_till is None else _s(body.good_till), body.pool_id)


def _order_out(found: exchange.OrderView) -> OrderOut:
    order, r = found.order, found.order.request
    return OrderOut(
        id=order.id, client_order_id=r.client_order_id, tenant_id=order.tenant_id,
        side=r.side.value, accelerator_class=r.accelerator_class, location=r.location,
        price_fen_per_unit_hour=r.price_fen_per_unit_hour,
        shape=ShapeOut(intervals=[(_at(a), _at(b)) for a, b in r.shape.intervals],
                       counts=list(r.shape.counts)),
        min_fill=r.min_fill, all_or_none=r.all_or_none,
        good_till=None if r.good_till_s is None else _at(r.good_till_s), pool_id=r.pool_id,
        reservation_id=r.reservation_id, state=order.state.value, filled=found.filled, remaining=found.remaining,
        created_at=_at(order.created_s),
        legs=[LegOut(id=leg.id, index=leg.index, product_id=leg.product_id,
                     block_start=_at(leg.block_start_s),
                     price_fen_per_unit_hour=leg.price_fen_per_unit_hour, count=leg.count,
                     remaining=leg.remaining, filled=leg.filled, min_fill=leg.min_fill,
                     state=leg.state.value, good_till=_at(leg.good_till_ms // 1000),
                     hold_fen=leg.hold_fen, backing_devices=leg.backing_devices)
              for leg in found.legs])


def _product_out(product: ProductRecord) -> ProductOut:
    key = product.key
    return ProductOut(id=key.id, accelerator_class=key.accelerator_class,
                      location=key.location, unit=key.unit.value,
                      block_start=_at(key.block_start_s), block_end=_at(key.block_end_s),
                      rule=product.rule.value,
                      last_price_fen_per_unit_hour=product.last_price_fen,
                      next_uncross_at=None if product.next_uncross_s is None
                      else _at(product.next_uncross_s), seq=product.seq)


def _trade_out(trade: TradeRecord) -> TradeOut:
    aggressor: Literal["buy", "sell", "auction"] = (
        "buy" if trade.aggressor == 1 else "sell" if trade.aggressor == -1 else "auction")
    return TradeOut(id=trade.id, product_id=trade.product_id, seq=trade.seq,
                    at=datetime.fromtimestamp(trade.at_ms / 1000, UTC),
                    accelerator_class=trade.accelerator_class, location=trade.location,
                    price_fen_per_unit_hour=trade.price_fen_per_unit_hour,
                    quantity=trade.quantity, aggressor=aggressor, value_fen=trade.value_fen)


def _bar_out(bar: index.IndexBar) -> BarOut:
    b = bar.bar
    return BarOut(start=_at(b.start_s), end=_at(b.end_s), open=b.open, high=b.high, low=b.low,
                  close=b.close, volume=b.volume, value_fen=b.value_fen, trades=b.trades,
                  vwap_fen_per_unit_hour=str(b.vwap), final=bar.final,
                  published=bar.published)


def _reservation_out(r: Reservation) -> ReservationOut:
    return ReservationOut(id=r.id, product_id=r.product_id, pool_id=r.pool_id,
                          buyer_tenant_id=r.buyer_tenant_id,
                          seller_tenant_id=r.seller_tenant_id,
                          accelerator_class=r.accelerator_class, starts_at=_at(r.starts_s),
                          ends_at=_at(r.ends_s), quantity=r.quantity, devices=r.devices,
                          value_fen=r.value_fen, fee_fen=r.fee_fen,
                          paid_seller_fen=r.paid.seller_fen, paid_fee_fen=r.paid.fee_fen,
                          refunded_fen=r.refunded_fen, in_escrow_fen=r.in_escrow_fen,
                          resold=r.resold, devices_held=r.devices_held, state=r.state)


def _operator(caller: Principal) -> None:
    if not caller.is_operator:
        raise Forbidden("only an operator may do this")


# -- orders ----------------------------------------------------------------------------------

@router.post("/orders", status_code=201, response_model=OrderOut)
def place_order(body: OrderIn, response: Response, ctx: Ctx, caller: Caller) -> OrderOut:
    """Place a bid or an ask; the same client_order_id again returns the first order (200),
    a different order under it is a 409. An ask needs free devices on its pool for every
    hour; a bid needs its worst case (limit price x count) in the wallet, held in escrow."""
    request = _request(body)
    with ctx.db.unit_of_work() as session:
        placed, created = exchange.place(session, caller, request, ctx.clock.now())
        if not created:
            response.status_code = 200
        return _order_out(placed)


@router.post("/orders:batch", response_model=BatchOut)
def place_orders(body: BatchIn, ctx: Ctx, caller: Caller) -> BatchOut:
    """Place up to 500 orders in one transaction: each gets its own answer - 201 placed, 200
    the same client_order_id again, or its own error (422 naming the field, 402, 409) with
    nothing stored for it - and the others go on (docs/market.md)."""
    requests: list[OrderRequest | SuanliError] = []
    for item in body.orders:
        try:
            requests.append(_request(OrderIn.model_validate(item)))
        except ValidationError as exc:
            first = exc.errors()[0]
            requests.append(ValidationFailed(first["msg"].removeprefix("Value error, "),
                                             field=field_path(list(first["loc"]))))
        except SuanliError as exc:
            requests.append(exc)
    with ctx.db.unit_of_work() as session:
        answers = batch.place_many(session, caller, requests, ctx.clock.now())
        return BatchOut(answers=[_answer_out(a) for a in answers])


def _answer_out(answer: batch.Answer) -> AnswerOut:
    if answer.error is not None:
        status, title = status_of(answer.error)
        field = answer.error.field
        return AnswerOut(status=status, error=ProblemOut(
            title=title, status=status,
            detail=f"{field}: {answer.error.detail}" if field else answer.error.detail,
            errors=[ProblemItemOut(field=field, reason=answer.error.detail)] if field else []))
    assert answer.order is not None
    return AnswerOut(status=201 if answer.created else 200, order=_order_out(answer.order))


@router.get("/orders", response_model=list[OrderOut])
def list_orders(ctx: Ctx, caller: Caller, state: Literal["open", "done"] | None = None,
                limit: Limit = 100,
                tenant_id: Annotated[str | None, Query(max_length=72)] = None
                ) -> list[OrderOut]:
    """Your orders, newest first (operators: any tenant's, or everyone's)."""
    with ctx.db.unit_of_work() as session:
        return [_order_out(o) for o in exchange.list_orders(
            session, caller, state=None if state is None else OrderState(state), limit=limit,
            tenant_id=tenant_id)]


@router.get("/orders/{order_id}", response_model=OrderOut)
def get_order(order_id: str, ctx: Ctx, caller: Caller) -> OrderOut:
    with ctx.db.unit_of_work() as session:
        return _order_out(exchange.get(session, caller, order_id))


@router.delete("/orders/{order_id}", response_model=OrderOut)
def cancel_order(order_id: str, ctx: Ctx, caller: Caller) -> OrderOut:
    """Take the order's open hour blocks off their books; holds go back to the wallet."""
    with ctx.db.unit_of_work() as session:
        return _order_out(exchange.cancel(session, caller, order_id, ctx.clock.now()))


@router.patch("/orders/{order_id}", response_model=OrderOut)
def replace_order(order_id: str, body: ReplaceIn, ctx: Ctx, caller: Caller) -> OrderOut:
    """Cancel/replace: a new price, new counts per interval, a new good-till time. Only a
    smaller size keeps a block's time priority."""
    with ctx.db.unit_of_work() as session:
        return _order_out(exchange.replace_order(
            session, caller, order_id, ctx.clock.now(),
            price_fen_per_unit_hour=body.price_fen_per_unit_hour,
            counts=None if body.counts is None else tuple(body.counts),
            good_till_s=None if body.good_till is None else _s(body.good_till)))


# -- market data -----------------------------------------------------------------------------

@router.get("/products", response_model=list[ProductOut])
def list_products(ctx: Ctx, caller: Caller,
                  accelerator_class: Annotated[str | None, Query(max_length=48)] = None,
                  location: Annotated[str | None, Query(max_length=24)] = None,
                  limit: Limit = 100) -> list[ProductOut]:
    """Products whose block has not ended, earliest first."""
    if accelerator_class is not None:
        check_accelerator_class(accelerator_class)
    if location is not None:
        check_location(location)
    with ctx.db.unit_of_work() as session:
        return [_product_out(p) for p in data.products(
            session, accelerator_class=accelerator_class, location=location,
            now=ctx.clock.now(), limit=limit)]


@router.get("/products/{product_id}/book", response_model=BookOut)
def get_book(product_id: str, ctx: Ctx, caller: Caller,
             depth: Annotated[int, Query(ge=1, le=data.MAX_DEPTH)] = 10) -> BookOut:
    """The L2 book, and for a call auction the indicative price and imbalance."""
    with ctx.db.unit_of_work() as session:
        snapshot = data.book(session, product_id, depth)
    indicative = snapshot.indicative
    return BookOut(
        product=_product_out(snapshot.product),
        bids=[LevelOut(price_fen_per_unit_hour=v.price, quantity=v.quantity, orders=v.orders)
              for v in snapshot.bids],
        asks=[LevelOut(price_fen_per_unit_hour=v.price, quantity=v.quantity, orders=v.orders)
              for v in snapshot.asks],
        indicative=None if indicative is None else IndicativeOut(
            price_fen_per_unit_hour=indicative.price, volume=indicative.volume,
            buy_volume=indicative.buy_volume, sell_volume=indicative.sell_volume,
            imbalance=indicative.imbalance))


@router.get("/products/{product_id}/events", response_model=list[EventOut],
            responses={200: {"content": {"text/csv": {}}}})
def get_events(product_id: str, ctx: Ctx, caller: Caller,
               after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0, limit: Limit = 1_000,
               fmt: Annotated[Literal["json", "lobster"], Query(alias="format")] = "json"
               ) -> list[EventOut] | PlainTextResponse:
    """The book's event log; `format=lobster` gives LOBSTER's six message columns as CSV
    (time in seconds, type, order id, size, price, direction)."""
    with ctx.db.unit_of_work() as session:
        events = data.events(session, product_id, after_seq, limit)
    if fmt == "lobster":
        lines = [",".join(str(v) for v in lobster_row(e)) for e in events]
        return PlainTextResponse("\n".join(lines) + ("\n" if lines else ""),
                                 media_type="text/csv")
    return [EventOut(seq=e.seq, at=datetime.fromtimestamp(e.at_ms / 1000, UTC),
                     type=e.kind.value, lobster_type=LOBSTER_TYPE[e.kind], order_id=e.order_id,
                     size=e.size, price=e.price, direction=e.direction, contra_id=e.contra_id)
            for e in events]


@router.get("/products/{product_id}/ohlc", response_model=SeriesOut)
def get_ohlc(product_id: str, ctx: Ctx, caller: Caller,
             period: Literal["hour", "day"] = "hour") -> SeriesOut:
    """OHLC bars of one product, from its trades."""
    with ctx.db.unit_of_work() as session:
        data.product(session, product_id)
        bars = index.ohlc(session, product_id, Period(period), ctx.clock.now())
    return SeriesOut(series=product_id, period=period, methodology=METHODOLOGY,
                     bars=[_bar_out(b) for b in bars])


@router.post("/products/{product_id}/uncross", response_model=SweepOut)
def uncross(product_id: str, ctx: Ctx, caller: Caller) -> SweepOut:
    """Operators: run a call auction's uncross now, out of its hourly schedule."""
    with ctx.db.unit_of_work() as session:
        trades = exchange.uncross_now(session, caller, product_id, ctx.clock.now())
    return SweepOut(products=1, expired=0, uncrossed=1, trades=trades, settled=0,
                    bars_published=0)


@router.get("/trades", response_model=list[TradeOut])
def list_trades(ctx: Ctx, caller: Caller,
                product_id: Annotated[str | None, Query(max_length=96)] = None,
                accelerator_class: Annotated[str | None, Query(max_length=48)] = None,
                location: Annotated[str | None, Query(max_length=24)] = None,
                since: AwareDatetime | None = None, limit: Limit = 100) -> list[TradeOut]:
    """The trade tape, oldest first (who traded is not shown)."""
    with ctx.db.unit_of_work() as session:
        return [_trade_out(t) for t in data.tape(
            session, product_id=product_id, accelerator_class=accelerator_class,
            location=location, since_ms=None if since is None else int(since.timestamp() * 1000),
            limit=limit)]


@router.get("/index", response_model=SeriesOut)
def get_index(ctx: Ctx, caller: Caller, accelerator_class: Annotated[str, Query(max_length=48)],
              location: Annotated[str, Query(max_length=24)],
              period: Literal["hour", "day"] = "day", since: AwareDatetime | None = None,
              until: AwareDatetime | None = None) -> SeriesOut:
    """The price index of one accelerator class at one location (算力价格指数)."""
    check_accelerator_class(accelerator_class)
    check_location(location)
    now = ctx.clock.now()
    chosen = Period(period)
    until_s = _s(until) if until is not None else chosen.start_of(_s(now)) + chosen.seconds
    since_s = _s(since) if since is not None else until_s - 30 * 86_400
    with ctx.db.unit_of_work() as session:
        bars = index.index(session, accelerator_class, location, chosen, since_s, until_s, now)
    return SeriesOut(series=f"{accelerator_class}:{location}", period=period,
                     methodology=METHODOLOGY, bars=[_bar_out(b) for b in bars])


# -- reservations, quotes, operations --------------------------------------------------------

@router.get("/reservations", response_model=list[ReservationOut])
def list_reservations(ctx: Ctx, caller: Caller,
                      as_role: Annotated[Literal["buyer", "seller"], Query(alias="as")] = "buyer",
                      active_at: AwareDatetime | None = None, limit: Limit = 100,
                      tenant_id: Annotated[str | None, Query(max_length=72)] = None
                      ) -> list[ReservationOut]:
    """What your trades reserved, as buyer or as seller."""
    with ctx.db.unit_of_work() as session:
        return [_reservation_out(r) for r in reservations.list_reservations(
            session, caller, as_role=as_role, active_at=active_at, limit=limit,
            tenant_id=tenant_id)]


@router.post("/reservations/{reservation_id}/resell", status_code=201, response_model=OrderOut)
def resell(reservation_id: str, body: ResellIn, response: Response, ctx: Ctx,
           caller: Caller) -> OrderOut:
    """Offer unused reserved time again: an ask for `count` units of your reservation's block,
    backed by the reservation (at most what no other resale of it offers or sold). A trade
    moves those units to its buyer. The same client_order_id again is the same order (200)."""
    with ctx.db.unit_of_work() as session:
        placed, created = resale.resell(
            session, caller, reservation_id, price_fen_per_unit_hour=body.price_fen_per_unit_hour,
            count=body.count, client_order_id=body.client_order_id, now=ctx.clock.now(),
            min_fill=body.min_fill, all_or_none=body.all_or_none,
            good_till_s=None if body.good_till is None else _s(body.good_till))
        if not created:
            response.status_code = 200
        return _order_out(placed)


@router.post("/reservations/{reservation_id}/refund", response_model=ReservationOut)
def refund(reservation_id: str, ctx: Ctx, caller: Caller) -> ReservationOut:
    """Operators: the seller did not deliver; pay what was delivered, refund the rest."""
    with ctx.db.unit_of_work() as session:
        return _reservation_out(settlement.refund(session, caller, reservation_id,
                                                  ctx.clock.now()))


@router.post("/quotes", response_model=list[QuoteOut])
def request_quotes(body: QuoteIn, ctx: Ctx, caller: Caller) -> list[QuoteOut]:
    """A request for quote: every pool that can serve the whole shape answers with a price
    from its provider's pricing function, cheapest first. A quote commits nobody."""
    request = QuoteRequest(body.accelerator_class, body.location, _shape(body.shape))
    with ctx.db.unit_of_work() as session:
        quotes = rfq.quote(session, request, ctx.clock.now(), deadline_s=body.deadline_s)
    return [QuoteOut(pool_id=q.pool_id, provider_id=q.provider_id,
                     price_fen_per_unit_hour=q.price_fen_per_unit_hour, value_fen=q.value_fen)
            for q in quotes]


@router.post("/sweep", response_model=SweepOut)
def run_sweep(ctx: Ctx, caller: Caller) -> SweepOut:
    """Operators: run the market's background step now (expiry, due auctions, settlement,
    the index)."""
    _operator(caller)
    with ctx.db.unit_of_work() as session:
        report = sweep.sweep(session, ctx.clock.now())
    return SweepOut(products=report.books.products, expired=report.books.expired,
                    uncrossed=report.books.uncrossed, trades=report.books.trades,
                    settled=report.settled, bars_published=report.bars_published)


@router.get("/check", response_model=MarketCheckOut)
def check(ctx: Ctx, caller: Caller) -> MarketCheckOut:
    """Operators: the market's invariants and the ledger's (docs/market.md)."""
    _operator(caller)
    with ctx.db.unit_of_work() as session:
        report = checks.check(session)
    ledger = report.ledger
    return MarketCheckOut(ok=report.ok, members=report.members, problems=report.problems,
                          ledger=LedgerCheckOut(
                              ok=ledger.ok, accounts=ledger.accounts,
                              transfers=ledger.transfers,
                              debits_posted_fen=ledger.debits_posted_fen,
                              credits_posted_fen=ledger.credits_posted_fen,
                              debits_pending_fen=ledger.debits_pending_fen,
                              credits_pending_fen=ledger.credits_pending_fen,
                              problems=ledger.problems))
