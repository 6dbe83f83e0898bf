"""Cross-platform jobs in one process: placement picks another platform, the forward is
answered once, the host runs it, status and a signed roaming record come home, the tenant is
charged at home and the provider paid at the host."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from suanli.adapters.store.federation_tables import GuestJobRow, RoamingRecordRow
from suanli.adapters.store.job_tables import JobRow
from tests.federation.helpers import HandAgent, account, job, roaming_setup, submit


def _host_jobs(node) -> int:  # type: ignore[no-untyped-def]
    with node.db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(JobRow)) or 0


def test_a_job_no_local_pool_fits_runs_at_the_host_and_is_charged_at_home(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net, price=360)
    submitted = submit(gd, setup.consumer, "train-1")
    assert submitted["state"] == "placed" and submitted["pool_id"] is None
    assert submitted["placement"]["platform"] == "CN.SC"
    assert submitted["placement"]["policy"] == "roaming: no local pool fits"
    net.tick("CN.GD")  # forward
    placed = job(gd, setup.consumer, submitted["id"])
    assert placed["pool_id"] == setup.pool and placed["state"] == "placed"
    HandAgent(sc, setup.provider, [setup.pool]).run(wall_s=1800)
    net.tick("CN.SC")  # status home, roaming record issued and delivered
    done = job(gd, setup.consumer, submitted["id"])
    assert done["state"] == "succeeded" and done["exit_code"] == 0
    assert [e["to_state"] for e in done["events"]] == ["pending", "placed", "dispatched",
                                                       "running", "succeeded"]
    assert gd.client.get(f"/v1/jobs/{done['id']}/logs",
                         headers=setup.consumer).text == "hello from the host\n"
    roamed = gd.client.get(f"/v1/federation/jobs/{done['id']}", headers=setup.consumer).json()
    [record] = roamed["records"]
    assert record["host"] == "CN.SC" and record["state"] == "charged"
    amount = record["amount_fen"]
    assert amount == 180  # half an hour of one device at 360 fen per device-hour
    assert record["charge"]["wallet_fen"] == amount
    wallet = gd.client.get("/v1/wallet", headers=setup.consumer).json()["wallet"]
    assert wallet["balance_fen"] == 100_000 - amount
    # Home owes the host; the host owes its provider (less its fee); the books agree.
    assert account(gd, "peer:CN.SC")["balance_fen"] == amount
    assert account(sc, "peer:CN.GD")["balance_fen"] == -amount
    receivable = account(sc, f"receivable:{setup.provider_id}")["balance_fen"]
    fees = account(sc, "platform:fees")["balance_fen"]
    assert receivable + fees == amount and fees == amount * 5 // 100


def test_a_job_pinned_to_a_remote_pool_goes_to_its_platform(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net)
    _, local_provider = gd.tenant("provider", "gd provider")
    gd.pool(local_provider, price=10)  # cheaper and local, but the job pins the SC pool
    net.tick("CN.GD")
    submitted = submit(gd, setup.consumer, "pinned", pool_id=setup.pool)
    assert submitted["placement"]["policy"] == "roaming: the job pins a pool of another platform"
    net.tick("CN.GD")
    assert job(gd, setup.consumer, submitted["id"])["pool_id"] == setup.pool
    local = submit(gd, setup.consumer, "local")
    assert local["pool_id"].startswith("CN.GD.") and "platform" not in local["placement"]
    assert _host_jobs(sc) == 1


def test_a_forward_whose_answer_is_lost_is_retried_and_dispatched_once(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net)
    submitted = submit(gd, setup.consumer, "lossy")
    net.router.drop_responses["sc.test"] = 3  # the host acts, its answers are lost
    net.tick("CN.GD")
    pending = job(gd, setup.consumer, submitted["id"])
    assert pending["state"] == "placed" and "unreachable" in pending["message"]
    net.tick("CN.GD", times=8)  # backoff passes; the next forward gets the stored answer
    placed = job(gd, setup.consumer, submitted["id"])
    assert placed["pool_id"] == setup.pool
    assert _host_jobs(sc) == 1
    with sc.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(GuestJobRow)) == 1
    HandAgent(sc, setup.provider, [setup.pool]).run()
    net.tick("CN.SC")
    assert job(gd, setup.consumer, submitted["id"])["state"] == "succeeded"


def test_a_host_down_during_forwarding_keeps_the_job_until_it_answers(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net)
    net.router.down.add("sc.test")
    submitted = submit(gd, setup.consumer, "patient")
    net.tick("CN.GD", times=5)
    waiting = job(gd, setup.consumer, submitted["id"])
    assert waiting["state"] == "placed" and "unreachable" in waiting["message"]
    assert _host_jobs(sc) == 0
    net.router.down.clear()
    net.tick("CN.GD", times=40)
    assert job(gd, setup.consumer, submitted["id"])["pool_id"] == setup.pool
    assert _host_jobs(sc) == 1


def test_a_forward_nobody_answers_is_withdrawn_before_the_job_goes_elsewhere(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net)
    net.router.down.add("sc.test")
    submitted = submit(gd, setup.consumer, "abandoned")
    net.tick("CN.GD", times=130)  # past give-up (2 x claim timeout): now withdrawing
    roamed = gd.client.get(f"/v1/federation/jobs/{submitted['id']}",
                           headers=setup.consumer).json()
    assert roamed["attempts"][0]["state"] == "withdrawing"
    assert job(gd, setup.consumer, submitted["id"])["state"] == "placed"  # not yet free
    net.router.down.clear()
    net.tick("CN.GD", times=40)
    roamed = gd.client.get(f"/v1/federation/jobs/{submitted['id']}",
                           headers=setup.consumer).json()
    assert roamed["attempts"][0]["state"] == "withdrawn"
    # The host tombstoned the attempt: a late copy of the forward is refused.
    with sc.db.unit_of_work() as session:
        [tomb] = session.scalars(select(GuestJobRow)).all()
        assert tomb.outcome == "withdrawn" and tomb.job_id is None
    assert _host_jobs(sc) == 0


def test_a_host_without_room_rejects_and_the_job_returns_home(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net, devices=1)
    first = submit(gd, setup.consumer, "takes-the-device")
    second = submit(gd, setup.consumer, "too-late")  # the summary still said 1 free
    assert second["placement"]["platform"] == "CN.SC"
    net.tick("CN.GD")
    assert job(gd, setup.consumer, first["id"])["pool_id"] == setup.pool
    back = job(gd, setup.consumer, second["id"])
    assert back["state"] == "pending" and "rejected" in back["message"]
    roamed = gd.client.get(f"/v1/federation/jobs/{second['id']}", headers=setup.consumer).json()
    assert roamed["attempts"][0]["state"] == "rejected"
    assert _host_jobs(sc) == 1


def test_cancelling_at_home_cancels_at_the_host(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net)
    submitted = submit(gd, setup.consumer, "cancel-me")
    net.tick("CN.GD")
    agent = HandAgent(sc, setup.provider, [setup.pool])
    [assignment] = agent.claim()
    agent.report(assignment, "running")
    net.tick("CN.SC")
    assert job(gd, setup.consumer, submitted["id"])["state"] == "running"
    cancelled = gd.client.post(f"/v1/jobs/{submitted['id']}/cancel", headers=setup.consumer)
    assert cancelled.json()["state"] == "cancelled"
    net.tick("CN.GD")
    with sc.db.unit_of_work() as session:
        host_job = session.scalars(select(JobRow)).one()
        assert host_job.state == "cancelled"
    net.clock.advance(600)
    agent.report(assignment, "cancelled", usage={"wall_s": 600})
    net.tick("CN.SC")
    roamed = gd.client.get(f"/v1/federation/jobs/{submitted['id']}",
                           headers=setup.consumer).json()
    assert [r["amount_fen"] for r in roamed["records"]] == [60]  # what ran is still paid


def test_a_record_delivered_twice_is_charged_once_and_a_changed_one_is_disputed(net) -> None:  # type: ignore[no-untyped-def]
    from suanli.services.roaming import records as roaming_records

    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net)
    submit(gd, setup.consumer, "dup")
    net.tick("CN.GD")
    HandAgent(sc, setup.provider, [setup.pool]).run()
    net.tick("CN.SC")
    with sc.db.unit_of_work() as session:
        row = session.scalars(select(RoamingRecordRow)).one()
        payload = roaming_records.signed_payload(row)
    again = sc.runtime.call("CN.GD", "POST", "/federation/v1/roaming-records", payload)
    assert again["created"] is False
    wallet = gd.client.get("/v1/wallet", headers=setup.consumer).json()["wallet"]
    assert wallet["balance_fen"] == 100_000 - row.amount_fen
    from suanli.domain import federation as fed

    inflated = {**payload["record"], "amount_fen": row.amount_fen * 10}
    forged = {**payload, "record": inflated}  # signature no longer matches
    with pytest.raises(Exception) as refused:
        sc.runtime.call("CN.GD", "POST", "/federation/v1/roaming-records", forged)
    assert getattr(refused.value, "status", None) == 401
    resigned = {"record": inflated, "key_id": sc.runtime.me.key_id,
                "signature": fed.sign_document(sc.runtime.me.private_key, sc.runtime.me.key_id,
                                               inflated)}
    with pytest.raises(Exception) as conflict:
        sc.runtime.call("CN.GD", "POST", "/federation/v1/roaming-records", resigned)
    assert getattr(conflict.value, "status", None) == 409
    disputes = gd.client.get("/v1/federation/disputes", headers=gd.operator).json()["items"]
    assert [d["kind"] for d in disputes] == ["mismatch"] and disputes[0]["record_id"] == row.id
    wallet = gd.client.get("/v1/wallet", headers=setup.consumer).json()["wallet"]
    assert wallet["balance_fen"] == 100_000 - row.amount_fen


def test_roaming_draws_the_home_entitlement_before_the_wallet(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net)
    priced = gd.client.put("/v1/federation/entitlement-price", headers=gd.operator,
                           json={"fen_per_unit_hour": "10000"})
    assert priced.status_code == 200, priced.text
    bought = gd.client.post("/v1/federation/entitlements",
                            headers={**gd.operator, "Idempotency-Key": "ent-1"},
                            json={"tenant_id": setup.consumer_id, "units": "0.01"})
    assert bought.status_code == 201, bought.text
    assert bought.json()["price_fen"] == 100  # 0.01 unit-hours at 10,000 fen
    wallet = gd.client.get("/v1/wallet", headers=setup.consumer).json()["wallet"]
    assert wallet["balance_fen"] == 100_000 - 100
    submit(gd, setup.consumer, "entitled")
    net.tick("CN.GD")
    HandAgent(sc, setup.provider, [setup.pool]).run(wall_s=1800)
    net.tick("CN.SC")
    records = gd.client.get("/v1/federation/roaming-records", headers=setup.consumer).json()
    [record] = records["items"]
    charge = record["charge"]
    assert charge["entitlement_units_micro"] == 10_000  # all 0.01 unit-hours drawn first
    assert charge["entitlement_fen"] == 100
    assert charge["covered_fen"] + charge["wallet_fen"] == record["amount_fen"]
    assert charge["wallet_fen"] > 0 and charge["unpaid_fen"] == 0
    left = gd.client.get("/v1/federation/entitlements", headers=setup.consumer).json()
    assert left["items"][0]["remaining_units"] == "0"
    assert account(gd, f"entitlement:{setup.consumer_id}")["balance_fen"] == 0
    assert account(gd, "peer:CN.SC")["balance_fen"] == record["amount_fen"]
    assert account(gd, "platform:roaming")["balance_fen"] == charge["margin_fen"]


def test_a_guest_job_never_roams_on(net) -> None:  # type: ignore[no-untyped-def]
    gd = net["CN.GD"]
    setup = roaming_setup(net, devices=1)
    _, gd_provider = gd.tenant("provider", "gd provider")
    gd.pool(gd_provider, price=10, devices=1)
    net.tick("CN.GD")
    net.tick("CN.SC")  # SC now sees a GD pool in the catalog
    submit(gd, setup.consumer, "first", pool_id=setup.pool)
    net.tick("CN.GD")
    second = submit(gd, setup.consumer, "second", pool_id=setup.pool)
    net.tick("CN.GD")  # SC has no room: it must reject, not pass the job on to GD
    assert job(gd, setup.consumer, second["id"])["state"] == "pending"
    with gd.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(GuestJobRow)) == 0


def test_a_home_voucher_pays_its_share_of_a_roaming_charge_where_it_is_eligible(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net, price=400)
    programme = gd.client.post("/v1/programmes", headers={**gd.operator,
                                                          "Idempotency-Key": "prog-west"},
                               json={"id": "west-compute", "issuer": "Guangdong DRC",
                                     "budget_fen": 1_000_000, "coverage": "0.5",
                                     "cap_fen_per_tenant": 100_000,
                                     "eligible_tenant_classes": ["start-up"],
                                     "valid_from": "2026-01-01T00:00:00+08:00",
                                     "valid_until": "2027-01-01T00:00:00+08:00",
                                     "eligible_hubs": ["chengyu"]})
    assert programme.status_code == 201, programme.text
    granted = gd.client.post("/v1/programmes/west-compute/grants",
                             headers={**gd.operator, "Idempotency-Key": "grant-1"},
                             json={"tenant_id": setup.consumer_id, "granted_fen": 50})
    assert granted.status_code == 201, granted.text
    submit(gd, setup.consumer, "subsidised")
    net.tick("CN.GD")
    HandAgent(sc, setup.provider, [setup.pool]).run(wall_s=3600)
    net.tick("CN.SC")
    [record] = gd.client.get("/v1/federation/roaming-records",
                             headers=setup.consumer).json()["items"]
    charge = record["charge"]
    assert record["amount_fen"] == 400
    assert charge["voucher_fen"] == 50  # half of 400, capped by the 50 fen voucher
    assert charge["wallet_fen"] == 350 and charge["vouchers"] == {"west-compute": 50}
    assert account(gd, "peer:CN.SC")["balance_fen"] == 400
    assert account(gd, "programme:west-compute")["debits_posted_fen"] == 50
    vouchers = gd.client.get("/v1/vouchers", headers=setup.consumer).json()
    assert vouchers[0]["remaining_fen"] == 0
