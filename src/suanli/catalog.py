"""The data shipped in the package, read once: the accelerator catalog (加速卡目录), SCU ratings
and the city table."""

from __future__ import annotations

import csv
import difflib
import functools
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from importlib import resources
from typing import Literal, get_args

from suanli.domain.errors import NotFound, ValidationFailed
from suanli.domain.geo import Cities, City
from suanli.domain.resources import Hub
from suanli.domain.units import RatingsTable, effective_units_per_device_hour, ratings_from_document

CATALOG_FILE = "accelerators.csv"
RATINGS_FILE = "effective_ratings.json"
CITIES_FILE = "cities.csv"

AcceleratorKind = Literal["gpu", "npu", "dcu", "xpu", "cpu"]
KINDS: tuple[str, ...] = get_args(AcceleratorKind)

# Short names people and older configs use, each for the variant most deployed in China's
# intelligent-computing centres; `Catalog.get` accepts them, the catalog stores only keys.
ALIASES: dict[str, str] = {
    "nvidia-h100": "nvidia-h100-sxm",
    "nvidia-h800": "nvidia-h800-sxm",
    "nvidia-a100": "nvidia-a100-sxm4-80gb",
    "nvidia-a100-80gb": "nvidia-a100-sxm4-80gb",
    "nvidia-a100-40gb": "nvidia-a100-sxm4-40gb",
    "nvidia-a800": "nvidia-a800-sxm4-80gb",
    "nvidia-v100": "nvidia-v100-sxm2-32gb",
    "nvidia-p100": "nvidia-p100-pcie-16gb",
    "cambricon-mlu370": "cambricon-mlu370-x8",
    "cambricon-mlu290": "cambricon-mlu290-m5",
    "huawei-kunpeng-920": "huawei-kunpeng-920-7260",
    "intel-xeon-8480": "intel-xeon-platinum-8480plus",
}

_KEY_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_CATALOG_ROWS = 10_000
MAX_TEXT_CHARS = 400
# Far above any device this decade; a bigger number is a unit slip (MB for GB, GFLOPS for TFLOPS).
MAX_FIGURE = 1_000_000.0


@dataclass(frozen=True)
class Accelerator:
    """A device model with its datasheet figures; a figure the vendor does not publish is None.

    Throughput figures are dense (no structured sparsity) peaks; FP64/FP32 are vector rates.
    """

    key: str
    vendor: str
    model: str
    architecture: str
    kind: AcceleratorKind
    memory_gb: float | None
    memory_bandwidth_gbs: float | None
    fp64_tflops: float | None
    fp32_tflops: float | None
    tf32_tflops: float | None
    bf16_tflops: float | None
    fp16_tflops: float | None
    fp8_tflops: float | None
    int8_tops: float | None
    tdp_w: float | None
    interconnect: str
    software_stack: str
    source: str


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Accelerator))
REQUIRED_TEXT = ("key", "vendor", "model", "architecture", "kind", "software_stack", "source")
OPTIONAL_TEXT = ("interconnect",)
FIGURES: tuple[str, ...] = tuple(c for c in COLUMNS if c not in REQUIRED_TEXT + OPTIONAL_TEXT)


def _figure(raw: str, where: str) -> float | None:
    if raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValidationFailed(f"not a number: {raw!r}", field=where) from None
    # Zero is refused too: an unpublished figure is an empty cell, never 0.
    if not math.isfinite(value) or value <= 0 or value > MAX_FIGURE:
        raise ValidationFailed(
            f"must be a positive number up to {MAX_FIGURE:g} (leave empty if unpublished), "
            f"got {raw!r}",
            field=where,
        )
    return value


def _text(raw: str, where: str, required: bool) -> str:
    value = raw.strip()
    if required and not value:
        raise ValidationFailed("is required", field=where)
    if len(value) > MAX_TEXT_CHARS:
        raise ValidationFailed(f"longer than {MAX_TEXT_CHARS} characters", field=where)
    return value


def accelerator_from_row(row: dict[str, str], where: str) -> Accelerator:
    """Builds one Accelerator from a CSV row; `where` prefixes error fields (file:line)."""
    values: dict[str, object] = {}
    for column in REQUIRED_TEXT + OPTIONAL_TEXT:
        values[column] = _text(row.get(column) or "", f"{where}:{column}", column in REQUIRED_TEXT)
    for column in FIGURES:
        values[column] = _figure(row.get(column) or "", f"{where}:{column}")
    if not _KEY_RE.match(str(values["key"])):
        raise ValidationFailed(
            f"key {values['key']!r} must be a lowercase slug like 'nvidia-h100-sxm'",
            field=f"{where}:key",
        )
    if values["kind"] not in KINDS:
        raise ValidationFailed(
            f"kind {values['kind']!r} must be one of {', '.join(KINDS)}", field=f"{where}:kind"
        )
    # Each column was checked above as text or as a figure; the dict cannot say which is which.
    return Accelerator(**values)  # type: ignore[arg-type]


