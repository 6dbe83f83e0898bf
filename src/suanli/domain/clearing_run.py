"""One clearing run over columns of entries, vectorised: match each record's two reports by
id, net the records both sides agree on, and fingerprint what each platform is party to.

Entries travel and are held as columns (one list per field), so a million of them become
NumPy arrays without a Python object per record. Record ids are matched through 64-bit hashes
(checked for collisions, with an exact fallback), amounts and digests compared as arrays.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from suanli.domain.clearing import net_arrays

FIELDS = ("record_id", "home", "host", "amount_fen", "digest")
MASK64 = (1 << 64) - 1
# A column is a list while entries are appended, an array once concatenated from parts.
StrColumn: TypeAlias = Sequence[str] | NDArray[Any]
IntColumn: TypeAlias = Sequence[int] | NDArray[np.int64]


@dataclass
class Entries:
    """Reports of roaming records as columns: `record_id[i]`, `home[i]`, ... are one entry."""

    record_id: StrColumn = field(default_factory=list)
    home: StrColumn = field(default_factory=list)
    host: StrColumn = field(default_factory=list)
    amount_fen: IntColumn = field(default_factory=list)
    digest: StrColumn = field(default_factory=list)  # hex SHA-256 of the signed record

    def __len__(self) -> int:
        return len(self.record_id)

    def append(self, record_id: str, home: str, host: str, amount_fen: int,
               digest: str) -> None:
        """Add one entry (to an Entries built from lists)."""
        for name, value in zip(FIELDS, (record_id, home, host, amount_fen, digest),
                               strict=True):
            getattr(self, name).append(value)

    @classmethod
    def concatenate(cls, parts: Sequence[dict[str, NDArray[Any]]]) -> Entries:
        """One Entries of array columns from several dicts of array columns."""
        if not parts:
            return cls()
        return cls(*(np.concatenate([part[name] for part in parts]) for name in FIELDS))

    def rows(self) -> Iterable[tuple[str, str, str, int, str]]:
        return zip(self.record_id, self.home, self.host, self.amount_fen, self.digest,
                   strict=True)


def fingerprint(items: Iterable[tuple[int, str]]) -> str:
    """`count:total_fen:sum` over (amount, record digest) pairs, order-free: the sum is the
    records' digests' first 64 bits added mod 2**64, so one record more, less or different
    changes it (two differences cancel only by a 2**-64 chance)."""
    count = total = acc = 0
    for amount, digest in items:
        count += 1
        total += amount
        acc = (acc + int(digest[:16], 16)) & MASK64
    return f"{count}:{total}:{acc:016x}"


@dataclass(frozen=True)
class Mismatch:
    record_id: str
    home: str
    host: str
    home_amount_fen: int
    host_amount_fen: int
    home_digest: str
    host_digest: str


@dataclass(frozen=True)
class Cleared:
    agreed: int  # records netted
    missing_at_home: int
    missing_at_host: int
    mismatched: list[Mismatch]
    gross: dict[tuple[str, str], int]  # (debtor, creditor) -> fen
    positions: dict[str, int]  # multilateral, for each platform party to a netted record
    bilateral: dict[tuple[str, str], int]  # (a, b), a < b -> what a owes b net
    fingerprints: dict[str, str]  # platform -> fingerprint of the records it is party to
    excluded: dict[str, list[tuple[str, str]]]  # platform -> (record id, why) left out


def clear(home_side: Entries, host_side: Entries) -> Cleared:
    """Match and net. `home_side` holds the home platforms' reports, `host_side` the hosts'."""
    names = sorted({str(n) for column in (home_side.home, home_side.host, host_side.home,
                                          host_side.host) for n in set(column)})
    index = {name: i for i, name in enumerate(names)}
    hk, ck = _keys(home_side.record_id, host_side.record_id)
    common, hi, ci = np.intersect1d(hk, ck, assume_unique=True, return_indices=True)
    h_home, h_host = _indices(home_side.home, index), _indices(home_side.host, index)
    c_home, c_host = _indices(host_side.home, index), _indices(host_side.host, index)
    h_amount = np.asarray(home_side.amount_fen, dtype=np.int64)
    c_amount = np.asarray(host_side.amount_fen, dtype=np.int64)
    h_digest, c_digest = _prefixes(home_side.digest), _prefixes(host_side.digest)
    same = ((h_amount[hi] == c_amount[ci]) & (h_digest[hi] == c_digest[ci])
            & (h_home[hi] == c_home[ci]) & (h_host[hi] == c_host[ci]))
    agreed = hi[same]
    debtor, creditor, amount = h_home[agreed], h_host[agreed], h_amount[agreed]
    gross, positions, bilateral, fingerprints = {}, {}, {}, {}
    if len(agreed):
        netted = net_arrays(debtor, creditor, amount, len(names))
        for d, c in zip(*np.nonzero(netted.gross), strict=True):
            gross[(names[d], names[c])] = int(netted.gross[d, c])
        parties = np.union1d(debtor, creditor)
        positions = {names[p]: int(netted.positions[p]) for p in parties.tolist()}
        for a, b in {tuple(sorted(pair)) for pair in gross}:
            bilateral[(a, b)] = gross.get((a, b), 0) - gross.get((b, a), 0)
        fingerprints = _fingerprints(debtor, creditor, amount, h_digest[agreed], names)
    excluded: dict[str, list[tuple[str, str]]] = defaultdict(list)
    home_only = np.setdiff1d(np.arange(len(home_side)), hi, assume_unique=True)
    host_only = np.setdiff1d(np.arange(len(host_side)), ci, assume_unique=True)
    for i in host_only.tolist():
        _exclude(excluded, host_side, i, f"missing at home platform {host_side.home[i]}")
    for i in home_only.tolist():
        _exclude(excluded, home_side, i, f"missing at host platform {home_side.host[i]}")
    mismatched = []
    for h, c in zip(hi[~same].tolist(), ci[~same].tolist(), strict=True):
        _exclude(excluded, home_side, h, "home and host hold different content")
        if host_side.home[c] != home_side.home[h] or host_side.host[c] != home_side.host[h]:
            _exclude(excluded, host_side, c, "home and host hold different content")
        mismatched.append(Mismatch(str(home_side.record_id[h]), str(home_side.home[h]),
                                   str(home_side.host[h]), int(home_side.amount_fen[h]),
                                   int(host_side.amount_fen[c]), str(home_side.digest[h]),
                                   str(host_side.digest[c])))
    del common
    mismatched.sort(key=lambda m: m.record_id)
    return Cleared(len(agreed), len(host_only), len(home_only), mismatched, gross, positions,
                   dict(sorted(bilateral.items())), fingerprints, dict(excluded))


def _keys(home_ids: StrColumn, host_ids: StrColumn) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Integer keys of the ids: 64-bit hashes, or — if two ids of one side collide — numbers
    handed out through a dictionary. Two different ids of the two sides that collide would be
    paired, and then fail the digest comparison (each record's digest covers its id): the
    record is reported mismatched, never netted against the wrong one."""
    hk = np.fromiter(map(hash, home_ids), np.int64, len(home_ids))
    ck = np.fromiter(map(hash, host_ids), np.int64, len(host_ids))
    if _distinct(hk) and _distinct(ck):
        return hk, ck
    numbers: dict[str, int] = {}
    hk = np.fromiter((numbers.setdefault(i, len(numbers)) for i in home_ids), np.int64,
                     len(home_ids))
    ck = np.fromiter((numbers.setdefault(i, len(numbers)) for i in host_ids), np.int64,
                     len(host_ids))
    assert _distinct(hk) and _distinct(ck), "a record id is reported twice by the same side"
    return hk, ck


