"""The NumPy array types placement passes around, named for what they hold."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

FloatArray: TypeAlias = NDArray[np.floating[Any]]  # float64 in practice; sums may widen
IntArray: TypeAlias = NDArray[np.int64]
BoolArray: TypeAlias = NDArray[np.bool_]
IndexArray: TypeAlias = NDArray[np.intp]  # pool positions
Devices: TypeAlias = IntArray | int  # a job's width: one number, or one per pool


def at(devices: Devices, pool: int) -> int:
    """The job's width on pool `pool`."""
    return int(devices) if not isinstance(devices, np.ndarray) else int(devices[pool])


def over(devices: Devices, index: IndexArray | slice) -> IntArray | int:
    """The job's width on the pools at `index` (the number itself when it is one number)."""
    return devices if not isinstance(devices, np.ndarray) else devices[index]
