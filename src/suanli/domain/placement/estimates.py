"""How long a job holds a pool and what the lease costs: the estimates every path shares.

The vector and the one-pool versions do the same floating-point operations in the same order,
so a decision checked on one pool agrees exactly with the same check over all pools.
"""

from __future__ import annotations

import math

import numpy as np

from suanli.domain.placement.arrays import Devices, IndexArray, IntArray, over
from suanli.domain.placement.model import JobRequest
from suanli.domain.placement.table import PoolTable
from suanli.domain.time import SECONDS_PER_HOUR


def lease_timing(table: PoolTable, job: JobRequest, devices: Devices,
                 index: IndexArray | slice) -> tuple[IntArray, IntArray]:
    """(staging seconds, run seconds) at pools `index`: queue wait and data in, then the run."""
    d = over(devices, index)
    _, s_per_gb = table.transfer_rows(job.data_region)
    staging = np.ceil(table.queue_wait_s[index] + job.data_gb * s_per_gb[index])
    run = np.ceil(job.work_units * table.inv_units[index] / d * SECONDS_PER_HOUR)
    return staging.astype(np.int64), np.maximum(run, 1).astype(np.int64)


def lease_cost(table: PoolTable, job: JobRequest, devices: Devices, index: IndexArray,
               start_s: IntArray | int, end_s: IntArray | int) -> IntArray:
    """Fen for leases [start, end) at the pools' hourly prices, plus moving the data in."""
    d = over(devices, index)
    series = table.spot_price if job.spot_allowed else table.price
    fen_s = series.integral(index, start_s, end_s) * d
    fen, _ = table.transfer_rows(job.data_region)
    transfer = np.ceil(job.data_gb * fen[index]).astype(np.int64)
    cost: IntArray = -(-fen_s // SECONDS_PER_HOUR) + transfer
    return cost


def lease_timing_one(table: PoolTable, job: JobRequest, devices: int,
                     pool: int) -> tuple[int, int]:
    """`lease_timing` for one pool in plain Python numbers."""
    _, s_per_gb = table.transfer_rows(job.data_region)
    staging = math.ceil(table.queue_wait_s[pool].item() + job.data_gb * s_per_gb[pool].item())
    run = math.ceil(job.work_units * table.inv_units[pool].item() / devices * SECONDS_PER_HOUR)
    return staging, max(run, 1)


def lease_cost_one(table: PoolTable, job: JobRequest, devices: int, pool: int, start_s: int,
                   end_s: int) -> int:
    """`lease_cost` for one pool in plain Python numbers."""
    series = table.spot_price if job.spot_allowed else table.price
    fen_s = series.integral_one(pool, start_s, end_s) * devices
    fen, _ = table.transfer_rows(job.data_region)
    transfer: int = math.ceil(job.data_gb * fen[pool].item())
    return -(-fen_s // SECONDS_PER_HOUR) + transfer
