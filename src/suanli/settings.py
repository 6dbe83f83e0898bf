"""Settings from the environment (SUANLI_*) and an optional TOML config file."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = "suanli.toml"


class SuanliSettings(BaseSettings):
    """Base of suanli's settings classes: SUANLI_* environment first, then the TOML file
    named by SUANLI_CONFIG (default ./suanli.toml) when it exists."""

    model_config = SettingsConfigDict(env_prefix="SUANLI_", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("SUANLI_CONFIG", DEFAULT_CONFIG_FILE))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


class Settings(SuanliSettings):
    """Everything a platform node needs to start; see docs/configuration.md."""

    database_url: str = Field(
        default="sqlite:///suanli.db",
        description="SQLAlchemy URL: sqlite:///path.db (default) or postgresql+psycopg://...",
    )
    database_schema: str | None = Field(
        default=None, description="PostgreSQL schema to use (search_path); None for the default"
    )
    authority: str = Field(
        default="CN", description="This platform's identifier authority, e.g. CN or CN.GD"
    )
    platform_name: str = Field(default="suanli national platform", min_length=1, max_length=120)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    demo: bool = False
    auto_migrate: bool = True
    run_scheduler: bool = Field(default=True, description="run failover and scheduling here")
    scheduler_interval_s: float = Field(default=1.0, ge=0.05, le=60)
    heartbeat_ttl_s: int = Field(default=30, ge=2, le=3600,
                                 description="a claimed job whose agent is silent this long "
                                 "fails over")
    claim_timeout_s: int = Field(default=120, ge=2, le=86400,
                                 description="a placed job no agent claims this soon is "
                                 "placed elsewhere")
    max_body_bytes: int = Field(default=1 << 20, ge=1024, le=1 << 30,
                                description="largest request body; bigger ones get 413 unread")
    max_bulk_body_bytes: int = Field(default=16 << 20, ge=1024, le=1 << 30,
                                     description="largest body of an agent's report (logs) "
                                     "and of the federation protocol")
    access_log: bool = Field(default=False,
                             description="log every request (uvicorn's access log); warnings "
                             "and errors are logged either way")
    search_index: bool = Field(default=True,
                               description="order pool searches in memory (NumPy columns "
                               "of the registry) instead of SQL; see docs/api.md")
