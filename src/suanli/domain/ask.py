"""`suanli ask`: a table-driven reading of a request for compute, in Chinese or English.

"find me 64 Ascend cards in the west for a 3-day pre-training run under 20,000 yuan, greenest
first" and "帮我找64张昇腾卡，西部，预训练3天，预算2万元以内，最环保优先" both become one `Ask`:
the fields of a pool search and of a quote. The tables below (and the catalog's accelerators
and the city table, handed in as a `Vocabulary`) are the whole grammar. Every word is either
matched by a rule, a known filler word, or reported in `Ask.unknown`: nothing is guessed
silently, and a caller refuses to spend while anything is unknown or ambiguous.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Protocol

from suanli.domain.geo import City
from suanli.domain.jobs import MAX_DEVICES_PER_JOB, MAX_TIME_LIMIT_S
from suanli.domain.resources import PROVINCES, WESTERN_HUBS, Hub

MAX_ASK_CHARS = 500  # a request longer than this is refused, never cut

# The national hubs by what people call them.
HUB_NAMES: dict[str, Hub] = {
    "jingjinji": Hub.JINGJINJI, "beijing-tianjin-hebei": Hub.JINGJINJI, "京津冀": Hub.JINGJINJI,
    "yangtze river delta": Hub.YANGTZE, "yangtze": Hub.YANGTZE, "长三角": Hub.YANGTZE,
    "greater bay area": Hub.GBA, "gba": Hub.GBA, "大湾区": Hub.GBA, "粤港澳": Hub.GBA,
    "chengyu": Hub.CHENGYU, "chengdu-chongqing": Hub.CHENGYU, "成渝": Hub.CHENGYU,
    "inner mongolia": Hub.INNER_MONGOLIA, "内蒙古": Hub.INNER_MONGOLIA, "内蒙": Hub.INNER_MONGOLIA,
    "guizhou": Hub.GUIZHOU, "贵州": Hub.GUIZHOU,
    "gansu": Hub.GANSU, "甘肃": Hub.GANSU,
    "ningxia": Hub.NINGXIA, "宁夏": Hub.NINGXIA,
}
_WEST = tuple(sorted(WESTERN_HUBS))
_EAST = tuple(sorted(set(Hub) - WESTERN_HUBS))
REGIONS: dict[str, tuple[Hub, ...]] = {
    "western": _WEST, "the west": _WEST, "west": _WEST, "西部": _WEST, "东数西算": _WEST,
    "eastern": _EAST, "the east": _EAST, "east": _EAST, "东部": _EAST,
}
# Chinese names of the provinces of resources.PROVINCES (which spells them in English).
PROVINCES_ZH: dict[str, str] = {
    "北京": "CN-BJ", "天津": "CN-TJ", "河北": "CN-HE", "山西": "CN-SX", "辽宁": "CN-LN",
    "吉林": "CN-JL", "黑龙江": "CN-HL", "上海": "CN-SH", "江苏": "CN-JS", "浙江": "CN-ZJ",
    "安徽": "CN-AH", "福建": "CN-FJ", "江西": "CN-JX", "山东": "CN-SD", "河南": "CN-HA",
    "湖北": "CN-HB", "湖南": "CN-HN", "广东": "CN-GD", "广西": "CN-GX", "海南": "CN-HI",
    "重庆": "CN-CQ", "四川": "CN-SC", "云南": "CN-YN", "西藏": "CN-XZ", "陕西": "CN-SN",
    "青海": "CN-QH", "新疆": "CN-XJ", "香港": "CN-HK", "澳门": "CN-MO", "台湾": "CN-TW",
}
# Brands people say for a vendor's devices: (catalog vendor, device kind or None).
BRANDS: dict[str, tuple[str, str | None]] = {
    "ascend": ("Huawei", "npu"), "昇腾": ("Huawei", "npu"), "华为": ("Huawei", None),
    "kunpeng": ("Huawei", "cpu"), "鲲鹏": ("Huawei", "cpu"),
    "英伟达": ("NVIDIA", None), "nvidia": ("NVIDIA", None), "n卡": ("NVIDIA", "gpu"),
    "寒武纪": ("Cambricon", None), "海光": ("Hygon", None), "昆仑芯": ("Kunlunxin", None),
    "kunlun": ("Kunlunxin", "xpu"), "昆仑": ("Kunlunxin", "xpu"), "gaudi": ("Intel", "npu"),
    "英特尔": ("Intel", None), "超威": ("AMD", None),
}
KIND_WORDS: dict[str, str] = {
    "gpu": "gpu", "gpus": "gpu", "显卡": "gpu", "graphics cards": "gpu",
    "npu": "npu", "npus": "npu", "dcu": "dcu", "dcus": "dcu", "xpu": "xpu", "xpus": "xpu",
    "cpu": "cpu", "cpus": "cpu", "cpu cores": "cpu",
}
WORKLOADS: dict[str, str] = {
    "pre-training": "training", "pretraining": "training", "pre-train": "training",
    "training": "training", "train": "training", "fine-tuning": "training",
    "fine-tune": "training", "finetune": "training", "finetuning": "training",
    "预训练": "training", "训练": "training", "微调": "training",
    "inference": "inference", "serving": "inference", "推理": "inference",
    "hpc": "hpc", "simulation": "hpc", "科学计算": "hpc", "仿真": "hpc",
}
SORTS: dict[str, str] = {
    "greenest": "green", "most green": "green", "lowest carbon": "green", "low carbon": "green",
    "low-carbon": "green", "green power": "green", "green": "green", "cleanest": "green",
    "最环保": "green", "最绿色": "green", "绿色": "green", "低碳": "green", "环保": "green",
    "绿电": "green",
    "cheapest": "price", "lowest price": "price", "cheap": "price", "least expensive": "price",
    "最便宜": "price", "便宜": "price", "最省钱": "price", "省钱": "price", "价格最低": "price",
    "lowest latency": "latency", "fastest": "latency", "closest": "latency",
    "nearest": "latency", "延迟最低": "latency", "低延迟": "latency", "最近": "latency",
    "most free": "free", "most available": "free", "空闲最多": "free",
}
SPOT_WORDS = ("spot", "preemptible", "interruptible", "可抢占", "竞价")
NEAR_EN = ("near", "close to", "around", "nearby", "next to")

# Filler words: matched, meaning nothing for the search (the rest are reported as unknown).
FILLER_EN = frozenset("""
a an the me my i we our us need needs want wants would like please find get give show book
reserve rent look looking search for some of with in on at to from and or by run runs
running job jobs workload task tasks first priority prefer preferably sorted sort order
ordered best option options can you could help compute power capacity cluster machines
machine card cards device devices accelerator accelerators chips chip x that which is are be
it this one ones budget total cost costs costing spend spending about roughly around
approximately any anywhere located hosted hub hubs region regions area province provinces
mode what how much will quote price priced pricing using use per hour hours model models
under below within max maximum most least than less up only just also then so if as
""".split())
FILLER_ZH = ("帮我", "给我", "请", "我要", "我想", "我需要", "需要", "想要", "找一下", "找", "查一下",
             "查询", "查", "搜索", "租", "订", "预订", "买", "一下", "一些", "个", "的", "在", "要",
             "用", "用于", "做", "跑", "运行", "任务", "作业", "算力", "优先", "排序", "先", "和",
             "或", "以及", "并且", "且", "地区", "区域", "枢纽", "节点", "省", "市", "集群", "机器",
             "卡", "张", "块", "台", "有", "吗", "呢", "吧", "多少钱", "多少", "报价", "价格",
             "费用", "总共", "一共", "左右", "大约", "大概", "可以", "能", "来", "这", "那",
             "上", "里", "中", "内", "时长", "时间", "总价", "设备", "加速卡", "模型", "型号",
             "，", "。", "、", "；", "：", "！", "？", "（", "）")

_ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
_ZH_NUMBER = "[零一二两俩三四五六七八九十百千]+"
_NUM = r"(\d+(?:\.\d+)?|" + _ZH_NUMBER + ")"
_EN_NUMBERS: dict[str, int | Decimal] = {
               "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
               "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "sixteen": 16, "twenty": 20,
               "thirty-two": 32, "sixty-four": 64, "a couple of": 2, "a dozen": 12,
               "half a": Decimal("0.5"), "a": 1, "an": 1, "half an": Decimal("0.5")}
_EN_NUMBER = "(?:" + "|".join(sorted((re.escape(w) for w in _EN_NUMBERS), key=len,
                                      reverse=True)) + ")(?![a-z])"


class AcceleratorLike(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def vendor(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def kind(self) -> str: ...


@dataclass(frozen=True)
class Vocabulary:
    """The names the parser knows: built once from the catalog and the city table."""

    accelerators: Mapping[str, tuple[str, ...]]  # phrase -> catalog keys (more: ambiguous)
    vendors: Mapping[str, str]  # phrase -> the catalog's spelling
    cities: Mapping[str, City]  # English or Chinese name, folded -> city
    kinds: frozenset[str]


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


def fold(text: str) -> str:
    """NFKC (full-width digits and punctuation to ASCII), lower case, one space between words."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _phrase_variants(name: str) -> set[str]:
    base = fold(re.sub(r"\(.*?\)", "", name)).strip()
    return {base, base.replace("-", " "), base.replace("-", ""), base.replace(" ", "-"),
            base.replace(" ", "")} - {""}


