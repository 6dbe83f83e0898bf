"""Periodic global assignment of queued jobs to pools: a MILP solved by HiGHS (scipy.optimize.milp).

Online placement decides one job at a time, so an early job can take the pool a later one
needed. Every few minutes a platform can instead assign its whole queue at once:

    minimise    sum_j sum_p score[j, p] * x[j, p]  +  sum_j penalty[j] * y[j]
    subject to  sum_p x[j, p] + y[j] = 1                 every job placed once, or left queued
                sum_j devices[j] * x[j, p] <= free[p]    no pool over its free devices
                x, y binary

`score` is the same linear score the online policies use (so the two paths agree on what
"better" means), infeasible pairs are left out of the model, and leaving a job queued costs
UNASSIGNED_FACTOR times its worst admissible score (so the solver queues a job only when that
makes room for enough better placements). One pool per job: a gang that needs several pools
goes through the online engine.

`exact=False` solves the LP relaxation instead and rounds it: each job, in order of its
largest fractional share, goes to the pool the LP leans to most that still has room, else to
its best-scored pool with room; one pass then moves each job to a better pool with room. The LP optimum is a lower bound, so the reported gap is a
proven bound on how far the rounded answer is from the optimum; HiGHS spends most of a large
MILP's time finding an incumbent that the rounding gets in a fraction of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from suanli.domain.errors import ValidationFailed
from suanli.domain.placement.estimates import lease_cost, lease_timing
from suanli.domain.placement.model import JobRequest
from suanli.domain.placement.scoring import LinearScorer, Weights
from suanli.domain.placement.table import INFEASIBLE, PoolTable

MAX_BATCH_JOBS = 10_000
MAX_VARIABLES = 5_000_000
UNASSIGNED_FACTOR = 2.0


@dataclass(frozen=True)
class BatchAssignment:
    """The solver's answer: pool index per job (None: stays queued) and how good it is."""

    pools: tuple[int | None, ...]  # in the order of the jobs given
    objective: float  # score of the assignment, penalties included
    bound: float  # the solver's proof: no assignment scores below this
    status: str
    variables: int

    @property
    def gap(self) -> float:
        """Relative distance to the best possible objective (0: proven optimal)."""
        return abs(self.objective - self.bound) / max(abs(self.objective), 1e-9)

    @property
    def assigned(self) -> int:
        return sum(p is not None for p in self.pools)


def score_matrix(jobs: Sequence[JobRequest], table: PoolTable, weights: Weights,
                 now_s: int) -> np.ndarray:
    """score[j, p], INFEASIBLE where job j cannot start on pool p now (same rules as online)."""
    scorer = LinearScorer(table, weights)
    out = np.empty((len(jobs), table.n))
    for j, job in enumerate(jobs):
        if job.devices is None:
            raise ValidationFailed("batch assignment needs fixed device counts", field="devices")
        row = scorer.score(job, job.devices, now_s) + table.static_penalty(job)
        row += (table.free < job.devices) * INFEASIBLE
        if job.deadline_s is not None or job.budget_fen is not None:
            row = _hard_rules(job, table, row, now_s)
        out[j] = row
    return out


def _hard_rules(job: JobRequest, table: PoolTable, row: np.ndarray, now_s: int) -> np.ndarray:
    index = np.flatnonzero(row < INFEASIBLE)
    if len(index) == 0:
        return row
    devices = int(job.devices or 1)
    staging, run = lease_timing(table, job, devices, index)
    keep = np.ones(len(index), dtype=bool)
    if job.budget_fen is not None:
        keep &= lease_cost(table, job, devices, index, now_s, now_s + staging + run) \
            <= job.budget_fen
    if job.deadline_s is not None:  # soft, as online: binding only where some pool meets it
        meets = now_s + staging + run <= job.deadline_s
        if (keep & meets).any() or job.deadline_strict:
            keep &= meets
    row = row.copy()
    row[index[~keep]] = INFEASIBLE
    return row


def assign_batch(jobs: Sequence[JobRequest], table: PoolTable, weights: Weights, now_s: int, *,
                 candidates_per_job: int | None = None, time_limit_s: float = 60.0,
                 mip_rel_gap: float = 1e-6) -> BatchAssignment:
    """Assigns `jobs` to pools at once, minimising the total score (see the module docstring).

    `candidates_per_job` keeps only each job's best-scored pools, which shrinks the model a
    hundredfold at 1,000 pools at little loss (the bench measures it).
    """
    if not 1 <= len(jobs) <= MAX_BATCH_JOBS:
        raise ValidationFailed(f"a batch holds 1..{MAX_BATCH_JOBS} jobs", field="jobs")
    scores = score_matrix(jobs, table, weights, now_s)
    return solve(scores, np.array([j.devices for j in jobs], dtype=np.int64),
                 table.free.copy(), candidates_per_job=candidates_per_job,
                 time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)


def unassigned_penalty(scores: np.ndarray) -> np.ndarray:
    finite = np.where(scores < INFEASIBLE, scores, -np.inf)
    worst = finite.max(axis=1)
    return np.where(np.isfinite(worst), UNASSIGNED_FACTOR * np.abs(worst) + 1.0, 1.0)


