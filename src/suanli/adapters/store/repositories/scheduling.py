"""Scheduling's read of the pools that can take a job now (the candidates), as records."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from suanli.adapters.store.repositories.jobs import pool_facts
from suanli.adapters.store.tables import PoolRow
from suanli.domain.job_records import PoolFacts
from suanli.domain.jobs import JobSpec
from suanli.domain.resources import PoolState


def candidate_pools(session: Session, spec: JobSpec, accelerator_key: str | None,
                    excluded: Sequence[str], limit: int) -> list[PoolFacts]:
    """Active pools with the free devices and the constraints of the spec (`accelerator_key`:
    its accelerator as the catalog names it), cheapest per unit of its workload class first
    (unpriced last), then by device-hour price and id."""
    unit_price = getattr(PoolRow, f"fen_per_unit_hour_{spec.workload_class}")
    conditions = [PoolRow.state == PoolState.ACTIVE.value, PoolRow.free_devices >= spec.devices]
    if accelerator_key:
        conditions.append(PoolRow.accelerator == accelerator_key)
    if spec.vendor:
        conditions.append(PoolRow.vendor == spec.vendor)
    if spec.device_kind:
        conditions.append(PoolRow.device_kind == spec.device_kind)
    if spec.min_memory_gb is not None:
        conditions.append(PoolRow.memory_gb >= spec.min_memory_gb)
    if spec.provinces:
        conditions.append(PoolRow.province.in_(spec.provinces))
    if spec.pool_id:
        conditions.append(PoolRow.id == spec.pool_id)
    if spec.max_price_fen_per_device_hour is not None:
        conditions.append(PoolRow.price_fen_per_device_hour <= spec.max_price_fen_per_device_hour)
    if excluded:
        conditions.append(PoolRow.id.not_in(excluded))
    rows = session.scalars(select(PoolRow).where(and_(*conditions))
                           .order_by(unit_price.asc().nulls_last(),
                                     PoolRow.price_fen_per_device_hour, PoolRow.id)
                           .limit(limit)).all()
    return [pool_facts(row) for row in rows]
