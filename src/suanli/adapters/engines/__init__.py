"""Engine adapters behind one Protocol; `get_engine("slurm", ...)` builds one by its kind.

Adapters are imported only when asked for, so a host without Ray never imports it. A package
outside suanli adds an engine through the `suanli.engines` entry-point group
(`kind = "package.module:Class"`), touching nothing here.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from suanli.adapters.engines._options import coerce_options
from suanli.adapters.engines.base import (
    Capacity,
    Engine,
    EngineError,
    EngineJobRef,
    EngineJobSpec,
    EngineState,
    EngineStatus,
    EngineUnavailable,
    EngineUsage,
)
from suanli.domain.errors import ValidationFailed

__all__ = [
    "Capacity",
    "Engine",
    "EngineError",
    "EngineJobRef",
    "EngineJobSpec",
    "EngineState",
    "EngineStatus",
    "EngineUnavailable",
    "EngineUsage",
    "engine_class",
    "engine_kinds",
    "get_engine",
]

ENTRY_POINT_GROUP = "suanli.engines"
_BUILTIN: dict[str, str] = {
    "local": "suanli.adapters.engines.local:LocalEngine",
    "slurm": "suanli.adapters.engines.slurm:SlurmEngine",
    "ray": "suanli.adapters.engines.ray_jobs:RayJobsEngine",
    "noop": "suanli.adapters.engines.noop:NoopEngine",
}


def _targets() -> dict[str, str]:
    targets = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    targets.update(_BUILTIN)  # a plugin cannot shadow a built-in engine
    return targets


def engine_kinds() -> tuple[str, ...]:
    return tuple(sorted(_targets()))


def engine_class(kind: str) -> type:
    """The adapter class of `kind`; its __init__'s keyword arguments are the engine's options."""
    target = _targets().get(kind)
    if target is None:
        raise ValidationFailed(
            f"unknown engine {kind!r}; known: {', '.join(engine_kinds())}", field="engine"
        )
    module_name, _, class_name = target.partition(":")
    cls: type = getattr(importlib.import_module(module_name), class_name)
    return cls


def get_engine(kind: str, **config: Any) -> Engine:
    """A new adapter of `kind` configured by keyword arguments (see each adapter's __init__).

    Text values (from a command line) are parsed to the types the adapter declares; an
    unknown setting or an unparsable value is a ValidationFailed, never a crash later.
    """
    cls = engine_class(kind)
    engine = cls(**coerce_options(kind, cls, config))
    if not isinstance(engine, Engine):
        raise TypeError(f"{kind} engine does not implement the Engine protocol")
    return engine
