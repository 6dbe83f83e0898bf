"""`suanli login`'s file: mode 0600, replaced atomically, the environment wins over it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from suanli.cli import config


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("SUANLI_URL", raising=False)
    monkeypatch.delenv("SUANLI_API_KEY", raising=False)
    return tmp_path


def test_a_login_is_stored_for_the_owner_only(config_home: Path) -> None:
    path = config.save("http://127.0.0.1:8123/", "sl_abc_secret")
    assert path == config_home / "suanli" / "client.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = config.load()
    assert (loaded.url, loaded.api_key) == ("http://127.0.0.1:8123", "sl_abc_secret")
    assert loaded.url_from == loaded.key_from == str(path)
    path.chmod(0o644)
    config.save("http://127.0.0.1:8124", "sl_abc_other")  # a rewrite tightens the mode again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob("*.tmp"))


def test_the_environment_wins_each_value_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    config.save("http://stored:1", "sl_stored_key")
    monkeypatch.setenv("SUANLI_URL", "http://from-env:2")
    loaded = config.load()
    assert (loaded.url, loaded.url_from) == ("http://from-env:2", "SUANLI_URL")
    assert loaded.api_key == "sl_stored_key"
    monkeypatch.setenv("SUANLI_API_KEY", "sl_env_key")
    assert config.load().key_from == "SUANLI_API_KEY"


def test_without_a_login_the_default_url_and_no_key() -> None:
    loaded = config.load()
    assert (loaded.url, loaded.api_key, loaded.url_from) == (config.DEFAULT_URL, None, "default")
    assert config.clear() is False


def test_logout_forgets_and_a_broken_file_says_how_to_recover(config_home: Path) -> None:
    path = config.save("http://127.0.0.1:8000", "sl_x_y")
    assert config.clear() is True and not path.exists()
    path.write_text("[1, 2]")
    with pytest.raises(config.ConfigError, match="suanli logout"):
        config.load()
