"""The shapes message fields take on both wires: printable text of bounded length, strict and
bounded numbers, names chosen from a vocabulary. A value outside them is refused naming the
field; nothing is cut or coerced silently. docs/api.md lists the limits. (The catalog-bound
shapes, accelerator keys and vendors, stay in suanli.api.fields.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
)

# Money: integer fen. A single amount stays under 10^15 fen (10 trillion CNY), so that sums of
# thousands of them still fit a signed 64-bit integer (9.2 x 10^18).
MAX_FEN = 10**15
MAX_FENCE = 2**62
NAME_CHARS = 120
ID_CHARS = 72

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
TOKEN_PATTERN = r"^[A-Za-z0-9._:*+-]+$"  # ids, authorities, keys: no blanks or control bytes


class Strict(BaseModel):
    """Base of request bodies: unknown fields and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must be printable text: no control characters (NUL, tab, newline)")
    return value


def text(max_length: int, *, min_length: int = 0) -> Any:
    """Single-line printable text of at most `max_length` characters."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length),
                     AfterValidator(_printable),
                     WithJsonSchema({"type": "string", "minLength": min_length,
                                     "maxLength": max_length, "pattern": PRINTABLE_PATTERN})]


Name = text(NAME_CHARS, min_length=1)
Token = Annotated[str, StringConstraints(min_length=1, max_length=ID_CHARS,
                                         pattern=TOKEN_PATTERN)]


def bounded_int(low: int, high: int, **kwargs: Any) -> Any:
    """A JSON integer (not a string, float or boolean) in low..high."""
    return Annotated[StrictInt, Field(ge=low, le=high, **kwargs)]


Fen = bounded_int(0, MAX_FEN, description="integer fen (1 CNY = 100 fen)")
Flag = StrictBool


def bounded_float(low: float, high: float, **kwargs: Any) -> Any:
    return Annotated[float, Field(ge=low, le=high, allow_inf_nan=False, strict=True, **kwargs)]


def bounded_decimal(low: int | str, high: int | str, *, places: int = 6, **kwargs: Any) -> Any:
    """A finite decimal in low..high with at most `places` digits after the point."""
    return Annotated[Decimal, Field(ge=Decimal(low), le=Decimal(high), decimal_places=places,
                                    max_digits=24, allow_inf_nan=False, **kwargs)]


# -- vocabularies ----------------------------------------------------------------------------

def one_of(values: Iterable[str], *, what: str) -> Any:
    """A name from `values`, matched ignoring case and surrounding blanks, stored as spelled
    in `values`; anything else is refused with the list of allowed names."""
    allowed = tuple(values)
    canonical = {v.casefold(): v for v in allowed}

    def pick(value: Any) -> Any:
        if isinstance(value, str):
            return canonical.get(value.strip().casefold(), value)
        return value

    return Annotated[Literal[allowed], BeforeValidator(pick),
                     Field(description=f"{what}: {', '.join(allowed)}")]
