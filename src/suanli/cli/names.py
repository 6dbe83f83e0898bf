"""What a user types for an accelerator, a vendor or a device kind, as the catalog names it.

`H100-SXM`, `nvidia-h100`, `nvidia` and `GPU` become `nvidia-h100-sxm`, `nvidia-h100-sxm`,
`NVIDIA` and `gpu`, read from the catalog shipped with the CLI. A name the catalog here does
not know goes to the platform as typed: its catalog may be newer, and it answers with the
allowed values.
"""

from __future__ import annotations

import re

import typer

from suanli.catalog import KINDS, Accelerator, load_catalog
from suanli.domain.errors import NotFound

_SEPARATORS = re.compile(r"[\s_/]+")


def _slug(text: str) -> str:
    return _SEPARATORS.sub("-", text.strip().lower())


def _model_slug(accelerator: Accelerator) -> str:
    return _slug(re.sub(r"\(.*?\)", "", accelerator.model)).strip("-")


def accelerator_key(text: str | None, option: str = "--accelerator") -> str | None:
    """The catalog key for a key, an alias, a key without its vendor (`h100-sxm`) or a model
    name (`H100 SXM5 80GB`), in any case; None stays None."""
    if text is None:
        return None
    catalog = load_catalog()
    wanted = _slug(text)
    try:
        return catalog.get(wanted).key
    except NotFound:
        pass
    matches = [a.key for a in catalog
               if a.key.endswith("-" + wanted) or _model_slug(a) == wanted]
    if not matches:
        matches = [a.key for a in catalog
                   if _model_slug(a).startswith(wanted) or ("-" + wanted + "-") in a.key]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise typer.BadParameter(f"{text!r} could be {', '.join(matches)}; name one "
                                 "(`suanli accelerators` lists them)", param_hint=option)
    return text


def vendor_name(text: str | None) -> str | None:
    """The catalog's spelling of a vendor (`nvidia` -> `NVIDIA`)."""
    if text is None:
        return None
    for vendor in load_catalog().vendors():
        if vendor.casefold() == text.strip().casefold():
            return vendor
    return text


def device_kind(text: str | None, option: str = "--device-kind") -> str | None:
    """One of the catalog's device kinds, in lower case; anything else is refused here."""
    if text is None:
        return None
    kind = text.strip().lower()
    if kind not in KINDS:
        raise typer.BadParameter(f"{text!r} is not a device kind; one of {', '.join(KINDS)}",
                                 param_hint=option)
    return kind
