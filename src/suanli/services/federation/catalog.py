"""Catalog aggregation: pool summaries per accelerator, province and hub flow up the tree.

Each platform summarises its own active pools; a sub-platform pushes its subtree's summaries
to its parent on change and at least every heartbeat, and takes back the rest of the tree's,
so that placement everywhere can see where capacity is. Each origin's summary carries the
time its platform generated it: how fresh it is, shown with every answer.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import federation as repository
from suanli.catalog import load_catalog
from suanli.domain import federation as fed
from suanli.domain.federation_records import CatalogGroup, CatalogOrigin
from suanli.domain.jobs import JobSpec
from suanli.domain.roaming import RemoteOffer
from suanli.domain.time import aware
from suanli.domain.units import WORKLOAD_CLASSES

MAX_GROUPS_PER_ORIGIN = 20_000
MAX_QUERY_ROWS = 5_000
_CLASSES = tuple(WORKLOAD_CLASSES)


def local_summary(session: Session) -> list[dict[str, Any]]:
    """This platform's active pools grouped per accelerator, province and hub."""
    return [_group_of(group) for group in repository.active_pool_groups(session,
                                                                    MAX_GROUPS_PER_ORIGIN)]


def _decimal_text(value: Any) -> str:
    return repository.decimal_text(value)


def digest(groups: list[dict[str, Any]]) -> str:
    return fed.document_digest({"groups": groups})


def store(session: Session, *, origin: str, generated_at: datetime, digest_hex: str,
          groups: list[dict[str, Any]] | None, via: str, now: datetime) -> bool:
    """Take one origin's summary. Without `groups` it only confirms freshness, and only when
    the digest matches what is held. Older than what is held: ignored. Returns whether the
    content changed (so it should travel on up)."""
    held = repository.get_origin(session, origin)
    if held is not None and aware(held.generated_at) > generated_at:
        return False
    if groups is None:
        if held is None or held.digest != digest_hex:
            return False
        repository.save_origin(session, replace(held, generated_at=generated_at, received_at=now,
                                           via=via))
        return False
    assert len(groups) <= MAX_GROUPS_PER_ORIGIN
    changed = held is None or held.digest != digest_hex
    if changed:
        repository.replace_groups(session, origin, [_group_record(origin, g) for g in groups])
    repository.save_origin(session, CatalogOrigin(origin=origin, generated_at=generated_at,
                                             received_at=now, via=via, digest=digest_hex,
                                             groups=len(groups)))
    session.flush()
    return changed


def _group_record(origin: str, group: dict[str, Any]) -> CatalogGroup:
    prices = {str(k): _decimal_text(v) for k, v in dict(group.get("min_unit_prices") or {})
              .items() if k in _CLASSES}
    return CatalogGroup(
        origin=origin, accelerator=str(group["accelerator"])[:48],
        province=str(group["province"])[:8], hub=str(group.get("hub") or "")[:24],
        vendor=str(group.get("vendor", ""))[:32],
        device_kind=str(group.get("device_kind", ""))[:8],
        pools=int(group["pools"]), devices=int(group["devices"]),
        free_devices=int(group["free_devices"]),
        max_free_in_pool=int(group["max_free_in_pool"]),
        min_price_fen_per_device_hour=int(group["min_price_fen_per_device_hour"]),
        min_unit_prices=prices)


def refresh_own(session: Session, own: str, now: datetime, heartbeat_s: float) -> bool:
    """Re-summarise this platform's pools; True when the summary changed or its heartbeat
    came due (either way it is generated anew and should be pushed)."""
    groups = local_summary(session)
    digest_hex = digest(groups)
    held = repository.get_origin(session, own)
    if held is not None and held.digest == digest_hex and \
            (now - aware(held.generated_at)).total_seconds() < heartbeat_s:
        return False
    store(session, origin=own, generated_at=now, digest_hex=digest_hex, groups=groups, via=own,
          now=now)
    return True


def snapshot(session: Session, origin: str, *, with_groups: bool) -> dict[str, Any]:
    held = repository.get_origin(session, origin)
    assert held is not None
    out: dict[str, Any] = {"origin": origin, "generated_at": aware(held.generated_at).isoformat(),
                           "digest": held.digest}
    if with_groups:
        out["groups"] = [_group_of(row) for row in repository.groups_of(session, origin)]
    return out


def _group_of(row: CatalogGroup) -> dict[str, Any]:
    group = asdict(row)
    del group["origin"]
    group["min_unit_prices"] = dict(row.min_unit_prices or {})
    return group


def origin(session: Session, authority: str) -> CatalogOrigin | None:
    """How fresh the summary of one origin held here is, if one is."""
    return repository.get_origin(session, authority)


def origins(session: Session) -> dict[str, CatalogOrigin]:
    return {row.origin: row for row in repository.list_origins(session)}


def forget_origin(session: Session, origin: str) -> None:
    repository.delete_origin(session, origin)


# -- reading the aggregated catalog ----------------------------------------------------------

def query(session: Session, now: datetime, *, accelerator: str | None = None,
          vendor: str | None = None, device_kind: str | None = None,
          province: str | None = None, hub: str | None = None, platform: str | None = None,
          min_free_devices: int = 0, limit: int = 500) -> list[dict[str, Any]]:
    """Summaries over the whole tree this platform holds, cheapest first, each with its age."""
    found = repository.query_groups(
        session, accelerator=load_catalog().get(accelerator).key if accelerator else None,
        vendor=vendor, device_kind=device_kind, province=province, hub=hub, platform=platform,
        min_free_devices=min_free_devices, limit=min(limit, MAX_QUERY_ROWS))
    out = []
    for row, held in found:
        generated = aware(held.generated_at)
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
    found = repository.remote_groups(session, own, min_free_in_pool=spec.devices,
                                accelerators=_accelerators_for(spec),
                                provinces=spec.provinces or None, limit=MAX_QUERY_ROWS)
    offers = []
    for offer in found:
        row, generated_at = offer.group, offer.generated_at
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