class Catalog:
    """An immutable, validated set of accelerator models, in file order."""

    def __init__(
        self, accelerators: Iterable[Accelerator], aliases: Mapping[str, str] | None = None
    ) -> None:
        items = tuple(accelerators)
        if not items:
            raise ValidationFailed("the catalog is empty", field="accelerator")
        if len(items) > MAX_CATALOG_ROWS:
            raise ValidationFailed(f"more than {MAX_CATALOG_ROWS} models", field="accelerator")
        by_key: dict[str, Accelerator] = {}
        for acc in items:
            if acc.key in by_key:
                raise ValidationFailed(f"duplicate key {acc.key!r}", field="key")
            by_key[acc.key] = acc
        aliases = dict(aliases or {})
        for alias, key in aliases.items():
            if alias in by_key or key not in by_key:
                raise ValidationFailed(
                    f"alias {alias!r} must not be a key and must name one ({key!r})", field="alias"
                )
        self._items = items
        self._by_key = by_key
        self._aliases = aliases

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Accelerator]:
        return iter(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def keys(self) -> tuple[str, ...]:
        return tuple(self._by_key)

    def get(self, key: str) -> Accelerator:
        """The model with `key` (or one of the ALIASES short names)."""
        acc = self._by_key.get(self._aliases.get(key, key))
        if acc is None:
            close = difflib.get_close_matches(key, self._by_key, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise NotFound(
                f"no accelerator {key!r} in the catalog ({len(self)} models){hint}",
                field="accelerator",
            )
        return acc

    def all(self) -> tuple[Accelerator, ...]:
        return self._items

    def vendors(self) -> tuple[str, ...]:
        return tuple(sorted({acc.vendor for acc in self._items}))

    def by_vendor(self) -> dict[str, tuple[Accelerator, ...]]:
        return {v: tuple(a for a in self._items if a.vendor == v) for v in self.vendors()}

    def find(
        self,
        vendor: str | None = None,
        architecture: str | None = None,
        kind: str | None = None,
        min_memory_gb: float | None = None,
    ) -> tuple[Accelerator, ...]:
        """Models matching every given filter; names compare case-insensitively.

        A model whose memory is unpublished (CPUs) never meets `min_memory_gb`.
        """
        if kind is not None and kind not in KINDS:
            raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}", field="kind")

        def matches(acc: Accelerator) -> bool:
            if vendor is not None and acc.vendor.casefold() != vendor.casefold():
                return False
            if architecture is not None and acc.architecture.casefold() != architecture.casefold():
                return False
            if kind is not None and acc.kind != kind:
                return False
            if min_memory_gb is not None:
                return acc.memory_gb is not None and acc.memory_gb >= min_memory_gb
            return True

        return tuple(acc for acc in self._items if matches(acc))


def parse_catalog_csv(
    text: str, name: str = CATALOG_FILE, aliases: Mapping[str, str] | None = None
) -> Catalog:
    """Parses and validates catalog CSV text (the header must name exactly COLUMNS)."""
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(reader.fieldnames or ())
    if set(header) != set(COLUMNS) or len(header) != len(COLUMNS):
        missing = sorted(set(COLUMNS) - set(header))
        extra = sorted(set(header) - set(COLUMNS))
        raise ValidationFailed(
            f"{name}: header mismatch (missing {missing}, unexpected {extra})", field="columns"
        )
    rows = []
    for row in reader:
        if None in row:  # DictReader files surplus cells under the None key
            raise ValidationFailed("more cells than columns", field=f"{name}:{reader.line_num}")
        rows.append(accelerator_from_row(row, f"{name}:{reader.line_num}"))
    return Catalog(rows, aliases)


def _read_packaged(file_name: str) -> str:
    return resources.files("suanli").joinpath("data", file_name).read_text(encoding="utf-8")


@functools.cache
def load_catalog() -> Catalog:
    """The catalog shipped with the package (read once)."""
    return parse_catalog_csv(_read_packaged(CATALOG_FILE), aliases=ALIASES)


@functools.cache
def load_cities() -> Cities:
    """The city table shipped with the package (read once)."""
    return Cities(parse_cities(_read_packaged(CITIES_FILE)))


def parse_cities(text: str) -> tuple[City, ...]:
    """Parses the cities CSV (name,name_zh,province,latitude,longitude,hub,cluster)."""
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        rows.append(City(
            name=row["name"].strip(),
            name_zh=row["name_zh"].strip(),
            province=row["province"].strip(),
            latitude=float(row["latitude"]),
            longitude=float(row["longitude"]),
            hub=Hub(row["hub"]) if row["hub"].strip() else None,
            cluster=row["cluster"].strip() or None,
        ))
    return tuple(rows)


@functools.cache
def load_ratings() -> RatingsTable:
    """The effective SCU ratings shipped with the package, checked against the catalog."""
    table = ratings_from_document(json.loads(_read_packaged(RATINGS_FILE)))
    catalog = load_catalog()
    unknown = sorted(k for k in table.ratings if k not in catalog)
    if unknown:
        raise ValidationFailed(f"{RATINGS_FILE} rates unknown devices {unknown}", field="devices")
    return table


def units_per_device_hour(key: str, workload_class: str = "general") -> Decimal:
    """Effective SCU per device-hour of catalog model `key` for a workload class."""
    # through the catalog: aliases resolve, and a typo gets a did-you-mean, not "not rated"
    acc = load_catalog().get(key)
    return effective_units_per_device_hour(acc.key, workload_class, load_ratings())
