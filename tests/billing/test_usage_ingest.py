"""Usage records from a provider's own meters: idempotent, conflicting, late, charged once."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.conftest import START


def _running_lease(world, start_up) -> dict:  # type: ignore[no-untyped-def]
    world.deposit(start_up, 50_000, "funds")
    world.submit(start_up, "metered")
    [assignment] = world.claim()
    return assignment


def _record(lease_id: str, start: datetime, minutes: int, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {"id": "meter-0001", "lease_id": lease_id, "start": start.isoformat(),
            "end": (start + timedelta(minutes=minutes)).isoformat(), **extra}


def test_a_record_is_charged_once_and_a_retry_is_a_duplicate(world, start_up, clock) -> None:
    lease = _running_lease(world, start_up)
    clock.advance(900)
    body = _record(lease["lease_id"], START, 10)
    first = world.client.post("/v1/usage-records", json=body, headers=world.provider.headers)
    assert first.status_code == 201, first.text
    charge = first.json()["charge"]
    # 2 devices x 10 minutes at the list price of 900 fen a device-hour
    assert first.json()["outcome"] == "accepted" and charge["amount_fen"] == 300
    assert charge["collected_fen"] == 300 and charge["fee_fen"] == 15
    again = world.client.post("/v1/usage-records", json=body, headers=world.provider.headers)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert again.json()["charge"] == charge
    wallet = world.wallet(start_up)
    assert wallet["wallet"]["balance_fen"] == 50_000 - 300 and wallet["held_fen"] == 0
    other = world.client.post("/v1/usage-records", json=_record(lease["lease_id"], START, 11),
                              headers=world.provider.headers)
    assert other.status_code == 409 and other.json()["errors"][0]["field"] == "id"
    assert world.wallet(start_up)["wallet"]["balance_fen"] == 50_000 - 300


def test_only_the_pools_provider_may_report_and_bad_records_are_422(world, start_up,
                                                                    make_tenant, clock) -> None:
    lease = _running_lease(world, start_up)
    clock.advance(900)
    body = _record(lease["lease_id"], START, 10)
    stranger = make_tenant("provider", "another provider")
    hidden = world.client.post("/v1/usage-records", json=body, headers=stranger.headers)
    assert hidden.status_code == 404, hidden.text  # as if the lease did not exist
    assert world.client.post("/v1/usage-records", json=body,
                             headers=start_up.headers).status_code == 403
    cases = [
        ({**body, "start": "2026-11-02T08:00:00"}, "start"),  # no offset
        ({**body, "end": body["start"]}, "end"),
        ({**body, "device_count": 3}, "device_count"),
        (_record(lease["lease_id"], START - timedelta(hours=1), 10), "start"),
        (_record(lease["lease_id"], START, 60), "end"),  # ends in the future
        ({**body, "id": "bad id with spaces"}, "id"),
    ]
    for bad, field in cases:
        response = world.client.post("/v1/usage-records", json=bad,
                                     headers=world.provider.headers)
        assert response.status_code == 422, (field, response.text)
        assert response.json()["errors"][0]["field"] == field, response.text


def test_a_record_after_the_late_window_is_refused(world, start_up, clock) -> None:
    lease = _running_lease(world, start_up)
    # November closes at 2026-12-01 00:00 Shanghai; records are taken for 72 hours after.
    clock.advance((datetime.fromisoformat("2026-12-03T23:59:00+08:00") - START).total_seconds())
    body = _record(lease["lease_id"], START, 10)
    accepted = world.client.post("/v1/usage-records", json=body, headers=world.provider.headers)
    assert accepted.status_code == 201, accepted.text
    clock.advance(2 * 3600)
    later = _record(lease["lease_id"], START + timedelta(minutes=10), 10, id="meter-0002")
    late = world.client.post("/v1/usage-records", json=later, headers=world.provider.headers)
    assert late.status_code == 422 and late.json()["errors"][0]["field"] == "end"
    assert "period closed" in late.json()["detail"]
