"""Allocates serials for new compute identifiers, one counter per parent and kind."""

from __future__ import annotations

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import registry as repo
from suanli.domain.ids import ComputeId, IdKind

MAX_ALLOCATE_ATTEMPTS = 3


def allocate(session: Session, parent: ComputeId, kind: IdKind) -> ComputeId:
    """The next identifier of `kind` under `parent`; unique even under concurrent callers.

    The UPDATE takes a row lock (PostgreSQL) or the write lock (SQLite), so two transactions
    never read the same serial.
    """
    key = str(parent)
    for _ in range(MAX_ALLOCATE_ATTEMPTS):
        serial = repo.next_serial(session, key, kind.value)
        if serial is not None:
            return parent.child(kind, serial)
        if repo.create_counter(session, key, kind.value):
            return parent.child(kind, 1)
    raise RuntimeError(f"could not allocate a {kind.value} identifier under {key}")


def allocate_committed(session: Session, parent: ComputeId, kind: IdKind) -> ComputeId:
    """Like `allocate`, but in a transaction of its own that commits at once.

    A hot counter (every job of a platform draws from one) would otherwise stay row-locked
    until the caller's whole transaction ends, serialising all of them. The price is a gap in
    the serials when the caller later rolls back, which identifiers allow. On SQLite it is
    `allocate` in the caller's transaction (see `repo.committed_at_once`).
    """
    with repo.committed_at_once(session) as own:
        return allocate(own, parent, kind)


def current_serial(session: Session, parent: ComputeId, kind: IdKind) -> int:
    return repo.last_serial(session, str(parent), kind.value)