def _distinct(keys: NDArray[np.int64]) -> bool:
    ordered = np.sort(keys)
    return bool((ordered[1:] != ordered[:-1]).all())


def _indices(names: StrColumn, index: dict[str, int]) -> NDArray[np.int64]:
    return np.fromiter(map(index.__getitem__, names), np.int64, len(names))


_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(10, dtype=np.uint8)
_HEX[np.frombuffer(b"abcdef", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint8)
_HEX[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint8)


def _prefixes(digests: StrColumn) -> NDArray[np.uint64]:
    """The first 64 bits of each hex digest as uint64, decoded without a Python loop."""
    if len(digests) == 0:
        return np.zeros(0, dtype=np.uint64)
    text = np.asarray(digests, dtype="S16")  # ASCII hex, cut to 16 digits
    nibbles = _HEX[text.view(np.uint8).reshape(len(digests), 16)]
    assert int(nibbles.max()) < 16, "digests must be hex"
    octets = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return np.ascontiguousarray(octets).view(">u8").reshape(len(digests)).astype(np.uint64)


def _fingerprints(debtor: NDArray[np.int64], creditor: NDArray[np.int64],
                  amount: NDArray[np.int64], digest: NDArray[np.uint64],
                  names: list[str]) -> dict[str, str]:
    n = len(names)
    counts = np.bincount(debtor, minlength=n) + np.bincount(creditor, minlength=n)
    totals = np.zeros(n, dtype=np.int64)
    np.add.at(totals, debtor, amount)
    np.add.at(totals, creditor, amount)
    sums = np.zeros(n, dtype=np.uint64)  # uint64 addition wraps: exactly mod 2**64
    np.add.at(sums, debtor, digest)
    np.add.at(sums, creditor, digest)
    return {names[p]: f"{int(counts[p])}:{int(totals[p])}:{int(sums[p]):016x}"
            for p in range(n) if counts[p]}


def _exclude(excluded: dict[str, list[tuple[str, str]]], side: Entries, i: int,
             reason: str) -> None:
    for platform in (str(side.home[i]), str(side.host[i])):
        excluded[platform].append((str(side.record_id[i]), reason))
