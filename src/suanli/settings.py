"""Settings from the environment (SUANLI_*) and an optional TOML config file."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = "suanli.toml"


def default_database_url(authority: str) -> str:
    """`sqlite:///suanli-<AUTHORITY>.db` in the working directory: a file per node, so the
    national and a regional node can start from one directory without sharing a database."""
    return f"sqlite:///suanli-{authority.strip().upper()}.db"


def default_platform_name(authority: str) -> str:
    body = authority.strip().upper()
    return "suanli national platform" if "." not in body else f"suanli platform {body}"


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
        default="",
        description="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://...; default "
        "sqlite:///suanli-<authority>.db in the working directory",
    )
    database_schema: str | None = Field(
        default=None, description="PostgreSQL schema to use (search_path); None for the default"
    )
    authority: str = Field(
        default="CN", description="This platform's identifier authority, e.g. CN or CN.GD"
    )
    platform_name: str = Field(
        default="", max_length=120,
        description="how this node names itself to peers; default 'suanli national platform' "
        "for a root authority, else 'suanli platform <authority>'")
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

    @model_validator(mode="after")
    def _defaults_from_authority(self) -> Settings:
        if not self.database_url:
            self.database_url = default_database_url(self.authority)
        if not self.platform_name:
            self.platform_name = default_platform_name(self.authority)
        return self
    # issue 12: rate limits (docs/security.md); rules are "N/second|minute|hour"
    rate_limit_storage_url: str = Field(
        default="memory://", description="memory:// (one process) or redis://host:6379 "
        "(shared by every server process of the platform)")
    auth_failures_per_address: str = Field(
        default="30/minute", description="failed authentications one client address may "
        "make before it gets 429")
    rate_limit_namespace: str = Field(
        default="", max_length=100, description="prefix of the counters in a shared storage "
        "(default suanli:<authority>)")
    requests_per_key: str = Field(default="6000/minute",
                                  description="requests one API key may make")
