"""Lease and hold states are enums whose values are what the database rows already hold."""

from __future__ import annotations

from suanli.domain.accounts import HoldState
from suanli.domain.jobs import LeaseState


def test_lease_and_hold_states_keep_the_values_stored_rows_carry() -> None:
    # Rows written before the enums existed hold these strings; a renamed value would strand them.
    assert [s.value for s in LeaseState] == ["active", "released", "expired"]
    assert [s.value for s in HoldState] == ["open", "posted", "voided", "expired", "free"]
    assert LeaseState.ACTIVE == "active" and f"{HoldState.OPEN}" == "open"
