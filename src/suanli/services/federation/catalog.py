"""Catalog aggregation: pool summaries per accelerator, province and hub flow up the tree.

Each platform summarises its own active pools; a sub-platform pushes its subtree's summaries
to its parent on change and at least every heartbeat, and takes back the rest of the tree's,
so that placement everywhere can see where capacity is. Each origin's summary carries the
time its platform generated it: how fresh it is, shown with every answer.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from suanli.adapters.store.federation_tables import (
    CatalogOriginRow,
    CatalogSummaryRow,
    FederationPlatformRow,
)
from suanli.adapters.store.tables import PoolRow
from suanli.catalog import load_catalog
from suanli.domain import federation as fed
from suanli.domain.jobs import JobSpec
from suanli.domain.resources import PoolState
from suanli.domain.roaming import RemoteOffer
from suanli.domain.time import aware
from suanli.domain.units import WORKLOAD_CLASSES

MAX_GROUPS_PER_ORIGIN = 20_000
MAX_QUERY_ROWS = 5_000
_CLASSES = tuple(WORKLOAD_CLASSES)


def local_summary(session: Session) -> list[dict[str, Any]]:
    """This platform's active pools grouped per accelerator, province and hub."""
    unit_columns = [func.min(getattr(PoolRow, f"fen_per_unit_hour_{c}")) for c in _CLASSES]
    hub = func.coalesce(PoolRow.hub, "")
    rows = session.execute(
        select(PoolRow.accelerator, PoolRow.province, hub, func.min(PoolRow.vendor),
               func.min(PoolRow.device_kind), func.count(), func.sum(PoolRow.device_count),
               func.sum(PoolRow.free_devices), func.max(PoolRow.free_devices),
               func.min(PoolRow.price_fen_per_device_hour), *unit_columns)
        .where(PoolRow.state == PoolState.ACTIVE.value)
        .group_by(PoolRow.accelerator, PoolRow.province, hub)
        .order_by(PoolRow.accelerator, PoolRow.province, hub)
        .limit(MAX_GROUPS_PER_ORIGIN)).all()
    groups = []
    for row in rows:
        (accelerator, province, hub_name, vendor, kind, pools, devices, free, max_free,
         price, *units) = row
        groups.append({
            "accelerator": accelerator, "province": province, "hub": hub_name or "",
            "vendor": vendor, "device_kind": kind, "pools": int(pools),
            "devices": int(devices or 0), "free_devices": int(free or 0),
            "max_free_in_pool": int(max_free or 0),
            "min_price_fen_per_device_hour": int(price or 0),
            "min_unit_prices": {c: _decimal_text(u) for c, u in zip(_CLASSES, units,
                                                                    strict=True)
                                if u is not None}})
    return groups


def _decimal_text(value: Any) -> str:
    return format(Decimal(str(value)).normalize(), "f")


def digest(groups: list[dict[str, Any]]) -> str:
    return fed.document_digest({"groups": groups})


def store(session: Session, *, origin: str, generated_at: datetime, digest_hex: str,
          groups: list[dict[str, Any]] | None, via: str, now: datetime) -> bool:
    """Take one origin's summary. Without `groups` it only confirms freshness, and only when
    the digest matches what is held. Older than what is held: ignored. Returns whether the
    content changed (so it should travel on up)."""
    held = session.get(CatalogOriginRow, origin)
    if held is not None and aware(held.generated_at) > generated_at:
        return False
    if groups is None:
        if held is None or held.digest != digest_hex:
            return False
        held.generated_at, held.received_at, held.via = generated_at, now, via
        return False
    assert len(groups) <= MAX_GROUPS_PER_ORIGIN
    changed = held is None or held.digest != digest_hex
    if changed:
        session.execute(delete(CatalogSummaryRow).where(CatalogSummaryRow.origin == origin))
        if groups:
            session.execute(insert(CatalogSummaryRow), [_row_values(origin, g) for g in groups])
    if held is None:
        session.add(CatalogOriginRow(origin=origin, generated_at=generated_at, received_at=now,
                                     via=via, digest=digest_hex, groups=len(groups)))
    else:
        held.generated_at, held.received_at, held.via = generated_at, now, via
        held.digest, held.groups = digest_hex, len(groups)
    session.flush()
    return changed


