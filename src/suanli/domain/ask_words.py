"""The words `suanli ask` knows (domain/ask.py reads with them): hubs and regions, Chinese
province names, brands, device kinds, workloads, orders, numbers, units and filler words.

The catalog's accelerators and the city table's names are not here: they come in as a
`Vocabulary` built from the packaged data. To teach the parser a phrasing, add it to a table
and a row to tests/unit/test_ask_parser.py.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from suanli.domain.geo import City
from suanli.domain.resources import WESTERN_HUBS, Hub

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
WEST = tuple(sorted(WESTERN_HUBS))
EAST = tuple(sorted(set(Hub) - WESTERN_HUBS))
REGIONS: dict[str, tuple[Hub, ...]] = {
    "western": WEST, "the west": WEST, "west": WEST, "西部": WEST, "东数西算": WEST,
    "eastern": EAST, "the east": EAST, "east": EAST, "东部": EAST,
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
    "越环保越好": "green", "最环保": "green", "最绿色": "green", "绿色": "green", "低碳": "green", "环保": "green",
    "绿电": "green",
    "cheapest": "price", "lowest price": "price", "cheap": "price", "least expensive": "price",
    "越便宜越好": "price", "最便宜": "price", "便宜": "price", "最省钱": "price", "省钱": "price", "价格最低": "price",
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
id im ive wed lets node nodes server servers pool pools
""".split())
FILLER_ZH = ("帮我", "给我", "请", "我要", "我想", "我需要", "需要", "想要", "找一下", "找", "查一下",
             "查询", "查", "搜索", "租", "订", "预订", "买", "一下", "一些", "个", "的", "在", "要",
             "用", "用于", "做", "跑", "运行", "任务", "作业", "算力", "优先", "排序", "先", "和",
             "或", "以及", "并且", "且", "地区", "区域", "枢纽", "节点", "省", "市", "集群", "机器",
             "卡", "张", "块", "台", "服务器", "主机", "有", "吗", "呢", "吧", "多少钱", "多少", "报价", "价格",
             "费用", "总共", "一共", "左右", "大约", "大概", "可以", "能", "来", "这", "那",
             "上", "里", "中", "内", "时长", "时间", "总价", "设备", "加速卡", "模型", "型号",
             "，", "。", "、", "；", "：", "！", "？", "（", "）")

ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
ZH_NUMBER = "[零一二两俩三四五六七八九十百千]+"
NUM = r"(\d+(?:\.\d+)?|" + ZH_NUMBER + ")"
EN_NUMBERS: dict[str, int | Decimal] = {
               "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
               "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "sixteen": 16, "twenty": 20,
               "thirty-two": 32, "sixty-four": 64, "a couple of": 2, "a dozen": 12,
               "half a": Decimal("0.5"), "a": 1, "an": 1, "half an": Decimal("0.5")}
EN_NUMBER = "(?:" + "|".join(sorted((re.escape(w) for w in EN_NUMBERS), key=len,
                                      reverse=True)) + ")(?![a-z])"


SCALE = {"k": 1000, "千": 1000, "万": 10_000, "w": 10_000, "m": 1_000_000, "百万": 1_000_000}
DURATION_UNITS = {"minute": 60, "minutes": 60, "min": 60, "mins": 60, "分钟": 60,
                   "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600, "h": 3600,
                   "小时": 3600, "个小时": 3600, "钟头": 3600, "个钟头": 3600,
                   "day": 86400, "days": 86400, "d": 86400, "天": 86400, "日": 86400,
                   "week": 604800, "weeks": 604800, "周": 604800, "个星期": 604800,
                   "星期": 604800}


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
