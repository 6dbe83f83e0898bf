"""The unified compute identifier (统一算力标识): hierarchical, delegable, check-protected ids."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from suanli.domain.errors import NotFound, ValidationFailed

MAX_TEXT_LEN = 64  # the whole text, check character included
MAX_AUTHORITY_LEVELS = 8
MIN_PREFIX_LEN = 2  # one letter would read like a kind tag that lost its serial
MAX_PREFIX_LEN = 8
MAX_SERIAL = 10**12 - 1
MAX_SERIAL_DIGITS = 12

_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# ISO/IEC 7064 MOD 37-2. The '.' separator is checked too, with the value 36 that the standard
# gives its supplementary '*': otherwise "CN.YRD" and "CNY.RD" would share a check character.
_BODY_VALUES: dict[str, int] = {ch: value for value, ch in enumerate(_ALPHANUMERIC + ".")}
_CHECK_SYMBOLS = _ALPHANUMERIC + "*"
_MODULUS = 37

_PREFIX_RE = re.compile(rf"[A-Z]{{{MIN_PREFIX_LEN},{MAX_PREFIX_LEN}}}")
_TYPED_RE = re.compile(rf"([A-Z])([0-9]{{1,{MAX_SERIAL_DIGITS}}})")


class IdKind(StrEnum):
    """What an identifier names; every kind but PLATFORM has a one-letter tag in the text."""

    PLATFORM = "platform"
    TENANT = "tenant"
    PROVIDER = "provider"
    SITE = "site"
    POOL = "pool"
    JOB = "job"
    LEASE = "lease"
    RECORD = "record"


TAG_OF_KIND: Mapping[IdKind, str] = {
    IdKind.TENANT: "T",
    IdKind.PROVIDER: "P",
    IdKind.SITE: "S",
    IdKind.POOL: "R",  # R for resource pool: P is taken by the provider
    IdKind.JOB: "J",
    IdKind.LEASE: "L",
    IdKind.RECORD: "U",  # U for usage record: R is taken by the pool
}
KIND_OF_TAG: Mapping[str, IdKind] = {tag: kind for kind, tag in TAG_OF_KIND.items()}

# Zero-padding is cosmetic: sized to the usual count per parent so listings line up; a larger
# serial simply takes more digits. Parsing insists on exactly this form, so each id has one text.
SERIAL_WIDTH: Mapping[str, int] = {"T": 6, "P": 4, "S": 3, "R": 4, "J": 8, "L": 2, "U": 4}

# Platforms gain sub-platforms through delegate(), never through child().
CHILD_KINDS: Mapping[IdKind, frozenset[IdKind]] = {
    IdKind.PLATFORM: frozenset({IdKind.TENANT, IdKind.PROVIDER, IdKind.JOB}),
    IdKind.TENANT: frozenset(),
    IdKind.PROVIDER: frozenset({IdKind.SITE}),
    IdKind.SITE: frozenset({IdKind.POOL}),
    IdKind.POOL: frozenset(),
    IdKind.JOB: frozenset({IdKind.LEASE}),
    IdKind.LEASE: frozenset({IdKind.RECORD}),
    IdKind.RECORD: frozenset(),
}


def _weighted_sum(text: str) -> int:
    total = 0
    for ch in text:
        total = (2 * total + _BODY_VALUES[ch]) % _MODULUS
    return total


def check_character(body: str) -> str:
    """The ISO/IEC 7064 MOD 37-2 check character of an id body (the text before the '-')."""
    canonical = body.upper()
    if not canonical or len(canonical) > MAX_TEXT_LEN - 2:
        raise ValidationFailed(f"must be 1-{MAX_TEXT_LEN - 2} characters long", field="body")
    for ch in canonical:
        if ch not in _BODY_VALUES:
            raise ValidationFailed(f"has the invalid character {ch!r}", field="body")
    return _CHECK_SYMBOLS[(1 - 2 * _weighted_sum(canonical)) % _MODULUS]


def format_serial(tag: str, serial: int) -> str:
    """The canonical digits of a serial: zero-padded to the width of its kind."""
    return str(serial).zfill(SERIAL_WIDTH[tag])


@dataclass(frozen=True, order=True, repr=False)
class ComputeId:
    """An identifier: the authority path of the issuing platform, then typed segments under it.

    Construct with `parse`, `platform`, `child` and `delegate`; the constructor validates and
    upper-cases, so an instance always formats to a valid, canonical text.
    """

    authority: tuple[str, ...]
    path: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        authority, path = _normalise(self.authority, self.path)
        object.__setattr__(self, "authority", authority)
        object.__setattr__(self, "path", path)
        _check_invariants(authority, path)

    @classmethod
    def parse(cls, text: str, *, field: str = "id") -> ComputeId:
        """Read an id, ignoring case and surrounding blanks; ValidationFailed says why it is bad."""
        if not isinstance(text, str):
            raise ValidationFailed("must be a string", field=field)
        canonical = text.strip().upper()
        if not canonical:
            raise ValidationFailed("must not be empty", field=field)
        if len(canonical) > MAX_TEXT_LEN:
            raise ValidationFailed(
                f"is {len(canonical)} characters long; at most {MAX_TEXT_LEN}", field=field
            )
        body, dash, check = canonical.rpartition("-")
        if not dash or not body or len(check) != 1:
            raise ValidationFailed(
                "must end with '-' and one check character, like 'CN.GD.P0042-0'", field=field
            )
        for position, ch in enumerate(body, start=1):
            if ch not in _BODY_VALUES:
                raise ValidationFailed(
                    f"has the invalid character {ch!r} at position {position}", field=field
                )
        # Before the grammar: a typo usually breaks both, and "typo" is the more useful reason.
        if check not in _CHECK_SYMBOLS or check_character(body) != check:
            raise ValidationFailed(
                "check character does not match: the id has a typo", field=field
            )
        try:
            return cls(*_split_body(body))
        except ValidationFailed as exc:
            raise ValidationFailed(exc.detail, field=field) from None

    @classmethod
    def platform(cls, *authority: str) -> ComputeId:
        """A platform id from its authority path: `platform("CN", "GD")` or `platform("CN.GD")`."""
        segments = tuple(part for segment in authority for part in str(segment).split("."))
        try:
            return cls(segments)
        except ValidationFailed as exc:
            raise ValidationFailed(exc.detail, field="authority") from None

    @property
    def body(self) -> str:
        """The text before the check character."""
        return _format_body(self.authority, self.path)

    def __str__(self) -> str:
        body = self.body
        return f"{body}-{check_character(body)}"

    def __repr__(self) -> str:
        return f"ComputeId({str(self)!r})"

    @property
    def kind(self) -> IdKind:
        return KIND_OF_TAG[self.path[-1][0]] if self.path else IdKind.PLATFORM

    @property
    def serial(self) -> int | None:
        """The serial of the last typed segment; None for a platform."""
        return self.path[-1][1] if self.path else None

    @property
    def parent(self) -> ComputeId | None:
        """One level up: the typed parent, or for a platform the one that delegated its prefix."""
        if self.path:
            return ComputeId(self.authority, self.path[:-1])
        if len(self.authority) > 1:
            return ComputeId(self.authority[:-1])
        return None

    @property
    def authority_id(self) -> ComputeId:
        """The platform that issued this id; a platform id is its own authority."""
        return ComputeId(self.authority) if self.path else self

    def child(self, kind: IdKind, serial: int) -> ComputeId:
        """The id of a `kind` with `serial` under this one, if the hierarchy allows it there."""
        try:
            kind = IdKind(kind)
        except ValueError:
            raise ValidationFailed(f"unknown kind {kind!r}", field="kind") from None
        if kind is IdKind.PLATFORM:
            raise ValidationFailed("a platform is delegated, not a child: use delegate()",
                                   field="kind")
        if kind not in CHILD_KINDS[self.kind]:
            raise ValidationFailed(f"a {self.kind} cannot hold a {kind}", field="kind")
        _check_serial(serial, field="serial")
        return ComputeId(self.authority, (*self.path, (TAG_OF_KIND[kind], serial)))

    def delegate(self, prefix: str) -> ComputeId:
        """The sub-platform this platform creates by assigning it `prefix`."""
        if self.kind is not IdKind.PLATFORM:
            raise ValidationFailed(f"only a platform can delegate, not a {self.kind}", field="id")
        if not isinstance(prefix, str):
            raise ValidationFailed("must be a string", field="prefix")
        try:
            return ComputeId((*self.authority, prefix))
        except ValidationFailed as exc:
            raise ValidationFailed(exc.detail, field="prefix") from None

    def is_within(self, ancestor: ComputeId) -> bool:
        """Whether `ancestor` is this id or above it (through delegation or typed segments)."""
        if ancestor.path:
            depth = len(ancestor.path)
            return self.authority == ancestor.authority and self.path[:depth] == ancestor.path
        return self.authority[: len(ancestor.authority)] == ancestor.authority


def is_valid(text: str) -> bool:
    """Whether `text` parses as an id (check character included)."""
    try:
        ComputeId.parse(text)
    except ValidationFailed:
        return False
    return True


def _normalise(
    authority: object, path: object
) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    if not isinstance(authority, tuple | list) or not isinstance(path, tuple | list):
        raise ValidationFailed("authority and path must be tuples", field="id")
    if not all(isinstance(prefix, str) for prefix in authority):
        raise ValidationFailed("authority prefixes must be strings", field="id")
    if not all(isinstance(seg, tuple | list) and len(seg) == 2 and isinstance(seg[0], str)
               for seg in path):
        raise ValidationFailed("path segments must be (tag, serial) pairs", field="id")
    return (
        tuple(prefix.upper() for prefix in authority),
        tuple((tag.upper(), serial) for tag, serial in path),
    )


def _check_serial(serial: object, *, field: str) -> None:
    # bool is an int subclass; True as a serial is a caller's bug, not serial 1.
    if not isinstance(serial, int) or isinstance(serial, bool):
        raise ValidationFailed("serial must be an integer", field=field)
    if not 1 <= serial <= MAX_SERIAL:
        raise ValidationFailed(f"serial must be 1..{MAX_SERIAL}, not {serial}", field=field)


def _check_invariants(authority: tuple[str, ...], path: tuple[tuple[str, int], ...]) -> None:
    if not 1 <= len(authority) <= MAX_AUTHORITY_LEVELS:
        raise ValidationFailed(
            f"must have 1..{MAX_AUTHORITY_LEVELS} authority levels, not {len(authority)}",
            field="id",
        )
    for prefix in authority:
        if not _PREFIX_RE.fullmatch(prefix):
            raise ValidationFailed(
                f"authority prefix {prefix!r} must be {MIN_PREFIX_LEN}-{MAX_PREFIX_LEN} letters",
                field="id",
            )
    kind = IdKind.PLATFORM
    for tag, serial in path:
        child = KIND_OF_TAG.get(tag)
        if child is None:
            raise ValidationFailed(f"unknown kind tag {tag!r}", field="id")
        if child not in CHILD_KINDS[kind]:
            raise ValidationFailed(f"a {kind} cannot hold a {child} ({tag})", field="id")
        _check_serial(serial, field="id")
        kind = child
    text_len = len(_format_body(authority, path)) + 2  # the '-' and the check character
    if text_len > MAX_TEXT_LEN:
        raise ValidationFailed(
            f"would be {text_len} characters long; at most {MAX_TEXT_LEN}", field="id"
        )


def _format_body(authority: tuple[str, ...], path: tuple[tuple[str, int], ...]) -> str:
    typed = (tag + format_serial(tag, serial) for tag, serial in path)
    return ".".join((*authority, *typed))


def _split_body(body: str) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    authority: list[str] = []
    path: list[tuple[str, int]] = []
    for segment in body.split("."):
        typed = _TYPED_RE.fullmatch(segment)
        if typed:
            tag, digits = typed.groups()
            if tag in SERIAL_WIDTH and digits != format_serial(tag, int(digits)):
                expected = tag + format_serial(tag, int(digits))
                raise ValidationFailed(f"segment {segment!r} must be written {expected!r}",
                                       field="id")
            path.append((tag, int(digits)))
        elif _PREFIX_RE.fullmatch(segment):
            if path:
                raise ValidationFailed(
                    f"authority prefix {segment!r} must come before the typed segments",
                    field="id",
                )
            authority.append(segment)
        elif not segment:
            raise ValidationFailed("has an empty segment (a doubled or stray '.')", field="id")
        else:
            raise ValidationFailed(
                f"segment {segment!r} is neither an authority prefix "
                f"({MIN_PREFIX_LEN}-{MAX_PREFIX_LEN} letters) nor a kind tag with a serial",
                field="id",
            )
    return tuple(authority), tuple(path)


class Resolver:
    """Finds the platform authoritative for an id: the longest delegated authority prefix."""

    def __init__(self, delegations: Mapping[str, str]) -> None:
        """`delegations` maps authority text ("CN.GD", or a platform id) to an endpoint or name."""
        table: dict[tuple[str, ...], str] = {}
        for key, endpoint in delegations.items():
            platform = _delegation_key(key)
            if not isinstance(endpoint, str) or not endpoint.strip():
                raise ValidationFailed(f"endpoint for {key!r} must be a non-empty string",
                                       field="delegations")
            if platform.authority in table:
                raise ValidationFailed(f"authority {platform.body!r} is delegated twice",
                                       field="delegations")
            table[platform.authority] = endpoint
        self._table = table

    def authority_for(self, cid: ComputeId | str) -> ComputeId:
        """The delegated platform that covers `cid`; NotFound if none does."""
        return self._match(cid)[0]

    def resolve(self, cid: ComputeId | str) -> str:
        """The endpoint of the platform authoritative for `cid`; NotFound if none covers it."""
        return self._match(cid)[1]

    def _match(self, cid: ComputeId | str) -> tuple[ComputeId, str]:
        target = cid if isinstance(cid, ComputeId) else ComputeId.parse(cid)
        # At most MAX_AUTHORITY_LEVELS look-ups: the longest prefix wins.
        for depth in range(len(target.authority), 0, -1):
            endpoint = self._table.get(target.authority[:depth])
            if endpoint is not None:
                return ComputeId(target.authority[:depth]), endpoint
        raise NotFound(f"no platform is delegated for {target}", field="id")


def _delegation_key(key: str) -> ComputeId:
    if not isinstance(key, str):
        raise ValidationFailed("delegation keys must be strings", field="delegations")
    try:
        platform = (ComputeId.parse(key, field="delegations") if "-" in key
                    else ComputeId.platform(key))
    except ValidationFailed as exc:
        raise ValidationFailed(f"{key!r}: {exc.detail}", field="delegations") from None
    if platform.kind is not IdKind.PLATFORM:
        raise ValidationFailed(f"{key!r} names a {platform.kind}, not a platform",
                               field="delegations")
    return platform
