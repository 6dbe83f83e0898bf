"""Explanations: why a placement was chosen, and why none could be."""

from __future__ import annotations

import numpy as np

from suanli.domain.placement.arrays import Devices
from suanli.domain.placement.model import Allocation, JobRequest
from suanli.domain.placement.table import PoolTable

EAST_WEST_NOTE_MIN_FEN = 1.0


def placement_note(t: PoolTable, policy: str, job: JobRequest,
                   allocations: tuple[Allocation, ...], rank: np.ndarray | None,
                   breakdown: dict[str, float]) -> str:
    """One line a person can read: the pools, the biggest terms, preemption, east-to-west."""
    pool = allocations[0].pool_index
    top = sorted(breakdown.items(), key=lambda kv: -abs(kv[1]))[:3]
    pools = ", ".join(f"{a.pool_id} x{a.devices}" for a in allocations)
    text = f"{policy}: {pools} (" + ", ".join(f"{k} {v:,.0f}" for k, v in top) + ")"
    if any(a.preempt_devices for a in allocations):
        text += f"; preempts {sum(a.preempt_devices for a in allocations)} spot devices"
    if rank is None or job.data_region is None or not t.western[pool] or job.data_gb == 0:
        return text
    devices = allocations[0].devices
    fen, _ = t.transfer_rows(job.data_region)
    east = t.static_mask(job) & ~t.western & (t.free >= devices)
    if east.any() and fen[pool] > 0:
        saving = float(rank[east].min() - rank[pool])
        if saving >= EAST_WEST_NOTE_MIN_FEN:
            text += (f"; east-to-west: {saving:,.0f} fen-eq better than the best eastern "
                     f"pool, after {job.data_gb * int(fen[pool]):,.0f} fen of data transfer")
    return text


def infeasible_reason(t: PoolTable, job: JobRequest, devices: Devices,
                      static: np.ndarray) -> str:
    """Why nothing fits: the first rule that leaves no pool."""
    residency = sorted(job.residency_provinces | job.residency_countries)
    stages = (
        (t.active, "no active pool"),
        (t.accelerator_mask(job), f"no pool has accelerators matching {job.accelerator}"),
        (t.residency_mask(job), f"no pool inside the residency {residency}"),
        (t.latency_mask(job), (f"no pool within the {job.latency_class} round-trip budget "
                               f"of {job.user_city!r}")),
    )
    mask = np.ones(t.n, dtype=bool)
    for stage, text in stages:
        mask &= stage
        if not mask.any():
            return text
    need = int(np.min(devices))
    single = job.gang and not job.multi_pool
    if single and not (static & (t.device_count >= devices)).any():
        return (f"needs {need} devices at once; the largest suitable pool has "
                f"{int(t.device_count[static].max())}")
    if not (t.free[static] >= need).any():
        return (f"no capacity now: {need} devices needed, at most "
                f"{int(t.free[static].max())} free in one of {int(static.sum())} "
                "suitable pools")
    if job.budget_fen is not None:
        return f"no suitable pool runs the job within its budget of {job.budget_fen} fen"
    if job.deadline_s is not None and job.deadline_strict:
        return "no suitable pool can finish the job before its deadline"
    return "no interconnected set of suitable pools has enough free devices"
