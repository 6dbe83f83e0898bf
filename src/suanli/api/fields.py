"""The shapes request fields take at the edge: printable text of bounded length, strict and
bounded numbers, names chosen from a vocabulary. A value outside them is a 422 naming the
field; nothing is cut or coerced silently. docs/api.md lists the limits.
"""

from __future__ import annotations

import difflib
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from suanli.catalog import KINDS, load_catalog, load_cities
from suanli.domain.errors import NotFound
from suanli.domain.resources import MAX_DEVICES_PER_POOL, PROVINCES
from suanli.domain.units import WORKLOAD_CLASSES

# The generic shapes live with the wire models (suanli.protocol.fields); re-exported here.
from suanli.protocol.fields import (  # noqa: F401
    _CONTROL,
    ID_CHARS,
    MAX_FEN,
    MAX_FENCE,
    NAME_CHARS,
    PRINTABLE_PATTERN,
    TOKEN_PATTERN,
    Fen,
    Flag,
    Name,
    Strict,
    Token,
    _printable,
    bounded_decimal,
    bounded_float,
    bounded_int,
    one_of,
    text,
)

MAX_DEVICES = MAX_DEVICES_PER_POOL


def _catalog_key(value: str) -> str:
    catalog = load_catalog()
    wanted = value.strip().lower()
    try:
        return catalog.get(wanted).key
    except NotFound:
        raise ValueError(f"no accelerator {value!r} in the catalog of {len(catalog)} models; "
                         f"closest: {', '.join(closest_keys(wanted))} "
                         "(GET /v1/catalog/accelerators lists them all)") from None


def closest_keys(wanted: str, n: int = 3) -> list[str]:
    """Catalog keys that contain `wanted` (xeon -> the Xeon models), else the most alike."""
    keys = load_catalog().keys()
    containing = [key for key in keys if wanted and wanted in key]
    return containing[:n] or difflib.get_close_matches(wanted, keys, n=n, cutoff=0.0)


AcceleratorKey = Annotated[str, StringConstraints(min_length=1, max_length=48),
                           AfterValidator(_catalog_key),
                           Field(description="catalog key, e.g. nvidia-a800 (any case)")]
def _city(value: str) -> str:
    try:
        return load_cities().city(value).name
    except NotFound as exc:
        raise ValueError(exc.detail) from None


UserCity = Annotated[str, StringConstraints(min_length=1, max_length=64),
                     AfterValidator(_city),
                     Field(description="a city of the city table (English or Chinese name)")]
DeviceKind = one_of(KINDS, what="device kind")
WorkloadClass = one_of(WORKLOAD_CLASSES, what="workload class")
Province = one_of(PROVINCES, what="ISO 3166-2:CN province code")


def vendor_names() -> tuple[str, ...]:
    return load_catalog().vendors()


Vendor = one_of(vendor_names(), what="vendor")
Architecture = one_of(sorted({a.architecture for a in load_catalog().all()}),
                      what="architecture")

