"""`suanli ask`: a table-driven reading of a request for compute, in Chinese or English.

"find me 64 Ascend cards in the west for a 3-day pre-training run under 20,000 yuan, greenest
first" and "帮我找64张昇腾卡，西部，预训练3天，预算2万元以内，最环保优先" both become one `Ask`:
the fields of a pool search and of a quote. The tables of `ask_words` (and the catalog's
accelerators and the city table, handed in as a `Vocabulary`) are the whole grammar. Every
word is either matched by a rule, a known filler word, or reported in `Ask.unknown`: nothing
is guessed silently, and a caller refuses to spend while anything is unknown or ambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from suanli.domain.ask_words import (
    BRANDS,
    DURATION_UNITS,
    EN_NUMBER,
    EN_NUMBERS,
    FILLER_EN,
    FILLER_ZH,
    HUB_NAMES,
    KIND_WORDS,
    NEAR_EN,
    NUM,
    PROVINCES_ZH,
    REGIONS,
    SCALE,
    SORTS,
    SPOT_WORDS,
    WORKLOADS,
    ZH_DIGITS,
    ZH_NUMBER,
    ZH_UNITS,
    Vocabulary,
    build_vocabulary,
    fold,
)
from suanli.domain.geo import City

__all__ = ["MAX_ASK_CHARS", "Ask", "Plan", "Vocabulary", "build_vocabulary", "fold",
           "hub_provinces", "parse", "plan", "zh_number"]
from suanli.domain.jobs import MAX_DEVICES_PER_JOB, MAX_TIME_LIMIT_S
from suanli.domain.resources import PROVINCES

MAX_ASK_CHARS = 500  # a request longer than this is refused, never cut

@dataclass(frozen=True)
class Ask:
    """What a request asked for; None where it said nothing. Money in fen, time in seconds."""

    text: str
    devices: int | None = None
    accelerator: str | None = None
    vendor: str | None = None
    device_kind: str | None = None
    workload_class: str | None = None
    hubs: tuple[str, ...] = ()
    provinces: tuple[str, ...] = ()
    near_city: str | None = None
    duration_s: int | None = None
    budget_fen: int | None = None
    max_fen_per_device_hour: int | None = None
    min_memory_gb: int | None = None
    sort: str | None = None
    spot: bool = False
    understood: tuple[str, ...] = ()  # "devices=64 (64 Ascend cards)", in the order matched
    unknown: tuple[str, ...] = ()  # words no rule matched
    ambiguous: tuple[str, ...] = ()  # words that name more than one thing

    @property
    def clear(self) -> bool:
        """Nothing unknown or ambiguous: safe to act on without asking again."""
        return not self.unknown and not self.ambiguous


def zh_number(text: str) -> int:
    """一 .. 九千九百九十九 (and plain digits) as an int."""
    if text.isdigit():
        return int(text)
    total, current = 0, 0
    for ch in text:
        if ch in ZH_DIGITS:
            current = ZH_DIGITS[ch]
        elif ch in ZH_UNITS:
            total += (current or 1) * ZH_UNITS[ch]
            current = 0
    return total + current


def _number(text: str) -> Decimal:
    text = text.replace(",", "")
    if text in EN_NUMBERS:
        return Decimal(EN_NUMBERS[text])
    if re.fullmatch(ZH_NUMBER, text):
        return Decimal(zh_number(text))
    try:
        return Decimal(text)
    except InvalidOperation:
        return Decimal(0)


class _Reader:
    """One pass over the folded text: each rule consumes what it matches."""

    def __init__(self, text: str, vocabulary: Vocabulary) -> None:
        self.rest = " " + fold(text).replace("'", "").replace("\u2019", "") + " "
        self.vocabulary = vocabulary
        self.ask = Ask(text=text)
        self.understood: list[str] = []
        self.ambiguous: list[str] = []

    def take(self, pattern: str, flags: int = 0) -> Iterable[re.Match[str]]:
        """Every match of `pattern`, removed from the text as it is found."""
        while True:
            match = re.search(pattern, self.rest, flags)
            if match is None:
                return
            self.rest = self.rest[:match.start()] + " " + self.rest[match.end():]
            yield match

    def note(self, what: str, source: str, **changes: object) -> None:
        for name, value in changes.items():
            before = getattr(self.ask, name)
            if not isinstance(before, tuple | bool) and before is not None and before != value:
                # two different answers to one question: ask, do not keep the last
                self.ambiguous.append(f"{name}: {before} or {value}?")
        self.ask = replace(self.ask, **changes)  # type: ignore[arg-type]
        self.understood.append(f"{what} ({source.strip()})")


def _words(phrases: Iterable[str], plural: bool = False) -> str:
    """An alternation, longest first; ASCII phrases only match whole words (with `plural`,
    an "s" may follow: "4090s")."""
    parts = []
    tail = "s?" if plural else ""
    for phrase in sorted(set(phrases), key=len, reverse=True):
        escaped = re.escape(phrase).replace(r"\ ", r"[\s-]?").replace(r"\-", r"[\s-]?")
        parts.append(rf"(?<![a-z0-9]){escaped}{tail}(?![a-z0-9])" if phrase.isascii()
                     else escaped)
    return "(?:" + "|".join(parts) + ")"


def _money_fen(number: str, scale: str | None) -> int:
    amount = _number(number) * SCALE.get(scale or "", 1)
    return int((amount * 100).to_integral_value())


def _read_hourly_price(r: _Reader) -> None:
    yuan = r"(?:yuan|rmb|cny|元|块钱|块)"
    per_hour = (r"(?:/\s*(?:h|hr|hour)|per\s+(?:device\s+|card\s+|gpu\s+)?hour|an\s+hour|"
                r"每(?:卡)?每?小时|/(?:卡)?小时|一小时)")
    for m in r.take(rf"(?:每张?卡?每?小时|每卡时)\s*(?:不超过|最多|低于)?\s*{NUM}\s*{yuan}"
                    r"\s*(?:以内|以下|之内)?"):
        r.note(f"max_fen_per_device_hour={_money_fen(m.group(1), None)}", m.group(0),
               max_fen_per_device_hour=_money_fen(m.group(1), None))
    for m in r.take(rf"(?:under|below|at most|max|up to|less than|within|no more than|<=?)?\s*"
                    rf"[¥￥]?\s*{NUM}\s*{yuan}?\s*{per_hour}\s*(?:以内|以下|之内)?"):
        r.note(f"max_fen_per_device_hour={_money_fen(m.group(1), None)}", m.group(0),
               max_fen_per_device_hour=_money_fen(m.group(1), None))


def _read_budget(r: _Reader) -> None:
    yuan = r"(?:yuan|rmb|cny|元|块钱|块)"
    scale = r"(k|千|万|w|m|百万)?"
    patterns = (
        rf"(?:under|below|at most|max|up to|less than|within|no more than|budget(?: of| is)?|"
        rf"<=?)\s*[¥￥]?\s*(\d[\d,]*(?:\.\d+)?)\s*{scale}\s*{yuan}?(?![\w])",
        rf"[¥￥]\s*(\d[\d,]*(?:\.\d+)?)\s*{scale}",
        rf"(\d[\d,]*(?:\.\d+)?)\s*{scale}\s*(?:yuan|rmb|cny)(?![\w])",
        rf"(?:预算|不超过|不超|最多|花费?不超过|费用不超过|总价不超过|低于|少于)\s*"
        rf"(\d[\d,]*(?:\.\d+)?|{ZH_NUMBER})\s*{scale}\s*{yuan}?\s*(?:以内|以下|之内)?",
        rf"(\d[\d,]*(?:\.\d+)?|{ZH_NUMBER})\s*{scale}\s*{yuan}?\s*(?:以内|以下|之内)",
        rf"(\d[\d,]*(?:\.\d+)?|{ZH_NUMBER})\s*{scale}\s*(?:元|块钱)",
        # "2万" alone: ten-thousands of anything but devices are money in a request for compute
        rf"(\d[\d,]*(?:\.\d+)?|{ZH_NUMBER})\s*(万)(?!\s*[张块个片台颗卡])",
    )
    for pattern in patterns:
        for m in r.take(pattern):
            fen = _money_fen(m.group(1), m.group(2))
            r.note(f"budget_fen={fen}", m.group(0), budget_fen=fen)


def _read_duration(r: _Reader) -> None:
    units = "(?:" + "|".join(sorted(map(re.escape, DURATION_UNITS), key=len, reverse=True)) \
        + ")(?![a-z0-9])"
    for m in r.take(rf"(?:for\s+)?(?<![a-z0-9.])({EN_NUMBER}|\d+(?:\.\d+)?|{ZH_NUMBER})\s*[-\s]?"
                    rf"({units})(?:\s*long)?"):
        unit = m.group(2).replace(" ", "").replace("-", "")
        seconds = int(_number(m.group(1)) * DURATION_UNITS[unit])
        r.note(f"duration_s={seconds}", m.group(0), duration_s=seconds)
    for m in r.take(r"(半小时|半天|一晚|overnight|half a day|half an hour)"):
        seconds = {"半小时": 1800, "half an hour": 1800, "半天": 43200, "half a day": 43200,
                   "一晚": 43200, "overnight": 43200}[m.group(1)]
        r.note(f"duration_s={seconds}", m.group(0), duration_s=seconds)


def _read_memory(r: _Reader) -> None:
    for m in r.take(r"(?:显存|内存)\s*(\d+)\s*(?:gb|g)(?![a-z])"):
        r.note(f"min_memory_gb={m.group(1)}", m.group(0), min_memory_gb=int(m.group(1)))
    for m in r.take(r"(\d+)\s*(?:gb|g|gib)(?![a-z])\s*(?:of\s+)?(?:memory|vram|hbm|显存|内存)?"
                    r"(?:\s*(?:显存|内存))?"):
        r.note(f"min_memory_gb={m.group(1)}", m.group(0), min_memory_gb=int(m.group(1)))


_COUNT = (rf"(?:(?<![a-z0-9.])(\d+|{ZH_NUMBER}|{EN_NUMBER})[\s-]*"
          r"(?:x|×|张|块|个|片|台|卡)?\s*)?")


def _count(r: _Reader, m: re.Match[str]) -> None:
    if m.group(1):
        count = int(_number(m.group(1)))
        r.note(f"devices={count}", m.group(0), devices=count)


def _read_accelerators(r: _Reader) -> None:
    vocabulary = r.vocabulary
    for m in r.take(_COUNT + "(" + _words(vocabulary.accelerators, plural=True) + ")"):
        _count(r, m)
        phrase = fold(m.group(2))
        if phrase not in vocabulary.accelerators and phrase.endswith("s"):
            phrase = phrase[:-1]
        keys = vocabulary.accelerators.get(phrase) or next(
            (v for k, v in vocabulary.accelerators.items()
             if re.fullmatch(_words([k]), phrase)), ())
        if len(keys) == 1:
            r.note(f"accelerator={keys[0]}", m.group(2), accelerator=keys[0])
        else:
            r.ambiguous.append(f"{m.group(2).strip()!r} could be {', '.join(keys)}")


def _read_brands(r: _Reader) -> None:
    vendors = {**r.vocabulary.vendors}
    for m in r.take(_COUNT + "(" + _words(list(BRANDS) + list(vendors)) + ")"):
        _count(r, m)
        word = fold(m.group(2))
        vendor, kind = BRANDS.get(word, (vendors.get(word, ""), None))
        r.note(f"vendor={vendor}", m.group(2), vendor=vendor)
        if kind and r.ask.device_kind is None:
            r.ask = replace(r.ask, device_kind=kind)


def _read_devices(r: _Reader) -> None:
    kinds = _words(KIND_WORDS)
    for m in r.take(_COUNT + "(" + kinds + ")"):
        _count(r, m)
        kind = KIND_WORDS[fold(m.group(2))]
        r.note(f"device_kind={kind}", m.group(2), device_kind=kind)
    # not "nodes" or "servers": a machine holds several devices, and how many is not said
    nouns = r"(?:x|×|cards?|devices?|accelerators?|chips?|boards?|张|块|个|片|颗|卡)"
    for m in r.take(rf"(?<![\d.])(\d+|{ZH_NUMBER}|{EN_NUMBER})\s*{nouns}"):
        count = int(_number(m.group(1)))
        r.note(f"devices={count}", m.group(0), devices=count)
    for m in r.take(r"(?:x|×)\s*(\d+)(?![\d.])"):
        r.note(f"devices={m.group(1)}", m.group(0), devices=int(m.group(1)))


def _read_places(r: _Reader) -> None:
    vocabulary = r.vocabulary
    city_words = _words(vocabulary.cities)
    near_zh = rf"(?:靠近|离|临近|接近)\s*({city_words})\s*(?:近|附近|的地方)?|({city_words})\s*(?:附近|周边|周围)"
    for m in r.take(rf"(?:{'|'.join(NEAR_EN)})\s+({city_words})|{near_zh}"):
        name = next(g for g in m.groups() if g)
        city = vocabulary.cities[fold(name).replace("'", "")]
        r.note(f"near_city={city.name}", m.group(0), near_city=city.name)
    for m in r.take(_words(REGIONS)):
        hubs = tuple(h.value for h in REGIONS[fold(m.group(0))])
        r.note(f"hubs={','.join(hubs)}", m.group(0), hubs=r.ask.hubs + hubs)
    for m in r.take(_words(HUB_NAMES)):
        hub = HUB_NAMES[fold(m.group(0)).replace("-", " ") if fold(m.group(0)) not in
                        HUB_NAMES else fold(m.group(0))]
        r.note(f"hub={hub.value}", m.group(0), hubs=r.ask.hubs + (hub.value,))
    english = {fold(name): code for code, name in PROVINCES.items()}
    for m in r.take(_words(list(english) + list(PROVINCES_ZH))):
        word = fold(m.group(0))
        code = english.get(word) or PROVINCES_ZH.get(word) or english[word.replace("-", " ")]
        r.note(f"province={code}", m.group(0), provinces=r.ask.provinces + (code,))
    for m in r.take(city_words):
        city = vocabulary.cities[fold(m.group(0)).replace("'", "")]
        r.note(f"near_city={city.name}", m.group(0), near_city=city.name)


def _read_table(r: _Reader, table: Mapping[str, str], name: str) -> None:
    for m in r.take(_words(table)):
        value = table[fold(m.group(0)).replace(" ", " ")] if fold(m.group(0)) in table else \
            next(v for k, v in table.items() if re.fullmatch(_words([k]), fold(m.group(0))))
        r.note(f"{name}={value}", m.group(0), **{name: value})


def _leftovers(rest: str) -> list[str]:
    """What no rule and no filler word accounts for."""
    for filler in sorted(FILLER_ZH, key=len, reverse=True):
        rest = rest.replace(filler, " ")
    unknown = []
    for word in re.findall(r"[a-z0-9'.+#%-]+|[^\x00-\x7f]+", rest):
        word = word.strip(".-'")
        if word and word not in FILLER_EN and not re.fullmatch(r"[,.!?;:()\"]+", word):
            unknown.append(word)
    return unknown


def parse(text: str, vocabulary: Vocabulary) -> Ask:
    """Read one request; see the module's docstring. Raises nothing for odd words: they are
    returned in `unknown`. A request over MAX_ASK_CHARS is a ValueError (the caller says so)."""
    if len(text) > MAX_ASK_CHARS:
        raise ValueError(f"a request is at most {MAX_ASK_CHARS} characters, got {len(text)}")
    r = _Reader(text, vocabulary)
    _read_hourly_price(r)
    _read_duration(r)
    _read_budget(r)
    _read_table(r, SORTS, "sort")
    _read_table(r, WORKLOADS, "workload_class")
    _read_accelerators(r)
    _read_memory(r)
    _read_brands(r)
    _read_places(r)
    _read_devices(r)
    for m in r.take(_words(SPOT_WORDS)):
        r.note("spot", m.group(0), spot=True)
    ask = replace(r.ask, understood=tuple(r.understood), ambiguous=tuple(r.ambiguous),
                  unknown=tuple(_leftovers(r.rest)))
    return _checked(ask)


def _checked(ask: Ask) -> Ask:
    """Values a rule read but the platform would refuse become unknown words, not clamps."""
    unknown = list(ask.unknown)
    if ask.devices is not None and not 1 <= ask.devices <= MAX_DEVICES_PER_JOB:
        unknown.append(f"{ask.devices} devices (1..{MAX_DEVICES_PER_JOB})")
        ask = replace(ask, devices=None)
    if ask.duration_s is not None and not 1 <= ask.duration_s <= MAX_TIME_LIMIT_S:
        unknown.append(f"{ask.duration_s} s (at most {MAX_TIME_LIMIT_S // 86400} days)")
        ask = replace(ask, duration_s=None)
    return replace(ask, unknown=tuple(unknown), hubs=tuple(dict.fromkeys(ask.hubs)),
                   provinces=tuple(dict.fromkeys(ask.provinces)))


@dataclass(frozen=True)
class Plan:
    """An Ask as the platform's two calls: pool search parameters and a quote's job fields."""

    search: dict[str, str | int] = field(default_factory=dict)
    searches_per_hub: tuple[str, ...] = ()  # the search runs once per hub when several
    quote: dict[str, object] = field(default_factory=dict)


SEARCH_SORT = {"green": "green", "price": "price", "latency": "latency", "free": "free"}


def plan(ask: Ask, hub_provinces: Mapping[str, tuple[str, ...]]) -> Plan:
    """The search and quote an Ask stands for; `hub_provinces` (from the city table) turns
    hubs into the residency list a job carries."""
    search: dict[str, str | int] = {}
    quote: dict[str, object] = {}
    for name in ("accelerator", "vendor", "device_kind", "workload_class", "min_memory_gb"):
        value = getattr(ask, name)
        if value is not None:
            search[name] = value
            quote[name] = value
    if ask.max_fen_per_device_hour is not None:
        search["max_fen_per_device_hour"] = ask.max_fen_per_device_hour
        quote["max_price_fen_per_device_hour"] = ask.max_fen_per_device_hour
    if ask.near_city:
        search["near_city"] = ask.near_city
    sort = ask.sort or ("latency" if ask.near_city else None)
    if sort:
        search["sort"] = SEARCH_SORT[sort]
    if len(ask.provinces) == 1 and not ask.hubs:
        search["province"] = ask.provinces[0]
    if len(ask.hubs) == 1:
        search["hub"] = ask.hubs[0]
    provinces = list(ask.provinces)
    for hub in ask.hubs:
        provinces += [p for p in hub_provinces.get(hub, ()) if p not in provinces]
    if provinces:
        quote["provinces"] = provinces
    if ask.devices is not None:
        quote["devices"] = ask.devices
    if ask.duration_s is not None:
        quote["time_limit_s"] = ask.duration_s
    if ask.spot:
        quote["spot"] = True
    return Plan(search, ask.hubs if len(ask.hubs) > 1 else (), quote)


def hub_provinces(cities: Iterable[City]) -> dict[str, tuple[str, ...]]:
    """Each hub's provinces, from the city table."""
    found: dict[str, list[str]] = {}
    for city in cities:
        if city.hub is not None and city.province not in found.setdefault(city.hub.value, []):
            found[city.hub.value].append(city.province)
    return {hub: tuple(codes) for hub, codes in found.items()}