def solve(scores: np.ndarray, devices: np.ndarray, free: np.ndarray, *,
          candidates_per_job: int | None = None, time_limit_s: float = 60.0,
          mip_rel_gap: float = 1e-6, exact: bool = True) -> BatchAssignment:
    """The MILP on a score matrix (INFEASIBLE entries are not variables)."""
    n_jobs, n_pools = scores.shape
    feasible = scores < INFEASIBLE
    if candidates_per_job is not None and candidates_per_job < n_pools:
        top = np.argpartition(scores, candidates_per_job - 1, axis=1)[:, :candidates_per_job]
        keep = np.zeros_like(feasible)
        np.put_along_axis(keep, top, True, axis=1)
        feasible &= keep
    job_of, pool_of = np.nonzero(feasible)
    n_x = len(job_of)
    if n_x + n_jobs > MAX_VARIABLES:
        raise ValidationFailed(f"the model would have {n_x + n_jobs} variables "
                               f"(limit {MAX_VARIABLES}); pass candidates_per_job",
                               field="candidates_per_job")
    penalty = unassigned_penalty(scores)
    cost = np.concatenate([scores[job_of, pool_of], penalty])
    y = np.arange(n_jobs)
    once = sparse.csr_array(
        (np.ones(n_x + n_jobs), (np.concatenate([job_of, y]), np.arange(n_x + n_jobs))),
        shape=(n_jobs, n_x + n_jobs))
    capacity = sparse.csr_array(
        (devices[job_of].astype(np.float64), (pool_of, np.arange(n_x))),
        shape=(n_pools, n_x + n_jobs))
    if not exact:
        return _lp_rounding(scores, devices, free, cost, once, capacity, job_of, pool_of,
                            time_limit_s)
    constraints = [LinearConstraint(once, 1.0, 1.0),
                   LinearConstraint(capacity, -np.inf, free.astype(np.float64))]
    result = milp(cost, integrality=np.ones(n_x + n_jobs), bounds=Bounds(0, 1),
                  constraints=constraints,
                  options={"time_limit": time_limit_s, "mip_rel_gap": mip_rel_gap})
    if result.x is None:
        raise ValidationFailed(f"the solver found no assignment: {result.message}", field="jobs")
    chosen = result.x[:n_x] > 0.5
    pools: list[int | None] = [None] * n_jobs
    for j, p in zip(job_of[chosen], pool_of[chosen]):
        pools[int(j)] = int(p)
    bound = getattr(result, "mip_dual_bound", None)
    return BatchAssignment(
        pools=tuple(pools), objective=float(result.fun),
        bound=float(bound) if bound is not None and np.isfinite(bound) else float(result.fun),
        status=str(result.message), variables=n_x + n_jobs,
    )


def _lp_rounding(scores: np.ndarray, devices: np.ndarray, free: np.ndarray, cost: np.ndarray,
                 once: sparse.csr_array, capacity: sparse.csr_array, job_of: np.ndarray,
                 pool_of: np.ndarray, time_limit_s: float) -> BatchAssignment:
    n_jobs = scores.shape[0]
    n_x = len(job_of)
    # scipy-stubs types A_ub and A_eq as dense arrays; the HiGHS methods take sparse ones.
    lp = linprog(cost, A_ub=capacity,  # type: ignore[call-overload]
                 b_ub=free.astype(np.float64), A_eq=once, b_eq=np.ones(n_jobs),
                 bounds=(0, 1), method="highs", options={"time_limit": time_limit_s})
    if lp.x is None:
        raise ValidationFailed(f"the LP relaxation failed: {lp.message}", field="jobs")
    share = lp.x[:n_x]
    lean = np.zeros(scores.shape)  # the LP's fractional assignment, job x pool
    lean[job_of, pool_of] = share
    room = free.astype(np.int64).copy()
    pools: list[int | None] = [None] * n_jobs
    for j in np.argsort(-lean.max(axis=1), kind="stable"):
        if lean[j].max() <= 0.0:  # the LP leaves the job queued: so does the rounding
            continue
        order = np.lexsort((scores[j], -lean[j]))  # the LP's lean first, then the score
        for p in order:
            if scores[j, p] >= INFEASIBLE:  # sorted last: nothing admissible is left
                break
            if room[p] >= devices[j]:
                room[p] -= devices[j]
                pools[int(j)] = int(p)
                break
    _improve(scores, devices, room, pools)
    return BatchAssignment(pools=tuple(pools), objective=objective_of(scores, pools),
                           bound=float(lp.fun), status=f"LP relaxation rounded ({lp.message})",
                           variables=n_x + n_jobs)


def _improve(scores: np.ndarray, devices: np.ndarray, room: np.ndarray,
             pools: list[int | None]) -> None:
    """One pass of moves: each job to a better-scored pool with room (queued jobs included)."""
    penalty = unassigned_penalty(scores)
    for j in range(len(pools)):
        current = pools[j]
        now = penalty[j] if current is None else scores[j, current]
        fits = np.where(room >= devices[j], scores[j], INFEASIBLE)
        p = int(fits.argmin())
        if fits[p] < now and fits[p] < INFEASIBLE:
            if current is not None:
                room[current] += devices[j]
            room[p] -= devices[j]
            pools[j] = p


def objective_of(scores: np.ndarray, pools: Sequence[int | None]) -> float:
    """The MILP objective of any assignment (to compare greedy or brute-force answers)."""
    penalty = unassigned_penalty(scores)
    return float(sum(penalty[j] if p is None else scores[j, p] for j, p in enumerate(pools)))
