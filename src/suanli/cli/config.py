"""Where the CLI finds its platform and key: SUANLI_URL / SUANLI_API_KEY, else `suanli login`.

The file is `client.json` in the user's config directory (platformdirs: `~/.config/suanli` on
Linux, honouring XDG_CONFIG_HOME), written with mode 0600 like an SSH key: it holds an API key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_config_path

DEFAULT_URL = "http://127.0.0.1:8000"
CONFIG_FILE_NAME = "client.json"
FILE_MODE = 0o600
DIR_MODE = 0o700
MAX_CONFIG_BYTES = 64 << 10
URL_ENV, KEY_ENV = "SUANLI_URL", "SUANLI_API_KEY"


class ConfigError(RuntimeError):
    """The stored configuration cannot be read."""


@dataclass(frozen=True)
class ClientConfig:
    url: str
    api_key: str | None
    url_from: str  # where each came from, for `suanli whoami`
    key_from: str


def config_path() -> Path:
    return user_config_path("suanli", appauthor=False) / CONFIG_FILE_NAME


def _stored(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; `suanli logout` removes it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object; `suanli logout` removes it")
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def load() -> ClientConfig:
    """The platform URL and key in force: the environment wins over the stored login."""
    path = config_path()
    stored = _stored(path)
    env_url, env_key = os.environ.get(URL_ENV), os.environ.get(KEY_ENV)
    if env_url:
        url, url_from = env_url, URL_ENV
    elif "url" in stored:
        url, url_from = stored["url"], str(path)
    else:
        url, url_from = DEFAULT_URL, "default"
    if env_key:
        key, key_from = env_key, KEY_ENV
    elif "api_key" in stored:
        key, key_from = stored["api_key"], str(path)
    else:
        key, key_from = None, "none"
    return ClientConfig(url.rstrip("/"), key, url_from, key_from)


def save(url: str, api_key: str) -> Path:
    """Store the login; the file is created 0600 and replaced atomically."""
    path = config_path()
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # an older tmp file may have had another mode
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"url": url.rstrip("/"), "api_key": api_key}, fh, indent=1)
            fh.write("\n")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def clear() -> bool:
    """Remove the stored login; False when there was none."""
    path = config_path()
    if not path.exists():
        return False
    path.unlink()
    return True
