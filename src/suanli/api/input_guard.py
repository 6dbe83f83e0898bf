"""What no request may carry in any field, checked before a route runs: control characters in
query and path values; NUL, lone surrogates, non-finite numbers and integers beyond int64
anywhere in a JSON body. Each field's own type then checks its shape and range."""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import Request

from suanli.domain.errors import ValidationFailed

# C0 controls, DEL and C1 controls: no query or path value needs one.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# NUL (PostgreSQL text cannot hold it) and lone surrogates (not encodable as UTF-8).
UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
MAX_INT = 2**63 - 1  # what a BIGINT column holds
MAX_WALK = 200_000  # strings, numbers and containers checked in one body (1 MiB holds fewer)


def check_text(value: str, field: str) -> None:
    if UNSTORABLE.search(value):
        raise ValidationFailed("must not contain NUL or unpaired surrogate characters",
                               field=field)


def check_json(value: Any) -> None:
    """Walks a parsed JSON body without recursion (a deep one cannot exhaust the stack).

    Python's json module reads NaN, Infinity and 1e400 (as inf): they stop here.
    """
    pending: list[tuple[Any, str]] = [(value, "")]
    for _ in range(MAX_WALK):
        if not pending:
            return
        item, where = pending.pop()
        field = where or "body"  # named like problems.field_path: tiers[0].from_quantity
        if isinstance(item, str):
            check_text(item, field)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_INT:
                raise ValidationFailed("is beyond the range of a 64-bit integer", field=field)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationFailed("must be a finite number", field=field)
        elif isinstance(item, dict):
            for key, child in item.items():
                path = f"{where}.{key}" if where else key
                check_text(key, path)
                pending.append((child, path))
        elif isinstance(item, list):
            pending.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
    raise ValidationFailed(f"more than {MAX_WALK} values", field="body")


def _printable_parameter(value: str, field: str) -> None:
    if CONTROL.search(value):
        raise ValidationFailed("must not contain control characters (NUL, tab, newline, ...)",
                               field=field)
    check_text(value, field)


async def guard(request: Request) -> None:
    """An app-wide dependency: runs before authentication and each route's own checks."""
    for name, value in request.query_params.multi_items():
        _printable_parameter(name, name)
        _printable_parameter(value, name)
    for name, value in request.path_params.items():
        if isinstance(value, str):
            _printable_parameter(value, name)
    content_type = request.headers.get("content-type", "")
    if request.method in ("GET", "HEAD", "OPTIONS") or (content_type and "json" not in
                                                        content_type):
        return
    body = await request.body()
    if not body:
        return
    try:
        document = await request.json()
    except (ValueError, UnicodeDecodeError):
        return  # the route answers malformed JSON with its own 422
    check_json(document)

