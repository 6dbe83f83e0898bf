"""Allocates serials for new compute identifiers, one counter per parent and kind."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from suanli.adapters.store.database import engine_of
from suanli.adapters.store.tables import IdCounter
from suanli.domain.ids import ComputeId, IdKind

MAX_ALLOCATE_ATTEMPTS = 3


def allocate(session: Session, parent: ComputeId, kind: IdKind) -> ComputeId:
    """The next identifier of `kind` under `parent`; unique even under concurrent callers.

    The UPDATE takes a row lock (PostgreSQL) or the write lock (SQLite), so two transactions
    never read the same serial.
    """
    key = str(parent)
    for _ in range(MAX_ALLOCATE_ATTEMPTS):
        serial = session.execute(
            update(IdCounter)
            .where(IdCounter.parent == key, IdCounter.kind == kind.value)
            .values(next_serial=IdCounter.next_serial + 1)
            .returning(IdCounter.next_serial)
        ).scalar_one_or_none()
        if serial is not None:
            return parent.child(kind, serial - 1)
        if _insert_counter(session, key, kind):
            return parent.child(kind, 1)
    raise RuntimeError(f"could not allocate a {kind.value} identifier under {key}")


def allocate_committed(session: Session, parent: ComputeId, kind: IdKind) -> ComputeId:
    """Like `allocate`, but in a transaction of its own that commits at once.

    A hot counter (every job of a platform draws from one) would otherwise stay row-locked
    until the caller's whole transaction ends, serialising all of them. The price is a gap in
    the serials when the caller later rolls back, which identifiers allow.
    """
    if session.get_bind().dialect.name == "sqlite":
        # One write lock for the whole file, which the caller's transaction holds from its
        # BEGIN IMMEDIATE: a second connection would wait for it until busy_timeout.
        return allocate(session, parent, kind)
    with Session(engine_of(session)) as own, own.begin():
        return allocate(own, parent, kind)


def _insert_counter(session: Session, key: str, kind: IdKind) -> bool:
    """Create the counter at 2 (serial 1 is taken by the caller); False if another won the race."""
    dialect = session.get_bind().dialect.name
    insert: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(IdCounter) if dialect == "postgresql" else sqlite.insert(IdCounter))
    inserted = session.execute(
        insert
        .values(parent=key, kind=kind.value, next_serial=2)
        .on_conflict_do_nothing()
        .returning(IdCounter.next_serial)
    ).scalar_one_or_none()
    return inserted is not None


def current_serial(session: Session, parent: ComputeId, kind: IdKind) -> int:
    value = session.scalar(
        select(IdCounter.next_serial).where(
            IdCounter.parent == str(parent), IdCounter.kind == kind.value
        )
    )
    return 0 if value is None else value - 1
