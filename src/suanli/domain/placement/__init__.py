"""Placement (调度决策): match jobs to pools across the federation and explain the choice.

Pure domain code: no I/O; time comes in as `now_s`, randomness as a NumPy Generator, so the
simulator and the server run the same decisions.
"""

from suanli.domain.placement.engine import Choice, PlacementEngine
from suanli.domain.placement.model import (
    ANY_ACCELERATOR,
    HUB_PROVINCE,
    MAX_RTT_MS,
    AcceleratorConstraint,
    Allocation,
    JobRequest,
    LatencyClass,
    Placement,
    PoolSnapshot,
)
from suanli.domain.placement.policies import (
    BASELINES,
    POLICIES,
    FirstFit,
    LeastLoaded,
    LinearPolicy,
    Policy,
    RandomFit,
    make_policy,
)
from suanli.domain.placement.scoring import TERMS, LinearScorer, Weights
from suanli.domain.placement.table import HourlySeries, Network, PoolTable, UniformNetwork

__all__ = [
    "ANY_ACCELERATOR", "BASELINES", "HUB_PROVINCE", "MAX_RTT_MS", "POLICIES", "TERMS",
    "AcceleratorConstraint", "Allocation", "Choice", "FirstFit", "HourlySeries", "JobRequest",
    "LatencyClass", "LeastLoaded", "LinearPolicy", "LinearScorer", "Network", "Placement",
    "PlacementEngine", "Policy", "PoolSnapshot", "PoolTable", "RandomFit", "UniformNetwork",
    "Weights", "make_policy",
]
