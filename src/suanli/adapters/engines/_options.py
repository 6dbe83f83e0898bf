"""Engine settings given as text (`suanli agent --engine-option key=value`) turned into the
types an adapter's constructor declares, or a ValidationFailed that names the setting."""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from suanli.domain.errors import ValidationFailed

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_NAMES = {int: "an integer", float: "a number", bool: "true or false"}


def coerce_options(kind: str, cls: type, options: Mapping[str, Any]) -> dict[str, Any]:
    """`options` with text values parsed to the declared type; unknown names refused."""
    params = {name for name in inspect.signature(cls).parameters}
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except (NameError, TypeError):  # an annotation that cannot be evaluated: take text as is
        hints = {}
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in params:
            known = ", ".join(sorted(params))
            raise ValidationFailed(f"the {kind} engine has no setting {key!r}; known: {known}",
                                   field=key)
        out[key] = _parse(key, value, hints.get(key, str)) if isinstance(value, str) else value
    return out


def _parse(key: str, text: str, hint: Any) -> Any:
    members = set(typing.get_args(hint)) if _is_union(hint) else {hint}
    if text.strip().lower() in {"", "none", "null"} and type(None) in members and \
            str not in members:
        return None
    try:
        if int in members:
            return int(text)
        if float in members:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return value
        if bool in members:
            return _boolean(text)
    except ValueError:
        wanted = next(name for kind, name in _NAMES.items() if kind in members)
        raise ValidationFailed(f"engine setting {key}: {text!r} is not {wanted}",
                               field=key) from None
    return text


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)
