"""The local engine's settings checked one by one (values from a command line fail with a
ValidationFailed naming the setting), and the sandbox set up and probed once at start."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from suanli.adapters.engines._local_sandbox import SandboxPolicy, find_tools, probe
from suanli.adapters.engines._local_supervisor import MAX_JOB_UIDS
from suanli.domain.errors import ValidationFailed

DEFAULT_UID_BASE = 1_900_000_000  # root mode: running jobs get uids from here up
MAX_UID_BASE = (1 << 31) - MAX_JOB_UIDS - 1
log = logging.getLogger("suanli.engines.local")


def in_range(name: str, value: Any, low: float, high: float, default: Any = ..., *,
              integer: bool = True) -> Any:
    """An option's value, checked: an integer (or any number) within [low, high]."""
    if value is None and default is not ...:
        return default
    kinds = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ValidationFailed(f"{name} must be {kind} in [{low}, {high}], not {value!r}",
                               field=name)
    return value


def choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValidationFailed(f"{name} must be one of {', '.join(choices)}, not {value!r}",
                               field=name)
    return str(value)


def paths(expose: str | Sequence[str] | None) -> list[str] | None:
    if expose is None:
        return None
    if isinstance(expose, str):
        return [p for p in expose.split(",") if p]
    return list(expose)


def sandbox_settings(policy: SandboxPolicy, uid_base: int, expose: list[str] | None,
                     bwrap: str | None, private: tuple[Path, Path]) -> dict[str, Any]:
    """The sandbox's part of every job's limits: the tools, the uids, what is exposed.
    `private` is (job table, work root): never exposed. Probes bwrap unless `none`."""
    if expose is None:
        expose = list(dict.fromkeys([sys.prefix, sys.base_prefix]))  # the Python jobs use
    for path in expose:
        resolved = Path(path).resolve()
        if not Path(path).is_absolute() or any(
            inner == resolved or resolved in inner.parents
            for inner in (private[0].resolve(), private[1].resolve())
        ):
            raise ValidationFailed(f"cannot expose {path!r}: not absolute, or it holds the "
                                   "engine's own files", field="expose")
    if policy is SandboxPolicy.NONE:
        log.warning("JOB SANDBOX DISABLED (--sandbox none): jobs run unconfined as %s, "
                    "with this host's network and files; for development only",
                    os.geteuid())
        return {"tools": None, "uid_base": None, "expose": expose}
    tools = find_tools(bwrap)
    as_root = os.geteuid() == 0
    probe(tools, as_root=as_root, uid=uid_base + MAX_JOB_UIDS - 1, expose=expose,
          scratch=private[1])
    return {"tools": {"bwrap": tools.bwrap, "setpriv": tools.setpriv,
                      "prlimit": tools.prlimit},
            "uid_base": uid_base if as_root else None, "expose": expose}
