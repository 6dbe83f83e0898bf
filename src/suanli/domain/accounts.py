"""The platform's ledger accounts and the states of a lease's money hold: names, not I/O.

Account ids: `wallet:<tenant>`, `receivable:<provider tenant>`, `programme:<programme>`,
`platform:fees`, `external:cash`. See docs/billing.md.
"""

from __future__ import annotations

from enum import StrEnum

EXTERNAL_ACCOUNT = "external:cash"  # money paid in from outside (bank, payment provider)
FEES_ACCOUNT = "platform:fees"
HOLD_GRACE_S = 6 * 3600  # a hold outlives the job's time limit by this, for late final reports


class HoldState(StrEnum):
    """A lease's money hold (stored in lease_holds.state)."""

    OPEN = "open"  # the job may still be charged
    POSTED = "posted"  # charged: the hold paid (part of) the charge
    VOIDED = "voided"  # released to the wallet
    EXPIRED = "expired"  # its ledger timeout passed first
    FREE = "free"  # the lease needed no hold (postpaid tenant or a free tariff)


PREPAID, POSTPAID = "prepaid", "postpaid"
BILLING_MODES = (PREPAID, POSTPAID)


def wallet_account_id(tenant_id: str) -> str:
    return f"wallet:{tenant_id}"


def receivable_account_id(provider_tenant_id: str) -> str:
    return f"receivable:{provider_tenant_id}"


def fund_account_id(programme_id: str) -> str:
    return f"programme:{programme_id}"
