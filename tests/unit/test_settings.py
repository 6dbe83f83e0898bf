"""Settings: environment first, then the TOML file, for every settings class alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from suanli.federation_settings import FederationSettings
from suanli.settings import Settings


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SUANLI_DATABASE_URL", "SUANLI_PARENT", "SUANLI_PEER_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "node.toml"
    path.write_text('database_url = "sqlite:///from-file.db"\n'
                    'parent = "http://127.0.0.1:9000"\npeer_retries = 5\n')
    monkeypatch.setenv("SUANLI_CONFIG", str(path))
    return path


def test_both_settings_classes_read_the_config_file(config_file: Path) -> None:
    assert Settings().database_url == "sqlite:///from-file.db"
    federation = FederationSettings()
    assert federation.parent == "http://127.0.0.1:9000"
    assert federation.peer_retries == 5
    assert federation.level() == "regional"


def test_the_environment_wins_over_the_file(config_file: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUANLI_DATABASE_URL", "sqlite:///from-env.db")
    monkeypatch.setenv("SUANLI_PEER_RETRIES", "2")
    assert Settings().database_url == "sqlite:///from-env.db"
    assert FederationSettings().peer_retries == 2


def test_a_missing_file_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUANLI_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("SUANLI_PARENT", raising=False)
    assert FederationSettings().level() == "national"


def test_a_bad_value_in_the_file_names_the_field(config_file: Path) -> None:
    config_file.write_text("peer_retries = 99\n")
    with pytest.raises(ValidationError, match="peer_retries"):
        FederationSettings()
