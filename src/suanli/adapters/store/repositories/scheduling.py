"""Scheduling's read of the platform's pools: every active pool with its site's energy
figures, in one query, for the placement table (services.scheduling.live_table)."""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy import select
from sqlalchemy.orm import Session

from suanli.adapters.store.tables import PoolRow, SiteRow
from suanli.domain.job_records import PoolFacts, SiteEnergy
from suanli.domain.resources import PoolState

MAX_POOLS = 1_000_000  # the placement table's own bound


def pool_states(session: Session, limit: int = MAX_POOLS) -> list[tuple[PoolFacts, SiteEnergy]]:
    """Every active pool (at most `limit`, in id order) with its site's PUE and electricity
    price: the state a placement table is built from. One query, pools joined to sites."""
    assert 1 <= limit <= MAX_POOLS
    # Columns, not ORM entities: loading 10,000 pool rows as objects takes seconds.
    columns = [getattr(PoolRow, name) for name in _FACTS]
    rows = session.execute(
        select(*columns, SiteRow.pue, SiteRow.electricity_fen_per_kwh)
        .join(SiteRow, SiteRow.id == PoolRow.site_id)
        .where(PoolRow.state == PoolState.ACTIVE.value)
        .order_by(PoolRow.id).limit(limit)).all()
    out = []
    for row in rows:
        facts = PoolFacts(*row[:len(_FACTS)])
        out.append((facts, SiteEnergy(facts.site_id, row[-2], row[-1])))
    return out


_FACTS = tuple(f.name for f in fields(PoolFacts))
