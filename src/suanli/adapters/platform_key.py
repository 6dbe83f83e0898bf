"""The platform's Ed25519 key pair, kept in a file readable by its owner only (0600)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from suanli.domain.federation import b64url, key_id

KEY_FILE_MODE = 0o600


class KeyFileError(RuntimeError):
    """The key file exists but cannot be used (unreadable, not a key, open to others)."""


@dataclass(frozen=True)
class PlatformIdentity:
    """Who this platform is in the federation: its authority and its signing key."""

    authority: str  # "CN.GD"
    private_key: Ed25519PrivateKey
    public_raw: bytes

    @property
    def key_id(self) -> str:
        return key_id(self.authority, self.public_raw)

    @property
    def public_key_text(self) -> str:
        return b64url(self.public_raw)


def default_key_file(authority: str) -> Path:
    """`suanli-<authority>.key` in the working directory: one file per platform."""
    return Path(f"suanli-{authority}.key")


def load_or_create(path: Path) -> Ed25519PrivateKey:
    """The key in `path` (PEM, PKCS#8); a new one is generated and written with mode 0600.

    Refuses a file that group or others may read: a leaked key lets anyone sign as this
    platform, so it is better not to start than to use it.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            # O_EXCL: two processes starting at once never overwrite each other's key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        except FileExistsError:
            return load_or_create(path)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return key
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    try:
        stored = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(stored, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(stored).__name__}, not an Ed25519 key")
    return stored


def identity(authority: str, path: Path | None = None) -> PlatformIdentity:
    key = load_or_create(path or default_key_file(authority))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return PlatformIdentity(authority, key, raw)