_MEMORY_WORD = re.compile(r"\d+gb")


def build_vocabulary(accelerators: Iterable[AcceleratorLike], cities: Iterable[City],
                     aliases: Mapping[str, str]) -> Vocabulary:
    """Phrases for each catalog model: its key, the key without the vendor, its model name and
    the model's first word (`H100`, `910B`), plus the catalog's short ALIASES; a phrase that
    fits several models maps to all of them (the parser reports it as ambiguous)."""
    names: dict[str, set[str]] = {}
    vendors: dict[str, str] = {}
    items = tuple(accelerators)
    for acc in items:
        vendor_slug = fold(acc.vendor)
        vendors[vendor_slug] = acc.vendor
        model = re.sub(r"\(.*?\)", "", acc.model).strip()
        words = model.split()
        phrases = {acc.key, acc.key.removeprefix(vendor_slug + "-"), model}
        if words:
            phrases.add(words[0] if any(ch.isdigit() for ch in words[0])
                        else " ".join(words[:2]))
        if len(words) > 1 and _MEMORY_WORD.fullmatch(fold(words[-1])):
            phrases.add(f"{words[0]} {words[-1]}")  # "A100 40GB"
        for start, word in enumerate(words):  # "910B", "RTX 4090", "4090"
            if any(ch.isdigit() for ch in word) and not _MEMORY_WORD.fullmatch(fold(word)):
                phrases.add(word)
                if start:
                    phrases.add(f"{words[start - 1]} {word}")
        for phrase in phrases:
            for variant in _phrase_variants(phrase):
                names.setdefault(variant, set()).add(acc.key)
    for alias, key in aliases.items():
        short = alias.split("-", 1)[1] if "-" in alias else alias
        for variant in _phrase_variants(alias) | _phrase_variants(short):
            names[variant] = {key}  # the catalog's choice of the variant most deployed
    for phrase, keys in list(names.items()):
        # a bare number is a model only when it is long and names one ("4090", not "310")
        if phrase.isdigit() and (len(phrase) < 4 or len(keys) > 1):
            del names[phrase]
    folded_cities: dict[str, City] = {}
    for city in cities:
        for name in (city.name, city.name_zh):
            folded_cities[fold(name).replace("'", "")] = city
    return Vocabulary({k: tuple(sorted(v)) for k, v in names.items()}, vendors, folded_cities,
                      frozenset(a.kind for a in items))


