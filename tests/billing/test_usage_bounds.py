"""Usage records keep to their lease (issue 12, finding 6): a provider used to post record
after overlapping record on a released lease and charge a finished job again and again. Now a
record lies inside its lease and the job's time limit, overlaps no other record of the lease,
and a lease that ended takes only its final record, within a grace; otherwise 409 or 422
naming the field. An agent's report and a posted record are built in one place by the same
rules."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.conftest import START

PRICE = 900  # fen a device-hour, 2 devices: 30 fen a minute


def _lease(world, start_up, **spec) -> dict:  # type: ignore[no-untyped-def]
    world.deposit(start_up, 100_000, "funds")
    world.submit(start_up, "metered", **spec)
    [assignment] = world.claim()
    return assignment


def _post(world, lease_id: str, record_id: str, start: datetime, minutes: float):  # type: ignore[no-untyped-def]
    return world.client.post("/v1/usage-records", headers=world.provider.headers, json={
        "id": record_id, "lease_id": lease_id, "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat()})


def _paid(world, start_up) -> int:  # type: ignore[no-untyped-def]
    """What the tenant paid so far; the books always balance when asked."""
    check = world.client.get("/v1/ledger/check", headers=world.operator.headers).json()
    assert check["ok"] is True, check
    return 100_000 - world.wallet(start_up)["wallet"]["balance_fen"]


def test_a_finished_job_is_not_charged_again_by_posted_records(world, start_up, clock) -> None:  # type: ignore[no-untyped-def]
    lease = _lease(world, start_up)
    clock.advance(1800)
    done = world.report(lease, state="succeeded", exit_code=0, usage={"wall_s": 1800.0})
    assert done.status_code == 200, done.text
    assert _paid(world, start_up) == 900  # 2 devices x 30 minutes
    for n, (start, minutes) in enumerate([(START, 30), (START, 5), (START + timedelta(
            minutes=10), 5)]):
        again = _post(world, lease["lease_id"], f"replay-{n}", start, minutes)
        assert again.status_code == 409, again.text
        assert again.json()["errors"][0]["field"] == "lease_id"
        assert "final record" in again.json()["detail"]
    assert _paid(world, start_up) == 900
    usage = world.client.get(f"/v1/jobs/{lease['job_id']}/usage",
                             headers=start_up.headers).json()
    assert len(usage) == 1


def test_records_lie_inside_the_lease_and_its_time_limit_and_never_overlap(
        world, start_up, clock) -> None:  # type: ignore[no-untyped-def]
    lease = _lease(world, start_up, time_limit_s=1800)
    clock.advance(3600)
    before = _post(world, lease["lease_id"], "m-0", START - timedelta(minutes=5), 10)
    assert before.status_code == 422 and before.json()["errors"][0]["field"] == "start"
    ahead = _post(world, lease["lease_id"], "m-0", START + timedelta(minutes=58), 10)
    assert ahead.status_code == 422 and ahead.json()["errors"][0]["field"] == "end"
    assert _post(world, lease["lease_id"], "m-1", START, 10).status_code == 201
    overlap = _post(world, lease["lease_id"], "m-2", START + timedelta(minutes=5), 10)
    assert overlap.status_code == 409 and overlap.json()["errors"][0]["field"] == "start"
    assert "m-1" in overlap.json()["detail"]
    assert _post(world, lease["lease_id"], "m-2", START + timedelta(minutes=10), 20
                 ).status_code == 201
    beyond = _post(world, lease["lease_id"], "m-3", START + timedelta(minutes=30), 1)
    assert beyond.status_code == 422 and beyond.json()["errors"][0]["field"] == "end"
    assert "time limit" in beyond.json()["detail"]
    assert _paid(world, start_up) == 900  # 30 minutes, the job's whole time limit, once


def test_an_ended_lease_takes_one_final_record_within_the_grace(world, start_up, clock,  # type: ignore[no-untyped-def]
                                                                tick) -> None:
    lease = _lease(world, start_up)
    clock.advance(600)
    assert _post(world, lease["lease_id"], "m-1", START, 5).status_code == 201
    clock.advance(60)  # the agent fell silent: the lease expires (failover), no final report
    tick()
    final = _post(world, lease["lease_id"], "m-final", START + timedelta(minutes=5), 5)
    assert final.status_code == 201, final.text
    second = _post(world, lease["lease_id"], "m-more", START + timedelta(minutes=10), 1)
    assert second.status_code == 409 and second.json()["errors"][0]["field"] == "lease_id"
    assert _paid(world, start_up) == 300  # 10 minutes


def test_a_final_record_after_the_grace_is_refused(world, start_up, clock, tick) -> None:  # type: ignore[no-untyped-def]
    lease = _lease(world, start_up)
    clock.advance(600)
    tick()  # the agent's heartbeat lapsed: the lease expired without a final record
    clock.advance(7 * 3600)
    late = _post(world, lease["lease_id"], "m-late", START, 5)
    assert late.status_code == 422 and late.json()["errors"][0]["field"] == "lease_id"
    assert _paid(world, start_up) == 0


def test_an_agents_report_is_fitted_around_records_already_posted(world, start_up,  # type: ignore[no-untyped-def]
                                                                  clock) -> None:
    lease = _lease(world, start_up)
    clock.advance(1200)
    assert _post(world, lease["lease_id"], "m-1", START, 10).status_code == 201
    done = world.report(lease, state="succeeded", exit_code=0, usage={"wall_s": 3000.0})
    assert done.status_code == 200, done.text
    usage = world.client.get(f"/v1/jobs/{lease['job_id']}/usage",
                             headers=start_up.headers).json()
    seconds = sorted(u["device_seconds"] / 2 for u in usage)
    assert seconds == [600.0, 600.0]  # the agent's record starts where the posted one ended
    assert _paid(world, start_up) == 600  # 20 minutes, never 10 + 50