def _row_values(origin: str, group: dict[str, Any]) -> dict[str, Any]:
    prices = {str(k): _decimal_text(v) for k, v in dict(group.get("min_unit_prices") or {})
              .items() if k in _CLASSES}
    return {"origin": origin, "accelerator": str(group["accelerator"])[:48],
            "province": str(group["province"])[:8], "hub": str(group.get("hub") or "")[:24],
            "vendor": str(group.get("vendor", ""))[:32],
            "device_kind": str(group.get("device_kind", ""))[:8],
            "pools": int(group["pools"]), "devices": int(group["devices"]),
            "free_devices": int(group["free_devices"]),
            "max_free_in_pool": int(group["max_free_in_pool"]),
            "min_price_fen_per_device_hour": int(group["min_price_fen_per_device_hour"]),
            "min_unit_prices": prices}


def refresh_own(session: Session, own: str, now: datetime, heartbeat_s: float) -> bool:
    """Re-summarise this platform's pools; True when the summary changed or its heartbeat
    came due (either way it is generated anew and should be pushed)."""
    groups = local_summary(session)
    digest_hex = digest(groups)
    held = session.get(CatalogOriginRow, own)
    if held is not None and held.digest == digest_hex and \
            (now - aware(held.generated_at)).total_seconds() < heartbeat_s:
        return False
    store(session, origin=own, generated_at=now, digest_hex=digest_hex, groups=groups, via=own,
          now=now)
    return True


def snapshot(session: Session, origin: str, *, with_groups: bool) -> dict[str, Any]:
    held = session.get(CatalogOriginRow, origin)
    assert held is not None
    out: dict[str, Any] = {"origin": origin, "generated_at": aware(held.generated_at).isoformat(),
                           "digest": held.digest}
    if with_groups:
        rows = session.scalars(select(CatalogSummaryRow).where(CatalogSummaryRow.origin == origin)
                               .order_by(CatalogSummaryRow.accelerator,
                                         CatalogSummaryRow.province, CatalogSummaryRow.hub))
        out["groups"] = [_group_of(row) for row in rows]
    return out


def _group_of(row: CatalogSummaryRow) -> dict[str, Any]:
    return {"accelerator": row.accelerator, "province": row.province, "hub": row.hub,
            "vendor": row.vendor, "device_kind": row.device_kind, "pools": row.pools,
            "devices": row.devices, "free_devices": row.free_devices,
            "max_free_in_pool": row.max_free_in_pool,
            "min_price_fen_per_device_hour": row.min_price_fen_per_device_hour,
            "min_unit_prices": dict(row.min_unit_prices or {})}


def origins(session: Session) -> dict[str, CatalogOriginRow]:
    return {row.origin: row for row in session.scalars(select(CatalogOriginRow))}


def forget_origin(session: Session, origin: str) -> None:
    session.execute(delete(CatalogSummaryRow).where(CatalogSummaryRow.origin == origin))
    session.execute(delete(CatalogOriginRow).where(CatalogOriginRow.origin == origin))


# -- reading the aggregated catalog ----------------------------------------------------------