def zh_number(text: str) -> int:
    """一 .. 九千九百九十九 (and plain digits) as an int."""
    if text.isdigit():
        return int(text)
    total, current = 0, 0
    for ch in text:
        if ch in _ZH_DIGITS:
            current = _ZH_DIGITS[ch]
        elif ch in _ZH_UNITS:
            total += (current or 1) * _ZH_UNITS[ch]
            current = 0
    return total + current


def _number(text: str) -> Decimal:
    text = text.replace(",", "")
    if text in _EN_NUMBERS:
        return Decimal(_EN_NUMBERS[text])
    if re.fullmatch(_ZH_NUMBER, text):
        return Decimal(zh_number(text))
    try:
        return Decimal(text)
    except InvalidOperation:
        return Decimal(0)


_SCALE = {"k": 1000, "千": 1000, "万": 10_000, "w": 10_000, "m": 1_000_000, "百万": 1_000_000}
_DURATION_UNITS = {"minute": 60, "minutes": 60, "min": 60, "mins": 60, "分钟": 60,
                   "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600, "h": 3600,
                   "小时": 3600, "个小时": 3600, "钟头": 3600, "个钟头": 3600,
                   "day": 86400, "days": 86400, "d": 86400, "天": 86400, "日": 86400,
                   "week": 604800, "weeks": 604800, "周": 604800, "个星期": 604800,
                   "星期": 604800}


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
    amount = _number(number) * _SCALE.get(scale or "", 1)
    return int((amount * 100).to_integral_value())


