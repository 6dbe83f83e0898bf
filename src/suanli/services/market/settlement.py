"""Settlement (结算): escrow pays the seller and the platform's fee as each reserved block is
delivered, pro rata to the reserved time that has passed; an operator refunds what a seller
could not deliver."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import market as repo
from suanli.domain.accounts import FEES_ACCOUNT, receivable_account_id, wallet_account_id
from suanli.domain.errors import Conflict, Forbidden, NotFound
from suanli.domain.ledger import Transfer
from suanli.domain.market.records import Reservation, ReservationState
from suanli.domain.market.settlement import Due, escrow_account_id, next_payment
from suanli.domain.tenants import Principal
from suanli.services.market import escrow

MAX_SETTLE = 1_000  # reservations one sweep settles


def _pay(reservation: Reservation, now_s: int) -> tuple[Reservation, list[Transfer]]:
    """The payment that brings a reservation up to date, and the reservation after it."""
    r = reservation
    payment = next_payment(r.value_fen, r.fee_fen, now_s - r.starts_s, r.ends_s - r.starts_s,
                           r.paid)
    paid = Due(r.paid.seller_fen + payment.seller_fen, r.paid.fee_fen + payment.fee_fen)
    transfers = []
    # Ids carry the running total, which only grows: a retry of the same step is the same id.
    if payment.seller_fen:
        transfers.append(escrow.pay(f"{r.id}:s{paid.seller_fen}", r.buyer_tenant_id,
                                    r.seller_tenant_id, payment.seller_fen, r.id))
    if payment.fee_fen:
        transfers.append(escrow.fee(f"{r.id}:f{paid.fee_fen}", r.buyer_tenant_id,
                                    payment.fee_fen, r.id))
    state = ReservationState.SETTLED if now_s >= r.ends_s else r.state
    return replace(r, paid=paid, state=state), transfers


def _accounts(reservation: Reservation) -> set[str]:
    return {escrow_account_id(reservation.buyer_tenant_id), FEES_ACCOUNT,
            receivable_account_id(reservation.seller_tenant_id),
            wallet_account_id(reservation.buyer_tenant_id)}


def settle_due(session: Session, now: datetime, limit: int = MAX_SETTLE) -> int:
    """Pay out every started reservation up to now; returns how many moved money."""
    now_s = int(now.timestamp())
    due = repo.reservations(session, state=ReservationState.RESERVED, started_before=now,
                            limit=limit, for_update=True)
    changed, transfers, accounts = [], [], set()
    for reservation in due:
        settled, moves = _pay(reservation, now_s)
        if settled != reservation:
            changed.append(settled)
            transfers += moves
            accounts |= _accounts(reservation)
    escrow.apply(session, transfers, accounts, now)
    repo.update_reservations(session, changed, now)
    return len(changed)


def refund(session: Session, principal: Principal, reservation_id: str, now: datetime
           ) -> Reservation:
    """An operator finds the seller did not deliver: pay what was delivered up to now, give
    the rest of the escrow back to the buyer's wallet, and end the reservation."""
    if not principal.is_operator:
        raise Forbidden("only an operator refunds a reservation")
    found = repo.reservations(session, state=None, limit=1, for_update=True,
                              reservation_id=reservation_id)
    if not found:
        raise NotFound(f"reservation {reservation_id} does not exist", field="reservation_id")
    reservation = found[0]
    if reservation.state != ReservationState.RESERVED:
        raise Conflict(f"reservation {reservation_id} is {reservation.state}",
                       field="reservation_id")
    settled, transfers = _pay(reservation, int(now.timestamp()))
    left = settled.in_escrow_fen
    if left and settled.state == ReservationState.RESERVED:
        transfers.append(escrow.refund(f"{settled.id}:r{left}", settled.buyer_tenant_id, left,
                                       settled.id))
        settled = replace(settled, refunded_fen=left, state=ReservationState.REFUNDED)
    escrow.apply(session, transfers, _accounts(reservation), now)
    repo.update_reservations(session, [settled], now)
    return settled
