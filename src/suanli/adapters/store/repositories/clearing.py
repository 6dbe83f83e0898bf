"""Clearing in the database: cycles, statements, and the records a cycle takes in, settles
and lets go, as pure records (`suanli.domain.federation_records`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from suanli.adapters.store.federation_tables import (
    ClearingCycleRow,
    ClearingStatementRow,
    RoamingRecordRow,
)
from suanli.domain.federation_records import (
    ClearingCycle,
    ClearingStatement,
    RecordSide,
    RoamingRecord,
)

R = TypeVar("R")
MAX_ROWS = 1_000  # statements or cycles one read returns
MAX_RECORDS = 2_000_000  # records of one cycle (the house's limit on entries)


def _record(cls: type[R], row: Any) -> R:
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]


def _values(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


# -- cycles ----------------------------------------------------------------------------------

def last_cycle_id(session: Session, through_date: str) -> str | None:
    """The highest cycle id of a business date, if it has any."""
    return session.scalar(select(ClearingCycleRow.id).where(
        ClearingCycleRow.through_date == through_date).order_by(ClearingCycleRow.id.desc()))


def add_cycle(session: Session, cycle: ClearingCycle) -> None:
    session.add(ClearingCycleRow(**_values(cycle)))


def list_cycles(session: Session, limit: int) -> list[ClearingCycle]:
    """Cycles, newest first."""
    return [_record(ClearingCycle, row) for row in session.scalars(
        select(ClearingCycleRow).order_by(ClearingCycleRow.created_at.desc()).limit(limit))]


# -- statements ------------------------------------------------------------------------------

def add_statement(session: Session, statement: ClearingStatement) -> None:
    session.add(ClearingStatementRow(**_values(statement)))


def get_statement(session: Session, cycle_id: str, platform: str) -> ClearingStatement | None:
    row = session.get(ClearingStatementRow, (cycle_id, platform))
    return None if row is None else _record(ClearingStatement, row)


def save_statement(session: Session, statement: ClearingStatement) -> None:
    """Write the changed fields of a statement held here."""
    row = session.get(ClearingStatementRow, (statement.cycle_id, statement.platform))
    assert row is not None
    for name, value in _values(statement).items():
        if getattr(row, name) != value:
            setattr(row, name, value)


def has_statement_in_state(session: Session, platform: str, state: str) -> bool:
    return session.scalar(select(ClearingStatementRow.cycle_id).where(
        ClearingStatementRow.platform == platform, ClearingStatementRow.state == state)
        .limit(1)) is not None


def statement_cycles(session: Session, platform: str, role: str, state: str,
                     limit: int) -> list[str]:
    """Cycle ids of the statements of `platform` with this role and state."""
    return list(session.scalars(select(ClearingStatementRow.cycle_id).where(
        ClearingStatementRow.platform == platform, ClearingStatementRow.role == role,
        ClearingStatementRow.state == state).limit(limit)))


def statements_due(session: Session, role: str, state: str, now: datetime,
                   limit: int) -> list[ClearingStatement]:
    """Statements of a role and state whose next try is due."""
    return [_record(ClearingStatement, row) for row in session.scalars(
        select(ClearingStatementRow).where(
            ClearingStatementRow.role == role, ClearingStatementRow.state == state,
            ClearingStatementRow.next_try_at <= now).limit(limit))]


def list_statements(session: Session, cycle_id: str | None, platform: str | None,
                    limit: int = MAX_ROWS) -> list[ClearingStatement]:
    """Statements by cycle and platform, of one cycle or platform when given."""
    stmt = select(ClearingStatementRow)
    if cycle_id:
        stmt = stmt.where(ClearingStatementRow.cycle_id == cycle_id)
    if platform:
        stmt = stmt.where(ClearingStatementRow.platform == platform)
    return [_record(ClearingStatement, row) for row in session.scalars(
        stmt.order_by(ClearingStatementRow.cycle_id, ClearingStatementRow.platform)
        .limit(limit))]


# -- the records of a cycle ------------------------------------------------------------------

def take_records_into_cycle(session: Session, cycle_id: str, through: str, *,
                            also_from_other_cycles: bool, keep: Sequence[str]) -> None:
    """Put the unsettled records up to business date `through` into the cycle: those in no
    cycle and, with `also_from_other_cycles`, those in any cycle but this one and `keep`."""
    free: ColumnElement[bool] = RoamingRecordRow.cycle_id.is_(None)
    if also_from_other_cycles:
        free = free | RoamingRecordRow.cycle_id.not_in([cycle_id, *keep])
    session.execute(update(RoamingRecordRow)
                    .where(RoamingRecordRow.settled_at.is_(None), free,
                           RoamingRecordRow.business_date <= through)
                    .values(cycle_id=cycle_id).execution_options(synchronize_session=False))


def cycle_sides(session: Session, cycle_id: str, after: str | None,
                limit: int) -> list[RecordSide]:
    """A page of the records in a cycle, by id after `after`, as this platform's side."""
    stmt = (select(RoamingRecordRow.id, RoamingRecordRow.role, RoamingRecordRow.home,
                   RoamingRecordRow.host, RoamingRecordRow.amount_fen, RoamingRecordRow.digest)
            .where(RoamingRecordRow.cycle_id == cycle_id))
    if after is not None:
        stmt = stmt.where(RoamingRecordRow.id > after)
    return [RecordSide(*row) for row in session.execute(
        stmt.order_by(RoamingRecordRow.id).limit(limit)).all()]


def unsettled_records_of_cycle(session: Session, cycle_id: str,
                               limit: int = MAX_RECORDS) -> list[RoamingRecord]:
    return [_record(RoamingRecord, row) for row in session.scalars(
        select(RoamingRecordRow).where(RoamingRecordRow.cycle_id == cycle_id,
                                       RoamingRecordRow.settled_at.is_(None)).limit(limit))]


def mark_settled(session: Session, record_ids: Sequence[str], now: datetime) -> None:
    """Mark records settled now."""
    for record_id in record_ids:
        row = session.get(RoamingRecordRow, record_id)
        assert row is not None
        row.settled_at = now


def release_records(session: Session, cycle_id: str, record_ids: Sequence[str]) -> None:
    """Take records out of a cycle (they roll into a later one)."""
    session.execute(update(RoamingRecordRow)
                    .where(RoamingRecordRow.cycle_id == cycle_id,
                           RoamingRecordRow.id.in_(sorted(record_ids)))
                    .values(cycle_id=None).execution_options(synchronize_session=False))


def unsettled_sides(session: Session, limit: int = MAX_RECORDS) -> list[RecordSide]:
    """Every unsettled record held here, as this platform's side (digest left empty)."""
    return [RecordSide(record_id, role, home, host, amount, "")
            for record_id, role, home, host, amount in session.execute(
                select(RoamingRecordRow.id, RoamingRecordRow.role, RoamingRecordRow.home,
                       RoamingRecordRow.host, RoamingRecordRow.amount_fen)
                .where(RoamingRecordRow.settled_at.is_(None)).limit(limit)).all()]
