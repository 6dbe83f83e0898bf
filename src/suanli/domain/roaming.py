"""Compute roaming (算力漫游) rules: where a job may roam, how its home mirrors the host's job
states, and how a roaming charge is split between entitlements, the wallet and the platform.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from suanli.domain.jobs import TRANSITIONS, JobState

MAX_FORWARD_ATTEMPTS = 8  # hosts a job may be offered to before it waits for a local pool
STALE_SUMMARY_S = 300  # a catalog summary older than this is not used to place a job
MAX_ENTITLEMENT_PRICE_FEN_PER_UNIT_HOUR = Decimal(10**7)  # 100,000 CNY: a sanity bound
_MICRO = 10**6


# -- choosing a host -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RemoteOffer:
    """One catalog summary row of another platform, as placement sees it."""

    origin: str  # the platform's authority
    accelerator: str
    province: str
    hub: str
    free_devices: int
    max_free_in_pool: int
    min_price_fen_per_device_hour: int
    unit_price_fen: Decimal | None  # cheapest fen per compute-unit hour for the job's class
    age_s: float


def rank_offers(offers: Iterable[RemoteOffer], *, devices: int,
                max_price_fen_per_device_hour: int | None, excluded: frozenset[str],
                stale_s: float = STALE_SUMMARY_S) -> list[RemoteOffer]:
    """Offers that can take `devices` in one pool now, cheapest effective unit first."""
    fitting = [o for o in offers
               if o.origin not in excluded and o.max_free_in_pool >= devices
               and o.age_s <= stale_s
               and (max_price_fen_per_device_hour is None
                    or o.min_price_fen_per_device_hour <= max_price_fen_per_device_hour)]
    return sorted(fitting, key=lambda o: (o.unit_price_fen is None,
                                          o.unit_price_fen or Decimal(0),
                                          o.min_price_fen_per_device_hour, o.age_s, o.origin))


# -- mirroring the host's job state at home --------------------------------------------------

_NOT_MIRRORED = frozenset({JobState.PENDING, JobState.PLACED, JobState.PREEMPTED})


def mirror_path(home: JobState, host: JobState) -> list[JobState]:
    """The transitions that bring the home copy of a roaming job to the host's state.

    The home copy never goes back to PENDING or PLACED: the host requeues its own job on
    failover, and a home job back in PENDING would be placed a second time.
    """
    if home.is_terminal or host in _NOT_MIRRORED or home == host:
        return []
    # Shortest path through the state machine that avoids the states the home never takes.
    queue: deque[tuple[JobState, list[JobState]]] = deque([(home, [])])
    seen = {home}
    while queue:
        state, path = queue.popleft()
        for nxt in sorted(TRANSITIONS[state], key=lambda s: s.value):
            if nxt in seen or (nxt in _NOT_MIRRORED and nxt != host):
                continue
            if nxt == host:
                return [*path, nxt]
            seen.add(nxt)
            queue.append((nxt, [*path, nxt]))
    return []


# -- splitting a roaming charge at home ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EntitlementBalance:
    id: str
    remaining_units_micro: int  # compute-unit hours x 10^6
    remaining_fen: int  # what the tenant paid for the units that remain


@dataclass(frozen=True, slots=True)
class Draw:
    entitlement_id: str
    units_micro: int
    value_fen: int  # the paid value of the units drawn


@dataclass(frozen=True)
class HomeCharge:
    """How the home platform covers what it owes the host (`amount_fen`) for one record.

    covered_fen + voucher_fen + wallet_fen + unpaid_fen == amount_fen. `margin_fen` is
    entitlement value beyond the host's price for the covered units (negative: the home
    platform makes up the difference, because it sold the units cheaper than the host charges
    for them).
    """

    amount_fen: int
    draws: tuple[Draw, ...]
    covered_fen: int  # the host's price for the units entitlements covered
    voucher_fen: int  # paid by voucher programmes (算力券)
    wallet_fen: int  # taken from the tenant's wallet
    unpaid_fen: int  # due from the tenant later; the home platform pays the host meanwhile

    @property
    def entitlement_value_fen(self) -> int:
        return sum(d.value_fen for d in self.draws)

    @property
    def margin_fen(self) -> int:
        return self.entitlement_value_fen - self.covered_fen


def plan_home_charge(amount_fen: int, units_micro: int,
                     entitlements: Sequence[EntitlementBalance], wallet_available_fen: int,
                     prepaid: bool,
                     voucher_fen: Callable[[int], int] | None = None) -> HomeCharge:
    """Draw the home entitlements first (in the order given), then vouchers on what is left
    (`voucher_fen(rest)` says how much of it they pay), then the wallet; whatever a prepaid
    wallet cannot cover, and everything of a postpaid tenant, is unpaid (billed)."""
    assert amount_fen >= 0 and units_micro >= 0 and wallet_available_fen >= 0
    draws: list[Draw] = []
    wanted = units_micro
    for balance in entitlements:
        if wanted == 0:
            break
        assert 0 <= balance.remaining_fen and 0 <= balance.remaining_units_micro
        take = min(wanted, balance.remaining_units_micro)
        if take == 0:
            continue
        # The last units of an entitlement carry exactly the fen left, so it empties cleanly.
        value = (balance.remaining_fen if take == balance.remaining_units_micro
                 else balance.remaining_fen * take // balance.remaining_units_micro)
        draws.append(Draw(balance.id, take, value))
        wanted -= take
    drawn = units_micro - wanted
    covered = amount_fen * drawn // units_micro if units_micro else 0
    rest = amount_fen - covered
    discount = voucher_fen(rest) if voucher_fen is not None and rest > 0 else 0
    assert 0 <= discount <= rest, (discount, rest)
    rest -= discount
    wallet = rest if prepaid and wallet_available_fen >= rest else 0
    charge = HomeCharge(amount_fen, tuple(draws), covered, discount, wallet, rest - wallet)
    assert (charge.covered_fen + charge.voucher_fen + charge.wallet_fen + charge.unpaid_fen
            == amount_fen)
    return charge


# -- entitlements ----------------------------------------------------------------------------

def entitlement_price_fen(units_micro: int, fen_per_unit_hour: Decimal) -> int:
    """What `units_micro` compute-unit hours cost at the platform's price: rounded up to the
    fen (in the platform's favour), at least 1 fen, so no grant is free."""
    assert 1 <= units_micro and 0 < fen_per_unit_hour <= MAX_ENTITLEMENT_PRICE_FEN_PER_UNIT_HOUR
    exact = Decimal(units_micro) * fen_per_unit_hour / _MICRO
    return max(1, math.ceil(exact))


# -- what a host may charge for one forwarded attempt ----------------------------------------

def attempt_bound_fen(declared_max_fen: int, devices: int, time_limit_s: int,
                      max_price_fen_per_device_hour: int | None) -> int:
    """The most the home platform pays a host for one forwarded attempt, however many records
    it signs: what the host declared when it accepted (its tariff's highest price over the
    job's devices x time limit), and never more than the consumer's own ceiling, devices x
    time limit x max_price_fen_per_device_hour, when the job set one."""
    assert declared_max_fen >= 0 and devices >= 1 and time_limit_s >= 1
    if max_price_fen_per_device_hour is None:
        return declared_max_fen
    ceiling = math.ceil(Decimal(devices * time_limit_s * max_price_fen_per_device_hour) / 3600)
    return min(declared_max_fen, ceiling)
