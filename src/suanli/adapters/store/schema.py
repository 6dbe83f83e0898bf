"""Every table module, imported once so that Base.metadata knows the whole schema."""

from suanli.adapters.store import (
    audit_tables,  # issue 12: the append-only audit log
    billing_tables,
    calibration_tables,
    federation_tables,  # issue 6: federation and clearing
    job_tables,
    tables,
)
from suanli.adapters.store.tables import Base

__all__ = ["Base", "billing_tables", "calibration_tables", "job_tables", "tables"]
__all__ += ["federation_tables"]
from suanli.adapters.store import market_tables  # noqa: E402,F401  issue 14: the exchange

__all__ += ["audit_tables"]
