"""`suanli ask`'s parser on real phrasings: every field it reads, and nothing it should not.

Each row is a request and what it means in a short notation: d devices, a accelerator,
v vendor, k device kind, w workload class, hub (`west` for the five western hubs), p
provinces, near, t duration (30m, 2h, 3d, 1w), b budget in yuan, ph price cap in yuan per
device-hour, mem GB, s sort, spot, ? unknown words. A field the row does not name must stay
empty: the parser may not guess.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from suanli.catalog import ALIASES, load_catalog, load_cities
from suanli.domain.ask import MAX_ASK_CHARS, Ask, build_vocabulary, hub_provinces, parse, plan
from suanli.domain.resources import WESTERN_HUBS

VOCABULARY = build_vocabulary(load_catalog().all(), load_cities(), ALIASES)
WEST = tuple(sorted(h.value for h in WESTERN_HUBS))
_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}

ENGLISH = [
    ("find me 64 Ascend cards in the west for a 3-day pre-training run under 20,000 yuan, "
     "greenest first", "d=64 v=Huawei k=npu hub=west w=training t=3d b=20000 s=green"),
    ("8x H100 near Shenzhen for 2 hours", "d=8 a=nvidia-h100-sxm near=Shenzhen t=2h"),
    ("two A100 80GB in Guizhou, cheapest", "d=2 a=nvidia-a100-sxm4-80gb hub=guizhou s=price"),
    ("I need 16 GPUs in Guangdong for a week, budget 5k", "d=16 k=gpu p=CN-GD t=1w b=5000"),
    ("cheapest 4090 in Beijing", "a=nvidia-rtx-4090 p=CN-BJ s=price"),
    ("an H100 for half an hour", "d=1 a=nvidia-h100-sxm t=30m"),
    ("3 RTX 4090 under ¥300", "d=3 a=nvidia-rtx-4090 b=300"),
    ("8 H800 for training", "d=8 a=nvidia-h800-sxm w=training"),
    ("4 x A800 for fine-tuning, 12 hours", "d=4 a=nvidia-a800-sxm4-80gb w=training t=12h"),
    ("one L40S for inference near Shanghai", "d=1 a=nvidia-l40s w=inference near=Shanghai"),
    ("64 Ascend 910B cards in Guizhou", "d=64 a=huawei-ascend-910b hub=guizhou"),
    ("32 910B for pre-training, lowest carbon", "d=32 a=huawei-ascend-910b w=training s=green"),
    ("cheapest GPUs in the Greater Bay Area", "k=gpu hub=gba s=price"),
    ("16 NPUs in Inner Mongolia for 5 days", "d=16 k=npu hub=inner-mongolia t=5d"),
    ("2 cards near Beijing", "d=2 near=Beijing"),
    ("a CPU for 10 minutes", "d=1 k=cpu t=10m"),
    ("8 Cambricon MLU370 cards", "d=8 a=cambricon-mlu370-x8"),
    ("Hygon DCU for HPC", "v=Hygon k=dcu w=hpc"),
    ("Kunlun chips for inference", "v=Kunlunxin k=xpu w=inference"),
    ("greenest NVIDIA GPUs", "v=NVIDIA k=gpu s=green"),
    ("4 T4 for serving, under 20 yuan per hour", "d=4 a=nvidia-t4 w=inference ph=20"),
    ("an A10 at most 5 yuan/h", "d=1 a=nvidia-a10 ph=5"),
    ("MI300X x 8 in Ningxia", "a=amd-mi300x d=8 hub=ningxia"),
    ("8 Gaudi 2 for training", "d=8 a=intel-gaudi2 w=training"),
    ("Gaudi cards, cheapest", "v=Intel k=npu s=price"),
    ("64 GPUs in Gansu for 3 days under 50k yuan", "d=64 k=gpu hub=gansu t=3d b=50000"),
    ("lowest latency GPUs near Hangzhou", "k=gpu near=Hangzhou s=latency"),
    ("fastest H20 near Guangzhou", "a=nvidia-h20 near=Guangzhou s=latency"),
    ("spot A100 for 6 hours", "spot a=nvidia-a100-sxm4-80gb t=6h"),
    ("preemptible 4090s, cheapest", "spot a=nvidia-rtx-4090 s=price"),
    ("16 V100 in Sichuan", "d=16 a=nvidia-v100-sxm2-32gb p=CN-SC"),
    ("V100 32GB for simulation", "a=nvidia-v100-sxm2-32gb mem=32 w=hpc"),
    ("GPUs with 80 GB memory", "k=gpu mem=80"),
    ("cards with at least 96GB of HBM", "mem=96"),
    ("budget 1200 yuan for 8 A100 in Jiangsu", "b=1200 d=8 a=nvidia-a100-sxm4-80gb p=CN-JS"),
    ("within 3000 rmb, 4 H800, 1 day", "b=3000 d=4 a=nvidia-h800-sxm t=1d"),
    ("no more than 800 yuan for a 4090 overnight", "b=800 d=1 a=nvidia-rtx-4090 t=12h"),
    ("up to 2k cny", "b=2000"),
    ("max 10,000 yuan", "b=10000"),
    ("less than 99.5 yuan", "b=99.5"),
    ("¥1500 for 2 days of training", "b=1500 t=2d w=training"),
    ("1.5k yuan, two days, training", "b=1500 t=2d w=training"),
    ("a dozen GPUs for 48 hours", "d=12 k=gpu t=48h"),
    ("a couple of H100 for 90 minutes", "d=2 a=nvidia-h100-sxm t=90m"),
    ("sixteen cards in Chongqing", "d=16 p=CN-CQ"),
    ("ten A100 in Chengdu", "d=10 a=nvidia-a100-sxm4-80gb near=Chengdu"),
    ("eight GPUs near Xi'an", "d=8 k=gpu near=Xi'an"),
    ("4 GPUs close to Shenzhen, cheapest", "d=4 k=gpu near=Shenzhen s=price"),
    ("GPUs around Wuhan", "k=gpu near=Wuhan"),
    ("GPUs in Yangtze River Delta", "k=gpu hub=yangtze"),
    ("GPUs in the Jingjinji hub", "k=gpu hub=jingjinji"),
    ("Beijing-Tianjin-Hebei, 4 cards", "hub=jingjinji d=4"),
    ("Chengdu-Chongqing region, 8 NPUs", "hub=chengyu d=8 k=npu"),
    ("western hubs, greenest", "hub=west s=green"),
    ("compute in the east, cheapest", "hub=jingjinji,yangtze,gba s=price"),
    ("2 A100 in Zhejiang and Jiangsu", "d=2 a=nvidia-a100-sxm4-80gb p=CN-ZJ,CN-JS"),
    ("4 GPUs in Shanghai province", "d=4 k=gpu p=CN-SH"),
    ("CPU cores in Guizhou for a week", "k=cpu hub=guizhou t=1w"),
    ("Kunpeng servers", "v=Huawei k=cpu"),
    ("EPYC 9654 for simulation", "a=amd-epyc-9654 w=hpc"),
    ("8 H100 PCIe", "d=8 a=nvidia-h100-pcie"),
    ("8 H100 SXM", "d=8 a=nvidia-h100-sxm"),
    ("A100 40GB for 3 hours", "a=nvidia-a100-sxm4-40gb t=3h"),
    ("nvidia-a100-pcie-80gb x 2", "a=nvidia-a100-pcie-80gb d=2"),
    ("huawei-ascend-910b", "a=huawei-ascend-910b"),
    ("Ascend 310P for inference", "a=huawei-ascend-310p w=inference"),
    ("MLU590 cards", "a=cambricon-mlu590"),
    ("P800 Kunlun", "a=kunlunxin-p800 v=Kunlunxin k=xpu"),
    ("DCU K100", "a=hygon-dcu-k100"),
    ("3090 for a day", "a=nvidia-rtx-3090 t=1d"),
    ("L20 x 4 near Hefei", "a=nvidia-l20 d=4 near=Hefei"),
    ("L4 for serving", "a=nvidia-l4 w=inference"),
    ("A6000 for 5 hours", "a=nvidia-rtx-a6000 t=5h"),
    ("pre-train on 128 cards for 2 weeks", "w=training d=128 t=2w"),
    ("fine-tune a model on 4 GPUs", "w=training d=4 k=gpu"),
    ("finetune with 2 4090s", "w=training d=2 a=nvidia-rtx-4090"),
    ("inference on 1 T4", "w=inference d=1 a=nvidia-t4"),
    ("HPC job on 256 CPUs", "w=hpc d=256 k=cpu"),
    ("train for 3 days", "w=training t=3d"),
    ("please show me the cheapest cards", "s=price"),
    ("what is the greenest option", "s=green"),
    ("most free GPUs", "s=free k=gpu"),
    ("least expensive A800", "s=price a=nvidia-a800-sxm4-80gb"),
    ("green power GPUs in Ningxia", "s=green k=gpu hub=ningxia"),
    ("low-carbon training in the west", "s=green w=training hub=west"),
    ("cleanest NPUs", "s=green k=npu"),
    ("I want 8 GPUs", "d=8 k=gpu"),
    ("book 4 cards for 1 hour", "d=4 t=1h"),
    ("reserve 2 H800 for 24h", "d=2 a=nvidia-h800-sxm t=24h"),
    ("rent 8 A100 for 30 mins", "d=8 a=nvidia-a100-sxm4-80gb t=30m"),
    ("8 GPUs for 2 hrs", "d=8 k=gpu t=2h"),
    ("4 GPUs, 1 week, under 9k", "d=4 k=gpu t=1w b=9000"),
    ("H800 under 40 yuan per hour", "a=nvidia-h800-sxm ph=40"),
    ("A100 below 25 yuan an hour", "a=nvidia-a100-sxm4-80gb ph=25"),
    ("4090 at most ¥3 per device hour", "a=nvidia-rtx-4090 ph=3"),
    ("GPU in Hong Kong", "k=gpu p=CN-HK"),
    ("cards near Macao", "near=Macao"),
    ("GPUs in Guangxi for inference", "k=gpu p=CN-GX w=inference"),
    ("4 GPUs in Xinjiang", "d=4 k=gpu p=CN-XJ"),
    ("8 NPUs near Guiyang", "d=8 k=npu near=Guiyang"),
    ("8 NPUs in Gui'an", "d=8 k=npu near=Gui'an"),
    ("NPUs near Ulanqab, greenest", "k=npu near=Ulanqab s=green"),
    ("GPUs in Zhongwei", "k=gpu near=Zhongwei"),
    ("quantum annealer please", "?=quantum,annealer"),
    ("8 H100 for my xyzzy project", "d=8 a=nvidia-h100-sxm ?=xyzzy,project"),
    ("5000 devices", "?=5000 devices (1..4096)"),
    ("GPUs for 40 days", "k=gpu ?=3456000 s (at most 30 days)"),
    ("GPUs in Atlantis", "k=gpu ?=atlantis"),
    ("I'd like an 8-GPU H100 node for 3 days", "d=8 k=gpu a=nvidia-h100-sxm t=3d"),
    ("Need 2x A100s ASAP in Shanghai", "d=2 a=nvidia-a100-sxm4-80gb p=CN-SH ?=asap"),
    ("show me Ascend pools", "v=Huawei k=npu"),
    ("4 nodes of H100", "a=nvidia-h100-sxm ?=4"),
]

CHINESE = [
    ("帮我找64张昇腾卡，西部，预训练3天，预算2万元以内，最环保优先",
     "d=64 v=Huawei k=npu hub=west w=training t=3d b=20000 s=green"),
    ("深圳附近的8卡H800，训练两天", "near=Shenzhen d=8 a=nvidia-h800-sxm w=training t=2d"),
    ("4张910B 在贵州 跑推理 10小时 每小时30元以内",
     "d=4 a=huawei-ascend-910b hub=guizhou w=inference t=10h ph=30"),
    ("我需要8张A100，在上海附近，最便宜的", "d=8 a=nvidia-a100-sxm4-80gb near=Shanghai s=price"),
    ("找两张4090跑推理", "d=2 a=nvidia-rtx-4090 w=inference"),
    ("16块H100，训练一周", "d=16 a=nvidia-h100-sxm w=training t=1w"),
    ("西部的昇腾910B，32卡", "hub=west a=huawei-ascend-910b v=Huawei k=npu d=32"),
    ("内蒙古 64张卡 预训练 5天", "hub=inner-mongolia d=64 w=training t=5d"),
    ("贵州的GPU，最绿色", "hub=guizhou k=gpu s=green"),
    ("宁夏的显卡，最便宜", "hub=ningxia k=gpu s=price"),
    ("甘肃 8卡 低碳", "hub=gansu d=8 s=green"),
    ("长三角的H20，延迟最低", "hub=yangtze a=nvidia-h20 s=latency"),
    ("京津冀 4张A800", "hub=jingjinji d=4 a=nvidia-a800-sxm4-80gb"),
    ("大湾区的GPU", "hub=gba k=gpu"),
    ("粤港澳 8张L40S 推理", "hub=gba d=8 a=nvidia-l40s w=inference"),
    ("成渝地区 16卡 训练", "hub=chengyu d=16 w=training"),
    ("东部的显卡，便宜的", "hub=jingjinji,yangtze,gba k=gpu s=price"),
    ("广东的A100，预算5000元", "p=CN-GD a=nvidia-a100-sxm4-80gb b=5000"),
    ("北京的4090，2小时", "p=CN-BJ a=nvidia-rtx-4090 t=2h"),
    ("四川 8张V100", "p=CN-SC d=8 a=nvidia-v100-sxm2-32gb"),
    ("江苏和浙江的GPU", "p=CN-JS,CN-ZJ k=gpu"),
    ("湖北的卡", "p=CN-HB"),
    ("新疆 CPU 一周", "p=CN-XJ k=cpu t=1w"),
    ("香港的H100", "p=CN-HK a=nvidia-h100-sxm"),
    ("靠近杭州的GPU", "near=Hangzhou k=gpu"),
    ("离广州近的8张卡", "near=Guangzhou d=8"),
    ("武汉附近 4张A10", "near=Wuhan d=4 a=nvidia-a10"),
    ("成都周边的NPU", "near=Chengdu k=npu"),
    ("贵阳的昇腾卡", "near=Guiyang v=Huawei k=npu"),
    ("乌兰察布 训练 64卡", "near=Ulanqab w=training d=64"),
    ("中卫的GPU 最环保", "near=Zhongwei k=gpu s=green"),
    ("西安附近的显卡", "near=Xi'an k=gpu"),
    ("一张H100跑半小时", "d=1 a=nvidia-h100-sxm t=30m"),
    ("两张A100跑一天", "d=2 a=nvidia-a100-sxm4-80gb t=1d"),
    ("三块4090，三小时", "d=3 a=nvidia-rtx-4090 t=3h"),
    ("十张卡训练十天", "d=10 w=training t=10d"),
    ("二十张910B", "d=20 a=huawei-ascend-910b"),
    ("一百张昇腾卡", "d=100 v=Huawei k=npu"),
    ("八卡H800 训练", "d=8 a=nvidia-h800-sxm w=training"),
    ("4卡A800 微调 12小时", "d=4 a=nvidia-a800-sxm4-80gb w=training t=12h"),
    ("用2张T4做推理", "d=2 a=nvidia-t4 w=inference"),
    ("跑科学计算，256个CPU", "w=hpc d=256 k=cpu"),
    ("仿真任务 海光DCU", "w=hpc v=Hygon k=dcu"),
    ("寒武纪MLU370 8张", "v=Cambricon a=cambricon-mlu370-x8 d=8"),
    ("昆仑芯 推理", "v=Kunlunxin w=inference"),
    ("昆仑P800 四张", "v=Kunlunxin k=xpu a=kunlunxin-p800 d=4"),
    ("英伟达显卡 最便宜", "v=NVIDIA k=gpu s=price"),
    ("华为的NPU", "v=Huawei k=npu"),
    ("鲲鹏CPU 一天", "v=Huawei k=cpu t=1d"),
    ("昇腾310P 推理", "a=huawei-ascend-310p v=Huawei k=npu w=inference"),
    ("预算1万元 8张A100 3天", "b=10000 d=8 a=nvidia-a100-sxm4-80gb t=3d"),
    ("不超过5000元，4张H800，一天", "b=5000 d=4 a=nvidia-h800-sxm t=1d"),
    ("3000元以内 4090 一晚", "b=3000 a=nvidia-rtx-4090 t=12h"),
    ("2万以内 训练", "b=20000 w=training"),
    ("最多800块 两张3090", "b=800 d=2 a=nvidia-rtx-3090"),
    ("费用不超过1.5万元", "b=15000"),
    ("预算三千元", "b=3000"),
    ("总价不超过2000元 A10 五小时", "b=2000 a=nvidia-a10 t=5h"),
    ("低于600元 L4 推理", "b=600 a=nvidia-l4 w=inference"),
    ("500元以下", "b=500"),
    ("每小时20元以内的A100", "ph=20 a=nvidia-a100-sxm4-80gb"),
    ("每卡每小时不超过30元 H800", "ph=30 a=nvidia-h800-sxm"),
    ("每小时5元 T4", "ph=5 a=nvidia-t4"),
    ("A10 每小时8块以内", "a=nvidia-a10 ph=8"),
    ("80G显存的卡", "mem=80"),
    ("显存80GB的GPU", "mem=80 k=gpu"),
    ("96G显存 8卡", "mem=96 d=8"),
    ("可抢占的A100 六小时", "spot a=nvidia-a100-sxm4-80gb t=6h"),
    ("竞价实例 4090", "spot a=nvidia-rtx-4090 ?=实例"),
    ("最便宜的GPU", "s=price k=gpu"),
    ("最省钱的方案", "s=price ?=方案"),
    ("价格最低的910B", "s=price a=huawei-ascend-910b"),
    ("最绿色的训练卡", "s=green w=training"),
    ("绿电 训练 64卡", "s=green w=training d=64"),
    ("低碳 推理", "s=green w=inference"),
    ("延迟最低 深圳附近", "s=latency near=Shenzhen"),
    ("低延迟 上海附近 GPU", "s=latency near=Shanghai k=gpu"),
    ("空闲最多的NPU", "s=free k=npu"),
    ("请帮我查一下8张H100多少钱", "d=8 a=nvidia-h100-sxm"),
    ("给我报价：16张A800，训练两周", "d=16 a=nvidia-a800-sxm4-80gb w=training t=2w"),
    ("我想租4张卡跑一天", "d=4 t=1d"),
    ("我要32卡 预训练 10天 预算5万元", "d=32 w=training t=10d b=50000"),
    ("搜索贵州的昇腾910B", "hub=guizhou a=huawei-ascend-910b v=Huawei k=npu"),
    ("查询宁夏的H20", "hub=ningxia a=nvidia-h20"),
    ("预订两张L20 三天", "d=2 a=nvidia-l20 t=3d"),
    ("跑90分钟 A100", "t=90m a=nvidia-a100-sxm4-80gb"),
    ("48小时 8张GPU", "t=48h d=8 k=gpu"),
    ("训练3个星期", "w=training t=3w"),
    ("微调 2周 4张卡", "w=training t=2w d=4"),
    ("推理 半天", "w=inference t=12h"),
    ("东数西算 训练", "hub=west w=training"),
    ("西部地区的显卡", "hub=west k=gpu"),
    ("重庆的GPU", "p=CN-CQ k=gpu"),
    ("上海 8卡 H100", "p=CN-SH d=8 a=nvidia-h100-sxm"),
    ("天津的卡 最便宜", "p=CN-TJ s=price"),
    ("广西 推理 T4", "p=CN-GX w=inference a=nvidia-t4"),
    ("云南的CPU", "p=CN-YN k=cpu"),
    ("陕西 4张卡", "p=CN-SN d=4"),
    ("澳门附近", "near=Macao"),
    ("苏州附近 A800", "near=Suzhou a=nvidia-a800-sxm4-80gb"),
    ("靠近南京的L40S", "near=Nanjing a=nvidia-l40s"),
    ("庆阳的GPU 绿色", "near=Qingyang k=gpu s=green"),
    ("量子计算机", "?=量子计算机"),
    ("8张H100 火星上", "d=8 a=nvidia-h100-sxm ?=火星"),
    ("五千张卡", "?=5000 devices (1..4096)"),
    ("GPU 四十天", "k=gpu ?=3456000 s (at most 30 days)"),
    ("８张Ｈ１００，２天", "d=8 a=nvidia-h100-sxm t=2d"),
    ("给我来8张卡，越便宜越好", "d=8 s=price"),
    ("3天 64卡 昇腾 西部 2万", "t=3d d=64 v=Huawei k=npu hub=west b=20000"),
    ("一台8卡的A100服务器", "d=8 a=nvidia-a100-sxm4-80gb ?=一"),
]


def _expected(notation: str) -> dict[str, object]:
    want: dict[str, object] = {}
    for item in _split(notation):
        name, _, value = item.partition("=")
        if name == "d":
            want["devices"] = int(value)
        elif name == "a":
            want["accelerator"] = value
        elif name == "v":
            want["vendor"] = value
        elif name == "k":
            want["device_kind"] = value
        elif name == "w":
            want["workload_class"] = value
        elif name == "hub":
            want["hubs"] = WEST if value == "west" else tuple(value.split(","))
        elif name == "p":
            want["provinces"] = tuple(value.split(","))
        elif name == "near":
            want["near_city"] = value
        elif name == "t":
            want["duration_s"] = int(value[:-1]) * _SECONDS[value[-1]]
        elif name == "b":
            want["budget_fen"] = int(Decimal(value) * 100)
        elif name == "ph":
            want["max_fen_per_device_hour"] = int(Decimal(value) * 100)
        elif name == "mem":
            want["min_memory_gb"] = int(value)
        elif name == "s":
            want["sort"] = value
        elif name == "spot":
            want["spot"] = True
        elif name == "?":
            want["unknown"] = tuple(value.split(","))
        else:
            raise AssertionError(f"unknown field {name!r} in the table")
    return want


def _split(notation: str) -> list[str]:
    """Fields are space-separated; an unknown-words field (`?=`) runs to the end."""
    head, sep, tail = notation.partition("?=")
    return head.split() + ([f"?={tail}"] if sep else [])


FIELDS = ("devices", "accelerator", "vendor", "device_kind", "workload_class", "hubs",
          "provinces", "near_city", "duration_s", "budget_fen", "max_fen_per_device_hour",
          "min_memory_gb", "sort", "spot", "unknown")


def _check(text: str, notation: str) -> Ask:
    ask = parse(text, VOCABULARY)
    want = _expected(notation)
    default = Ask(text=text)
    got = {f: getattr(ask, f) for f in FIELDS}
    expected = {f: want.get(f, getattr(default, f)) for f in FIELDS}
    if "hubs" in want:
        got["hubs"] = tuple(sorted(got["hubs"]))  # type: ignore[arg-type]
        expected["hubs"] = tuple(sorted(expected["hubs"]))  # type: ignore[arg-type]
    assert got == expected, f"{text!r}: understood {ask.understood}"
    assert not ask.ambiguous
    return ask


def test_there_are_at_least_a_hundred_phrasings_in_each_language() -> None:
    assert len({t for t, _ in ENGLISH}) >= 100
    assert len({t for t, _ in CHINESE}) >= 100


@pytest.mark.parametrize(("text", "notation"), ENGLISH, ids=[t[:40] for t, _ in ENGLISH])
def test_english_phrasing(text: str, notation: str) -> None:
    _check(text, notation)


@pytest.mark.parametrize(("text", "notation"), CHINESE, ids=[t[:20] for t, _ in CHINESE])
def test_chinese_phrasing(text: str, notation: str) -> None:
    _check(text, notation)


def test_every_reading_says_where_it_came_from() -> None:
    ask = parse("find me 64 Ascend cards in the west under 20,000 yuan", VOCABULARY)
    assert "devices=64 (64 ascend)" in ask.understood
    assert "budget_fen=2000000 (under 20,000 yuan)" in ask.understood
    assert ask.clear


def test_a_name_that_fits_several_models_is_ambiguous_not_guessed() -> None:
    ask = parse("8 RTX 6000 cards", VOCABULARY)
    assert ask.accelerator is None and not ask.clear
    assert "nvidia-quadro-rtx-6000" in ask.ambiguous[0]
    assert "nvidia-rtx-6000-ada" in ask.ambiguous[0]


def test_two_answers_to_one_question_are_ambiguous_not_the_last_one_kept() -> None:
    ask = parse("8 H100 and 16 GPUs for 2 hours, 3 days", VOCABULARY)
    assert "devices: 8 or 16?" in ask.ambiguous
    assert "duration_s: 7200 or 259200?" in ask.ambiguous
    assert not ask.clear


def test_an_unknown_word_makes_the_request_unclear() -> None:
    assert not parse("8 H100 on the moon", VOCABULARY).clear


def test_a_request_over_the_limit_is_refused_not_cut() -> None:
    with pytest.raises(ValueError, match=str(MAX_ASK_CHARS)):
        parse("GPU " * MAX_ASK_CHARS, VOCABULARY)


def test_the_plan_is_a_search_and_a_quote() -> None:
    ask = parse("64 Ascend cards in the west for 3 days, greenest, under 30 yuan per hour",
                VOCABULARY)
    planned = plan(ask, hub_provinces(load_cities()))
    assert planned.search == {"vendor": "Huawei", "device_kind": "npu", "sort": "green",
                              "max_fen_per_device_hour": 3000}
    assert set(planned.searches_per_hub) == set(WEST)
    assert planned.quote["devices"] == 64 and planned.quote["time_limit_s"] == 3 * 86400
    assert {"CN-GZ", "CN-NX", "CN-GS", "CN-NM", "CN-SC", "CN-CQ"} <= set(
        planned.quote["provinces"])  # type: ignore[arg-type]


def test_near_a_city_sorts_by_latency_unless_told_otherwise() -> None:
    cities = hub_provinces(load_cities())
    assert plan(parse("GPUs near Shenzhen", VOCABULARY), cities).search["sort"] == "latency"
    assert plan(parse("cheapest GPUs near Shenzhen", VOCABULARY), cities).search["sort"] \
        == "price"
