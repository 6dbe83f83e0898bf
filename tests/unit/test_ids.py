"""Unit tests of the unified compute identifier: format, check character, hierarchy, resolution."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from suanli.domain.errors import NotFound, ValidationFailed
from suanli.domain.ids import (
    MAX_AUTHORITY_LEVELS,
    MAX_SERIAL,
    MAX_TEXT_LEN,
    ComputeId,
    IdKind,
    Resolver,
    check_character,
    is_valid,
)

BODY_ALPHABET = string.digits + string.ascii_uppercase + "."
# Every symbol a typo can plausibly produce: the body and check alphabets, the dash, and junk.
TYPO_ALPHABET = BODY_ALPHABET + "-*_ /,"

EXAMPLES = [
    "CN-I",
    "CN.GD-I",
    "CN.GD.P0042-0",
    "CN.GD.P0042.S007.R0003-4",
    "CN.YRD.FIN.P0001.S001.R0001-K",
    "CN.GD.J00001234.L01.U0001-C",
    "CN.FIN.T000042-1",
]

CHAINS = [(), ("T",), ("P",), ("P", "S"), ("P", "S", "R"), ("J",), ("J", "L"), ("J", "L", "U")]
TAG_KIND = {"T": IdKind.TENANT, "P": IdKind.PROVIDER, "S": IdKind.SITE, "R": IdKind.POOL,
            "J": IdKind.JOB, "L": IdKind.LEASE, "U": IdKind.RECORD}


@st.composite
def compute_ids(draw: st.DrawFn) -> ComputeId:
    prefixes = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=8)
    cid = ComputeId.platform(*draw(st.lists(prefixes, min_size=1, max_size=4)))
    serials = st.one_of(st.integers(1, 9_999), st.integers(1, MAX_SERIAL))
    try:
        for tag in draw(st.sampled_from(CHAINS)):
            cid = cid.child(TAG_KIND[tag], draw(serials))
    except ValidationFailed:
        assume(False)  # over the length limit
    return cid


def substitutions(text: str) -> list[str]:
    return [text[:i] + ch + text[i + 1:]
            for i in range(len(text)) for ch in TYPO_ALPHABET if ch != text[i]]


def adjacent_transpositions(text: str) -> list[str]:
    return [text[:i] + text[i + 1] + text[i] + text[i + 2:]
            for i in range(len(text) - 1) if text[i] != text[i + 1]]


# --- the check character on its own ----------------------------------------------------------

def test_check_character_matches_the_iso_7064_mod_37_2_example() -> None:
    assert check_character("G123498654321") == "H"


@given(st.text(alphabet=BODY_ALPHABET, min_size=2, max_size=MAX_TEXT_LEN - 2))
def test_check_character_changes_under_every_substitution_and_transposition(body: str) -> None:
    check = check_character(body)
    for i in range(len(body)):
        for ch in BODY_ALPHABET:
            if ch != body[i]:
                assert check_character(body[:i] + ch + body[i + 1:]) != check
    for mutated in adjacent_transpositions(body):
        assert check_character(mutated) != check


@given(st.text(alphabet=BODY_ALPHABET, min_size=3, max_size=MAX_TEXT_LEN - 2))
def test_check_character_also_catches_jump_transpositions(body: str) -> None:
    check = check_character(body)
    for i in range(len(body) - 2):
        if body[i] != body[i + 2]:
            assert check_character(body[:i] + body[i + 2] + body[i + 1] + body[i] + body[i + 3:]) \
                != check


def test_separators_are_part_of_the_checked_string() -> None:
    # Same letters, different authority path: only the checked '.' tells them apart.
    assert check_character("CN.YRD") != check_character("CNY.RD")


def test_check_character_rejects_characters_outside_the_body_alphabet() -> None:
    with pytest.raises(ValidationFailed) as err:
        check_character("CN-GD")
    assert err.value.field == "body"


# --- parse and format --------------------------------------------------------------------------

@pytest.mark.parametrize("text", EXAMPLES)
def test_examples_round_trip(text: str) -> None:
    assert str(ComputeId.parse(text)) == text
    assert is_valid(text)


@given(compute_ids())
def test_every_id_round_trips_through_its_text(cid: ComputeId) -> None:
    text = str(cid)
    assert len(text) <= MAX_TEXT_LEN
    assert ComputeId.parse(text) == cid
    assert ComputeId.parse(f"  {text.lower()}\n") == cid
    assert text == text.upper()


@settings(max_examples=60, deadline=None)
@given(compute_ids())
def test_every_single_substitution_of_a_valid_id_is_rejected(cid: ComputeId) -> None:
    text = str(cid)
    accepted = [m for m in substitutions(text) if m.upper() != text and is_valid(m)]
    assert accepted == []


@settings(max_examples=60, deadline=None)
@given(compute_ids())
def test_every_adjacent_transposition_of_a_valid_id_is_rejected(cid: ComputeId) -> None:
    assert [m for m in adjacent_transpositions(str(cid)) if is_valid(m)] == []


@pytest.mark.parametrize("text", EXAMPLES)
def test_examples_reject_every_typo_exhaustively(text: str) -> None:
    typos = substitutions(text) + adjacent_transpositions(text)
    assert [m for m in typos if is_valid(m)] == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("CN.GD.P0042", "must end with '-'"),
        ("CN.GD.P0042-", "must end with '-'"),
        ("CN.GD.P0042-00", "must end with '-'"),
        ("CN.GD.P0042-1", "check character"),
        ("CN.G#.P0042-0", "invalid character '#'"),
        ("CN." + "AB." * 21 + "CD-0", "at most 64"),
    ],
)
def test_parse_says_why_text_is_rejected(text: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        ComputeId.parse(text, field="pool_id")
    assert err.value.field == "pool_id"
    assert reason in err.value.detail


def with_check(body: str) -> str:
    return f"{body}-{check_character(body)}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("CN.GD.P42", "must be written 'P0042'"),
        ("CN.GD.P00042", "must be written 'P0042'"),
        ("CN.GD.P0000", "serial must be 1.."),
        ("CN.GD.R0003", "a platform cannot hold a pool"),
        ("CN.GD.P0042.R0003", "a provider cannot hold a pool"),
        ("CN.GD.X0001", "unknown kind tag 'X'"),
        ("CN.P0042.GD", "must come before the typed segments"),
        ("CN..GD", "empty segment"),
        ("CN.G", "neither an authority prefix"),
        ("CN.G7D", "neither an authority prefix"),
        (".".join(["AB"] * (MAX_AUTHORITY_LEVELS + 1)), "1..8 authority levels"),
    ],
)
def test_parse_rejects_well_checked_text_that_breaks_the_grammar(body: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        ComputeId.parse(with_check(body), field="site_id")
    assert err.value.field == "site_id"
    assert reason in err.value.detail


def test_is_valid_is_false_for_non_strings() -> None:
    assert not is_valid(42)  # type: ignore[arg-type]


# --- hierarchy ---------------------------------------------------------------------------------

def test_a_pool_knows_its_kind_parents_and_authority() -> None:
    pool = ComputeId.parse("cn.gd.p0042.s007.r0003-4")
    assert pool.kind is IdKind.POOL
    assert pool.serial == 3
    assert str(pool.parent) == with_check("CN.GD.P0042.S007")
    assert pool.authority_id == ComputeId.platform("CN", "GD")
    chain = []
    node: ComputeId | None = pool
    while node is not None:
        chain.append(node.kind)
        node = node.parent
    assert chain == [IdKind.POOL, IdKind.SITE, IdKind.PROVIDER, IdKind.PLATFORM, IdKind.PLATFORM]


def test_a_platform_is_its_own_authority_and_its_parent_delegated_it() -> None:
    gd = ComputeId.platform("CN.GD")
    assert gd.kind is IdKind.PLATFORM and gd.serial is None
    assert gd.authority_id == gd
    assert gd.parent == ComputeId.platform("CN")
    assert ComputeId.platform("CN").parent is None


def test_child_builds_the_allowed_hierarchy() -> None:
    root = ComputeId.platform("cn", "gd")
    pool = root.child(IdKind.PROVIDER, 42).child(IdKind.SITE, 7).child(IdKind.POOL, 3)
    assert str(pool) == "CN.GD.P0042.S007.R0003-4"
    record = root.child(IdKind.JOB, 1234).child(IdKind.LEASE, 1).child(IdKind.RECORD, 1)
    assert str(record) == "CN.GD.J00001234.L01.U0001-C"
    assert root.child(IdKind.TENANT, 42).kind is IdKind.TENANT
    assert root.child("provider", 1).kind is IdKind.PROVIDER  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("parent", "kind"),
    [
        ("CN.GD", IdKind.SITE),
        ("CN.GD", IdKind.POOL),
        ("CN.GD", IdKind.PLATFORM),
        ("CN.GD.P0042", IdKind.POOL),
        ("CN.GD.P0042.S007.R0003", IdKind.JOB),
        ("CN.GD.T000001", IdKind.JOB),
        ("CN.GD.J00000001", IdKind.RECORD),
    ],
)
def test_child_refuses_kinds_the_hierarchy_does_not_allow(parent: str, kind: IdKind) -> None:
    with pytest.raises(ValidationFailed) as err:
        ComputeId.parse(with_check(parent)).child(kind, 1)
    assert err.value.field == "kind"


@pytest.mark.parametrize("serial", [0, -1, MAX_SERIAL + 1, True, 1.0])
def test_child_refuses_bad_serials(serial: object) -> None:
    with pytest.raises(ValidationFailed) as err:
        ComputeId.platform("CN").child(IdKind.PROVIDER, serial)  # type: ignore[arg-type]
    assert err.value.field == "serial"


def test_child_refuses_to_grow_past_the_length_limit() -> None:
    long_root = ComputeId.platform(*(["ABCDEFGH"] * 5))
    with pytest.raises(ValidationFailed, match="at most 64"):
        long_root.child(IdKind.JOB, MAX_SERIAL).child(IdKind.LEASE, 1).child(IdKind.RECORD, 1)


def test_delegation_nests_platforms_up_to_the_level_limit() -> None:
    platform = ComputeId.platform("CN")
    for prefix in ["yrd", "fin", "sh", "pd", "lj", "zz", "qq"]:
        platform = platform.delegate(prefix)
    assert len(platform.authority) == MAX_AUTHORITY_LEVELS
    assert platform.body == "CN.YRD.FIN.SH.PD.LJ.ZZ.QQ"
    with pytest.raises(ValidationFailed) as err:
        platform.delegate("XX")
    assert err.value.field == "prefix"


@pytest.mark.parametrize("prefix", ["G", "G7", "GD.SZ", "ABCDEFGHI", "", "广东"])
def test_delegate_refuses_bad_prefixes(prefix: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        ComputeId.platform("CN").delegate(prefix)
    assert err.value.field == "prefix"


def test_only_a_platform_can_delegate() -> None:
    with pytest.raises(ValidationFailed, match="only a platform"):
        ComputeId.platform("CN").child(IdKind.PROVIDER, 1).delegate("GD")


def test_the_constructor_enforces_the_same_rules_as_parse() -> None:
    assert ComputeId(("cn", "gd"), (("p", 42),)) == ComputeId.parse("CN.GD.P0042-0")
    with pytest.raises(ValidationFailed):
        ComputeId((), ())
    with pytest.raises(ValidationFailed):
        ComputeId(("CN",), (("S", 1),))


def test_is_within_follows_delegation_and_typed_segments() -> None:
    cn, gd = ComputeId.platform("CN"), ComputeId.platform("CN", "GD")
    provider = gd.child(IdKind.PROVIDER, 42)
    pool = provider.child(IdKind.SITE, 7).child(IdKind.POOL, 3)
    assert pool.is_within(pool) and pool.is_within(provider)
    assert pool.is_within(gd) and pool.is_within(cn) and gd.is_within(cn)
    assert not cn.is_within(gd)
    assert not pool.is_within(gd.child(IdKind.PROVIDER, 43))
    assert not pool.is_within(ComputeId.platform("CN", "GDX"))
    assert not ComputeId.platform("CN", "GD", "SZ").child(IdKind.PROVIDER, 42).is_within(provider)


def test_ids_sort_by_authority_then_numeric_serial() -> None:
    gd = ComputeId.platform("CN", "GD")
    ids = [gd.child(IdKind.PROVIDER, 10_000), gd.child(IdKind.PROVIDER, 9), gd]
    assert sorted(ids) == [gd, gd.child(IdKind.PROVIDER, 9), gd.child(IdKind.PROVIDER, 10_000)]
    assert len({ComputeId.parse("CN.GD-I"), ComputeId.parse("cn.gd-i")}) == 1


# --- resolution -------------------------------------------------------------------------------

RESOLVER = Resolver({
    "CN": "https://root.example.cn",
    "cn.gd": "https://gd.example.cn",
    "CN.YRD.FIN-" + check_character("CN.YRD.FIN"): "https://fin.yrd.example.cn",
})


@pytest.mark.parametrize(
    ("cid", "endpoint"),
    [
        ("CN.GD.P0042.S007.R0003-4", "https://gd.example.cn"),
        ("CN.GD-I", "https://gd.example.cn"),
        ("CN.YRD.FIN.P0001.S001.R0001-K", "https://fin.yrd.example.cn"),
        (with_check("CN.YRD.P0001"), "https://root.example.cn"),  # YRD delegated but not listed
        ("CN-I", "https://root.example.cn"),
    ],
)
def test_resolve_picks_the_longest_delegated_prefix(cid: str, endpoint: str) -> None:
    assert RESOLVER.resolve(cid) == endpoint
    assert RESOLVER.resolve(ComputeId.parse(cid)) == endpoint


def test_resolver_names_the_covering_platform() -> None:
    assert RESOLVER.authority_for("CN.GD.P0042-0") == ComputeId.platform("CN", "GD")


def test_resolve_raises_not_found_outside_every_delegation() -> None:
    with pytest.raises(NotFound):
        Resolver({"CN.GD": "gd"}).resolve("CN.YRD.FIN.P0001.S001.R0001-K")


def test_resolve_rejects_a_mistyped_id() -> None:
    with pytest.raises(ValidationFailed):
        RESOLVER.resolve("CN.GD.P0042-1")


@pytest.mark.parametrize(
    "delegations",
    [
        {"CN.G": "x"},
        {"CN.GD.P0042-0": "x"},
        {"CN.GD": ""},
        {"CN.GD": "a", "cn.gd": "b"},
    ],
)
def test_resolver_rejects_bad_delegation_tables(delegations: dict[str, str]) -> None:
    with pytest.raises(ValidationFailed) as err:
        Resolver(delegations)
    assert err.value.field == "delegations"


def test_a_transposition_that_fools_mod_37_36_is_caught() -> None:
    # The hybrid MOD 37,36 gives both bodies the same check character (see docs/identifiers.md).
    assert check_character("CN.GD.P0002.S002.R0001") != check_character("CN.GD.P0002.S002.R0010")
    assert not is_valid("CN.GD.P0002.S002.R0010-" + check_character("CN.GD.P0002.S002.R0001"))