def query(session: Session, now: datetime, *, accelerator: str | None = None,
          vendor: str | None = None, device_kind: str | None = None,
          province: str | None = None, hub: str | None = None, platform: str | None = None,
          min_free_devices: int = 0, limit: int = 500) -> list[dict[str, Any]]:
    """Summaries over the whole tree this platform holds, cheapest first, each with its age."""
    stmt = (select(CatalogSummaryRow, CatalogOriginRow)
            .join(CatalogOriginRow, CatalogOriginRow.origin == CatalogSummaryRow.origin))
    if accelerator:
        stmt = stmt.where(CatalogSummaryRow.accelerator == load_catalog().get(accelerator).key)
    if vendor:
        stmt = stmt.where(func.lower(CatalogSummaryRow.vendor) == vendor.lower())
    if device_kind:
        stmt = stmt.where(CatalogSummaryRow.device_kind == device_kind)
    if province:
        stmt = stmt.where(CatalogSummaryRow.province == province)
    if hub:
        stmt = stmt.where(CatalogSummaryRow.hub == hub)
    if platform:
        stmt = stmt.where((CatalogSummaryRow.origin == platform)
                          | CatalogSummaryRow.origin.startswith(platform + "."))
    if min_free_devices:
        stmt = stmt.where(CatalogSummaryRow.free_devices >= min_free_devices)
    stmt = stmt.order_by(CatalogSummaryRow.min_price_fen_per_device_hour,
                         CatalogSummaryRow.origin, CatalogSummaryRow.accelerator,
                         CatalogSummaryRow.province, CatalogSummaryRow.hub)
    out = []
    for row, origin in session.execute(stmt.limit(min(limit, MAX_QUERY_ROWS))).all():
        generated = aware(origin.generated_at)
        out.append({"platform": row.origin, **_group_of(row),
                    "updated_at": generated.isoformat(),
                    "age_s": round(max(0.0, (now - generated).total_seconds()), 3)})
    return out


def freshness(session: Session, now: datetime) -> list[dict[str, Any]]:
    return [{"platform": o.origin, "updated_at": aware(o.generated_at).isoformat(),
             "received_at": aware(o.received_at).isoformat(), "via": o.via, "groups": o.groups,
             "age_s": round(max(0.0, (now - aware(o.generated_at)).total_seconds()), 3)}
            for o in sorted(origins(session).values(), key=lambda o: o.origin)]


def remote_offers(session: Session, own: str, spec: JobSpec, now: datetime) -> list[RemoteOffer]:
    """Other platforms' summaries that could take the job, as placement's offers."""
    stmt = (select(CatalogSummaryRow, CatalogOriginRow.generated_at)
            .join(CatalogOriginRow, CatalogOriginRow.origin == CatalogSummaryRow.origin)
            .join(FederationPlatformRow,
                  FederationPlatformRow.authority == CatalogSummaryRow.origin)
            .where(CatalogSummaryRow.origin != own, FederationPlatformRow.state == "active",
                   FederationPlatformRow.endpoint.is_not(None),
                   CatalogSummaryRow.max_free_in_pool >= spec.devices))
    accelerators = _accelerators_for(spec)
    if accelerators is not None:
        stmt = stmt.where(CatalogSummaryRow.accelerator.in_(accelerators))
    if spec.provinces:
        stmt = stmt.where(CatalogSummaryRow.province.in_(spec.provinces))
    offers = []
    for row, generated_at in session.execute(stmt.limit(MAX_QUERY_ROWS)).all():
        unit = (row.min_unit_prices or {}).get(spec.workload_class)
        offers.append(RemoteOffer(row.origin, row.accelerator, row.province, row.hub,
                                  row.free_devices, row.max_free_in_pool,
                                  row.min_price_fen_per_device_hour,
                                  Decimal(unit) if unit is not None else None,
                                  (now - aware(generated_at)).total_seconds()))
    return offers


def _accelerators_for(spec: JobSpec) -> list[str] | None:
    """The catalog keys a job's accelerator constraints allow; None when it has none."""
    if spec.accelerator:
        return [load_catalog().get(spec.accelerator).key]
    if not (spec.vendor or spec.device_kind or spec.min_memory_gb is not None):
        return None
    return [a.key for a in load_catalog().all()
            if (not spec.vendor or a.vendor == spec.vendor)
            and (not spec.device_kind or a.kind == spec.device_kind)
            and (spec.min_memory_gb is None or (a.memory_gb or 0) >= spec.min_memory_gb)]
