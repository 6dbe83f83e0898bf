"""Discrete-event replay of a trace through the placement engine, on a simulated clock.

Events: a job arrives, a deferred job's hour comes, a lease ends. A job that cannot be placed
when it arrives waits in a FIFO queue; whenever a lease ends the queue is offered the freed
capacity (skipping jobs wider than any free pool, at most MAX_DRAIN_ATTEMPTS placements per
event, so a long queue cannot make one event slow). Jobs that no pool could ever host (wrong
stack, too wide) are rejected on arrival; jobs wider than the widest pool or fabric are narrowed
to it first, keeping their work.

Money, energy and carbon are charged from the pools' hourly series over each lease as it
actually ran (staging included for money, only the run for energy), not from the estimates.
On-demand work may preempt spot leases; a preempted job loses the work since its last
checkpoint (every CHECKPOINT_S of run time) and queues again.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from suanli.domain.errors import PlacementInfeasible
from suanli.domain.placement import (
    AcceleratorConstraint,
    Allocation,
    JobRequest,
    PlacementEngine,
    make_policy,
)
from suanli.domain.placement.policies import LinearPolicy
from suanli.domain.placement.scoring import Weights
from suanli.domain.time import SECONDS_PER_HOUR
from suanli.sim.federation import Federation, rating
from suanli.sim.traces import Trace, TraceJob

CHECKPOINT_S = 1800
MAX_DRAIN_ATTEMPTS = 64
MAX_EVENTS = 50_000_000
ARRIVE, START, FINISH = 0, 1, 2
CUDA = AcceleratorConstraint(software_stacks=frozenset({"CUDA"}))


@dataclass
class Lease:
    job: int
    allocations: tuple[Allocation, ...]
    start_s: int
    run_from_s: int  # staging over: the devices start computing
    end_s: int
    work_units: float
    token: int


@dataclass
class JobOutcome:
    """What happened to one job, for the report."""

    submit_s: int
    first_start_s: int = -1
    finish_s: int = -1
    run_s: int = 0  # seconds computing, summed over leases
    cost_fen: int = 0
    electricity_fen: int = 0
    energy_kwh: float = 0.0
    carbon_kg: float = 0.0
    device_s: float = 0.0
    western_device_s: float = 0.0
    pool: int = -1
    preemptions: int = 0
    deferred: bool = False
    narrowed: bool = False
    rejected: str = ""


class Simulator:
    """Replays `trace` on `federation` under the policy called `policy`."""

    def __init__(self, trace: Trace, federation: Federation, policy: str, *, seed: int = 7,
                 preemption: bool = True, weights: Weights | None = None) -> None:
        self.trace = trace
        self.federation = federation
        self.table = federation.table()
        self.rng = np.random.default_rng(seed)
        # `weights` replaces the named policy's (a linear policy, for tuning them)
        chosen = make_policy(policy, self.table, self.rng) if weights is None \
            else LinearPolicy(policy, self.table, weights)
        self.engine = PlacementEngine(self.table, chosen, preemption=preemption)
        self.policy = policy
        self.max_pool = int(self.table.device_count.max())
        self.outcomes = [JobOutcome(j.submit_s) for j in trace.jobs]
        self.requests: list[JobRequest | None] = [None] * len(trace.jobs)
        self.leases: dict[int, Lease] = {}  # job -> running lease
        self.spot_leases: list[set[int]] = [set() for _ in range(self.table.n)]
        self.queue: deque[int] = deque()
        self.events: list[tuple[int, int, int, int, int]] = []
        self._seq = 0
        self._token = 0
        self.now = 0

    def _widest(self, static: np.ndarray) -> int:
        """The most devices one gang can get among `static` pools: a pool or a fabric."""
        t = self.table
        fabric = static & (t.group_idx >= 0)
        groups = np.bincount(t.group_idx[fabric], weights=t.device_count[fabric])
        return int(max(t.device_count[static].max(), groups.max(initial=0)))

    # --- the loop --------------------------------------------------------------------------

    def run(self, on_progress: Callable[[int], None] | None = None) -> list[JobOutcome]:
        for i, entry in enumerate(self.trace.jobs):
            self._push(entry.submit_s, ARRIVE, i)
        arrived = 0
        for _ in range(MAX_EVENTS):
            if not self.events:
                break
            time_s, _, kind, job, token = heapq.heappop(self.events)
            assert time_s >= self.now, "the clock never goes back"
            self.now = time_s
            if kind == ARRIVE:
                arrived += 1
                self._arrive(job)
                if on_progress is not None and arrived % 1000 == 0:
                    on_progress(arrived)
            elif kind == START:
                self._try_start(job, allow_defer=False, queue_on_failure=True)
            elif self._finish(job, token):
                self._drain()
        else:
            raise RuntimeError(f"simulation exceeded {MAX_EVENTS} events")
        if on_progress is not None:
            on_progress(len(self.trace.jobs))
        for job in self.queue:
            self.outcomes[job].rejected = "still queued when the trace ended"
        return self.outcomes

    def _push(self, time_s: int, kind: int, job: int, token: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self.events, (time_s, self._seq, kind, job, token))

    def _arrive(self, job: int) -> None:
        request = self._request(job)
        if request is None:
            return
        self._try_start(job, allow_defer=True, queue_on_failure=True)

    def _request(self, job: int) -> JobRequest | None:
        spec = self.trace.jobs[job]
        request = _job_request(spec, spec.devices, self.federation.workload_class, self.max_pool)
        static = self.table.static_mask(request)
        if not static.any():
            self.outcomes[job].rejected = "no pool can ever host it"
            return None
        widest = self._widest(static)
        if spec.devices > widest:
            request = _job_request(spec, widest, self.federation.workload_class, self.max_pool)
            self.outcomes[job].narrowed = True
        self.requests[job] = request
        return request

    def _try_start(self, job: int, *, allow_defer: bool, queue_on_failure: bool) -> bool:
        request = self.requests[job]
        assert request is not None
        try:
            choice = self.engine.choose(request, self.now, allow_defer=allow_defer,
                                        explain_failure=False)
        except PlacementInfeasible:
            if queue_on_failure:
                self.queue.append(job)
            return False
        if choice.deferred:
            self.outcomes[job].deferred = True
            self._push(choice.start_s, START, job)
            return True
        self._start(job, request, choice.allocations)
        return True

    def _drain(self) -> None:
        """Offers freed capacity to the queue, oldest first."""
        attempts = 0
        kept: deque[int] = deque()
        # A job that did not fit means no job of the same shape at least as wide fits until
        # something starts, so those are skipped without asking the engine.
        failed: dict[tuple, int] = {}
        while self.queue and attempts < MAX_DRAIN_ATTEMPTS:
            job = self.queue.popleft()
            request = self.requests[job]
            assert request is not None
            shape = _shape(request)
            width = request.devices or 0
            if failed.get(shape, width + 1) <= width:
                kept.append(job)
                continue
            attempts += 1
            if self._try_start(job, allow_defer=False, queue_on_failure=False):
                failed.clear()
            else:
                failed[shape] = min(width, failed.get(shape, width))
                kept.append(job)
        kept.extend(self.queue)
        self.queue = kept

    # --- leases ----------------------------------------------------------------------------

    def _start(self, job: int, request: JobRequest, allocations: tuple[Allocation, ...]) -> None:
        t = self.table
        for a in allocations:
            if a.preempt_devices:
                self._preempt(a.pool_index, a.devices)
        for a in allocations:
            t.reserve(a.pool_index, a.devices, spot=a.spot)
            if a.spot:
                self.spot_leases[a.pool_index].add(job)
        index = np.array([a.pool_index for a in allocations])
        devices = sum(a.devices for a in allocations)
        _, s_per_gb = t.transfer_rows(request.data_region)
        staging = int(np.ceil(t.queue_wait_s[index] + request.data_gb * s_per_gb[index]).max())
        slowest = float(t.units[index].min())
        run = max(1, math.ceil(request.work_units / (devices * slowest) * SECONDS_PER_HOUR))
        self._token += 1
        lease = Lease(job, allocations, self.now, self.now + staging, self.now + staging + run,
                      request.work_units, self._token)
        self.leases[job] = lease
        outcome = self.outcomes[job]
        if outcome.first_start_s < 0:
            outcome.first_start_s = self.now
            outcome.pool = allocations[0].pool_index
        self._push(lease.end_s, FINISH, job, lease.token)

    def _finish(self, job: int, token: int) -> bool:
        lease = self.leases.get(job)
        if lease is None or lease.token != token:
            return False  # the lease was preempted; this event is stale
        self._close(lease, self.now)
        self.outcomes[job].finish_s = self.now
        return True

    def _close(self, lease: Lease, end_s: int) -> None:
        """Releases a lease's devices and charges what it used up to `end_s`."""
        t, outcome = self.table, self.outcomes[lease.job]
        request = self.requests[lease.job]
        assert request is not None
        del self.leases[lease.job]
        fen, _ = t.transfer_rows(request.data_region)
        fen_s = 0
        run_from = min(lease.run_from_s, end_s)
        for a in lease.allocations:
            t.release(a.pool_index, a.devices, spot=a.spot)
            self.spot_leases[a.pool_index].discard(lease.job)
            series = t.spot_price if a.spot else t.price
            fen_s += int(series.integral_one(a.pool_index, lease.start_s, end_s)) * a.devices
            kw = a.devices * t.power_kw[a.pool_index] * t.pue[a.pool_index]
            outcome.carbon_kg += kw * t.carbon.integral_one(a.pool_index, run_from, end_s) \
                / SECONDS_PER_HOUR / 1e3
            outcome.electricity_fen += math.ceil(
                kw * t.electricity.integral_one(a.pool_index, run_from, end_s) / SECONDS_PER_HOUR)
            outcome.energy_kwh += kw * (end_s - run_from) / SECONDS_PER_HOUR
            device_s = a.devices * (end_s - run_from)
            outcome.device_s += device_s
            if t.western[a.pool_index]:
                outcome.western_device_s += device_s
        pools = [a.pool_index for a in lease.allocations]
        transfer = math.ceil(request.data_gb * int(fen[pools].max()))
        outcome.cost_fen += -(-fen_s // SECONDS_PER_HOUR) + transfer
        outcome.run_s += end_s - run_from

    def _preempt(self, pool: int, devices: int) -> None:
        """Ends the newest spot leases on `pool` until `devices` are free; their jobs requeue."""
        victims = sorted(self.spot_leases[pool], key=lambda j: -self.leases[j].start_s)
        for job in victims:
            if self.table.free[pool] >= devices:
                break
            lease = self.leases[job]
            self._close(lease, self.now)
            done = max(0, self.now - lease.run_from_s)
            total = max(1, lease.end_s - lease.run_from_s)
            kept = (done // CHECKPOINT_S) * CHECKPOINT_S / total
            remaining = max(lease.work_units * (1.0 - kept), 1e-6)
            request = self.requests[job]
            assert request is not None
            self.requests[job] = replace(request, work_units=remaining)
            self.outcomes[job].preemptions += 1
            self.queue.append(job)


def _shape(request: JobRequest) -> tuple:
    """What decides whether a job fits, apart from its width (deadlines are soft here)."""
    latency_city = request.user_city if request.latency_class.value != "batch" else None
    return (request.accelerator, request.latency_class, latency_city, request.spot_allowed,
            request.multi_pool, request.residency_provinces)


def _job_request(spec: TraceJob, devices: int, workload_class: str,
                 max_pool: int) -> JobRequest:
    """The placement request for a trace job; its work stays that of the original width."""
    original = rating(spec.original, workload_class) or 1.0
    work = spec.duration_s / SECONDS_PER_HOUR * spec.devices * original
    return JobRequest(
        id=spec.id, tenant_id=spec.tenant, work_units=work, devices=devices,
        accelerator=AcceleratorConstraint() if spec.portable else CUDA,
        multi_pool=devices > max_pool, latency_class=spec.latency_class, user_city=spec.home_city,
        data_province=spec.data_province, data_gb=spec.data_gb, deadline_s=spec.deadline_s,
        spot_allowed=spec.spot_allowed, workload_class=workload_class,
    )
