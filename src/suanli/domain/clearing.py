"""Clearing (清算) between platforms: business dates, bilateral and multilateral netting
(scalar and vectorised), and the payments that settle net positions. Matching the two reports
of each record and netting a whole run at once is in domain.clearing_run.

An obligation is one roaming record seen from the money's side: the home platform (whose
tenant used the compute) owes the host platform (whose provider ran it) `amount_fen`.

- bilateral netting: for each pair of platforms, what one owes the other after offsetting
  what the other owes it;
- multilateral netting (through the national clearing house): one net position per platform,
  positive = it receives, negative = it pays; the positions always sum to zero, and each one
  equals the sum of that platform's bilateral nets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from suanli.domain.errors import ValidationFailed
from suanli.domain.time import SHANGHAI

MAX_RECORD_FEN = 10**15
_FLOAT_EXACT = 2**53  # float64 adds integers exactly below this


def business_date(moment: datetime, cutoff_hour: int = 0) -> str:
    """The clearing day a moment belongs to: its date in Asia/Shanghai, where a day ends at
    `cutoff_hour`:00 (0 = midnight). ISO text, e.g. '2026-11-02'."""
    assert moment.tzinfo is not None, "business dates need aware datetimes"
    assert 0 <= cutoff_hour <= 23
    local = moment.astimezone(SHANGHAI) - timedelta(hours=cutoff_hour)
    return local.date().isoformat()


def cutoff_instant(day: str, cutoff_hour: int = 0) -> datetime:
    """When business day `day` closes: the next day at cutoff_hour:00 Asia/Shanghai."""
    parsed = parse_date(day)
    return datetime(parsed.year, parsed.month, parsed.day, cutoff_hour, tzinfo=SHANGHAI) + \
        timedelta(days=1)


def parse_date(text: str, field: str = "business_date") -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValidationFailed("must be a date like 2026-11-02", field=field) from None


@dataclass(frozen=True, slots=True)
class Obligation:
    debtor: str  # the home platform
    creditor: str  # the host platform
    amount_fen: int

    def __post_init__(self) -> None:
        assert self.debtor != self.creditor, "a platform does not roam on itself"
        assert isinstance(self.amount_fen, int) and 0 <= self.amount_fen <= MAX_RECORD_FEN


def gross_by_pair(obligations: Iterable[Obligation]) -> dict[tuple[str, str], int]:
    """(debtor, creditor) -> what the debtor owes the creditor before any netting."""
    gross: dict[tuple[str, str], int] = defaultdict(int)
    for item in obligations:
        gross[(item.debtor, item.creditor)] += item.amount_fen
    return dict(gross)


def bilateral_positions(obligations: Iterable[Obligation]) -> dict[tuple[str, str], int]:
    """For each pair (a, b) with a < b: what a owes b net (negative: b owes a)."""
    net: dict[tuple[str, str], int] = defaultdict(int)
    for (debtor, creditor), amount in gross_by_pair(obligations).items():
        if debtor < creditor:
            net[(debtor, creditor)] += amount
        else:
            net[(creditor, debtor)] -= amount
    return dict(net)


def multilateral_positions(obligations: Iterable[Obligation]) -> dict[str, int]:
    """Each platform's net position against the clearing house: positive receives."""
    positions: dict[str, int] = defaultdict(int)
    for item in obligations:
        positions[item.creditor] += item.amount_fen
        positions[item.debtor] -= item.amount_fen
    result = dict(positions)
    _require(sum(result.values()) == 0, "multilateral positions must sum to zero")
    return result


def positions_from_bilateral(bilateral: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """The multilateral positions implied by bilateral nets (the two must agree)."""
    positions: dict[str, int] = defaultdict(int)
    for (a, b), a_owes_b in bilateral.items():
        positions[a] -= a_owes_b
        positions[b] += a_owes_b
    return dict(positions)


def house_payments(positions: Mapping[str, int]) -> list[tuple[str, int]]:
    """Settlement through the house: (platform, amount) — negative pays in, positive is paid."""
    return sorted(((p, v) for p, v in positions.items() if v), key=lambda item: item[0])


def direct_payments(positions: Mapping[str, int]) -> list[tuple[str, str, int]]:
    """A set of at most n-1 payments (payer, payee, fen) that settles every position without a
    house: the largest payer pays the largest receiver, repeatedly."""
    payers = sorted(((-v, p) for p, v in positions.items() if v < 0), reverse=True)
    payees = sorted(((v, p) for p, v in positions.items() if v > 0), reverse=True)
    _require(sum(v for v, _ in payers) == sum(v for v, _ in payees), "positions do not balance")
    payments: list[tuple[str, str, int]] = []
    i = j = 0
    owed = [v for v, _ in payers]
    due = [v for v, _ in payees]
    while i < len(payers) and j < len(payees):
        amount = min(owed[i], due[j])
        payments.append((payers[i][1], payees[j][1], amount))
        owed[i] -= amount
        due[j] -= amount
        i += owed[i] == 0
        j += due[j] == 0
    return payments


# -- vectorised netting ----------------------------------------------------------------------

@dataclass(frozen=True)
class NettedArrays:
    """Netting of n platforms: `gross[d, c]` is what d owes c, `positions[p]` p's net."""

    gross: NDArray[np.int64]  # (n, n)
    positions: NDArray[np.int64]  # (n,)

    def bilateral(self) -> NDArray[np.int64]:
        """(n, n): net[a, b] = what a owes b after offsetting (antisymmetric)."""
        net: NDArray[np.int64] = self.gross - self.gross.T
        return net


def net_arrays(debtor: NDArray[np.integer[Any]], creditor: NDArray[np.integer[Any]],
               amount_fen: NDArray[np.integer[Any]], platforms: int) -> NettedArrays:
    """Net millions of obligations at once; indices are platform numbers 0..platforms-1.

    Sums are exact: float64 bincount while the total stays below 2**53, otherwise an integer
    sort-and-reduce.
    """
    assert debtor.shape == creditor.shape == amount_fen.shape and debtor.ndim == 1
    assert 1 <= platforms <= 4096, "a clearing run nets at most 4096 platforms"
    amounts = amount_fen.astype(np.int64, copy=False)
    if len(amounts):
        assert int(amounts.min()) >= 0 and int(amounts.max()) <= MAX_RECORD_FEN
        assert int(debtor.min()) >= 0 and int(max(debtor.max(), creditor.max())) < platforms
        assert not np.any(debtor == creditor), "a platform does not roam on itself"
    pair = debtor.astype(np.int64) * platforms + creditor.astype(np.int64)
    cells = platforms * platforms
    if int(amounts.sum(dtype=np.float64)) < _FLOAT_EXACT:
        gross = np.bincount(pair, weights=amounts, minlength=cells).astype(np.int64)
    else:
        gross = np.zeros(cells, dtype=np.int64)
        order = np.argsort(pair, kind="stable")
        sorted_pair = pair[order]
        starts = np.flatnonzero(np.r_[True, sorted_pair[1:] != sorted_pair[:-1]])
        gross[sorted_pair[starts]] = np.add.reduceat(amounts[order], starts)
    matrix = gross.reshape(platforms, platforms)
    positions = matrix.sum(axis=0) - matrix.sum(axis=1)  # received minus paid
    _require(int(positions.sum()) == 0, "multilateral positions must sum to zero")
    return NettedArrays(matrix, positions)


def _require(condition: bool, message: str) -> None:
    # Not `assert`: money invariants must hold under `python -O` too.
    if not condition:
        raise AssertionError(message)
