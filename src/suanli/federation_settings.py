"""Federation settings (SUANLI_* environment variables or suanli.toml); see docs/federation.md."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from suanli.settings import SuanliSettings


class FederationSettings(SuanliSettings):
    """How this node takes part in the federation: its key, its parent, its loop's pace."""

    key_file: Path | None = Field(
        default=None, description="Ed25519 key (PEM); created with mode 0600 if missing. "
        "Default: suanli-<authority>.key in the working directory")
    parent: str | None = Field(default=None, description="URL of the parent platform")
    enrolment_token: str | None = Field(
        default=None, description="one-time token from the parent's operator (first start)")
    platform_level: Literal["national", "regional", "industry"] | None = Field(
        default=None, description="default: national without a parent, else regional")
    public_url: str | None = Field(
        default=None, description="where peers reach this node; default http://host:port")
    run_federation: bool = Field(default=True, description="run the federation loop here")
    federation_interval_s: float = Field(default=1.0, ge=0.05, le=60)
    catalog_heartbeat_s: float = Field(
        default=30.0, ge=0.1, le=3600, description="push the catalog at least this often")
    catalog_pull_s: float = Field(
        default=10.0, ge=0.1, le=3600,
        description="how often a sub-platform fetches the tree's catalog and registry")
    replay_window_s: int = Field(default=300, ge=5, le=3600)
    roaming_policy: Literal["local-first", "cheapest"] = "local-first"
    roaming_price_margin: float = Field(
        default=0.10, ge=0, le=10,
        description="cheapest policy: a remote pool must be this share cheaper to win")
    clearing_cutoff_hour: int = Field(default=0, ge=0, le=23,
                                      description="business days end at this hour, CST")
    clearing_grace_s: int = Field(default=3600, ge=0, le=7 * 86400,
                                  description="the house clears a day this long after cut-off")
    clearing_auto: bool = Field(default=True,
                                description="the national platform clears each day by itself")
    peer_timeout_s: float = Field(default=5.0, ge=0.1, le=120)
    peer_retries: int = Field(default=3, ge=1, le=10,
                              description="attempts per message within one loop pass")

    def level(self) -> str:
        return self.platform_level or ("regional" if self.parent else "national")