def _read_hourly_price(r: _Reader) -> None:
    yuan = r"(?:yuan|rmb|cny|元|块钱|块)"
    per_hour = (r"(?:/\s*(?:h|hr|hour)|per\s+(?:device\s+|card\s+|gpu\s+)?hour|an\s+hour|"
                r"每(?:卡)?每?小时|/(?:卡)?小时|一小时)")
    for m in r.take(rf"(?:每张?卡?每?小时|每卡时)\s*(?:不超过|最多|低于)?\s*{_NUM}\s*{yuan}"
                    r"\s*(?:以内|以下|之内)?"):
        r.note(f"max_fen_per_device_hour={_money_fen(m.group(1), None)}", m.group(0),
               max_fen_per_device_hour=_money_fen(m.group(1), None))
    for m in r.take(rf"(?:under|below|at most|max|up to|less than|within|no more than|<=?)?\s*"
                    rf"[¥￥]?\s*{_NUM}\s*{yuan}?\s*{per_hour}\s*(?:以内|以下|之内)?"):
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
        rf"(\d[\d,]*(?:\.\d+)?|{_ZH_NUMBER})\s*{scale}\s*{yuan}?\s*(?:以内|以下|之内)?",
        rf"(\d[\d,]*(?:\.\d+)?|{_ZH_NUMBER})\s*{scale}\s*{yuan}?\s*(?:以内|以下|之内)",
        rf"(\d[\d,]*(?:\.\d+)?|{_ZH_NUMBER})\s*{scale}\s*(?:元|块钱)",
    )
    for pattern in patterns:
        for m in r.take(pattern):
            fen = _money_fen(m.group(1), m.group(2))
            r.note(f"budget_fen={fen}", m.group(0), budget_fen=fen)


def _read_duration(r: _Reader) -> None:
    units = "(?:" + "|".join(sorted(map(re.escape, _DURATION_UNITS), key=len, reverse=True)) \
        + ")(?![a-z0-9])"
    for m in r.take(rf"(?:for\s+)?(?<![a-z0-9.])({_EN_NUMBER}|\d+(?:\.\d+)?|{_ZH_NUMBER})\s*[-\s]?"
                    rf"({units})(?:\s*long)?"):
        unit = m.group(2).replace(" ", "").replace("-", "")
        seconds = int(_number(m.group(1)) * _DURATION_UNITS[unit])
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


_COUNT = (rf"(?:(?<![a-z0-9.])(\d+|{_ZH_NUMBER}|{_EN_NUMBER})\s*"
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
    nouns = (r"(?:x|×|cards?|devices?|accelerators?|chips?|nodes?|boards?|张|块|个|片|台|颗|卡)")
    for m in r.take(rf"(?<![\d.])(\d+|{_ZH_NUMBER}|{_EN_NUMBER})\s*{nouns}"):
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
