"""The calibrations table: a pool's measured throughput set against its datasheet."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from suanli.adapters.store.tables import Base


class CalibrationRow(Base):
    """One probe run uploaded for a pool, with the comparison made when it arrived.

    The datasheet figures are copied in: a later catalog correction must not rewrite the
    verdict an earlier calibration was given.
    """

    __tablename__ = "calibrations"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))  # who uploaded it
    accelerator: Mapped[str] = mapped_column(String(48))  # the pool's, when calibrated
    backend: Mapped[str] = mapped_column(String(32))
    device_kind: Mapped[str] = mapped_column(String(8))
    device_name: Mapped[str] = mapped_column(String(200))
    devices: Mapped[int] = mapped_column(Integer)
    measured: Mapped[dict] = mapped_column(JSON)  # figure -> total over `devices`
    datasheet: Mapped[dict] = mapped_column(JSON)  # figure -> per-device datasheet value
    ratios: Mapped[dict] = mapped_column(JSON)  # figure -> measured per device / datasheet
    best_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    verdict: Mapped[str] = mapped_column(String(120))
    over_declared: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[list] = mapped_column(JSON, default=list)
    probe_version: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(200))
    probe: Mapped[dict] = mapped_column(JSON)  # the rest of the document: sizes, environment
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_calibrations_pool_created", "pool_id", "created_at"),
    )
