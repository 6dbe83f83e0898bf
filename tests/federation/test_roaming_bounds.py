"""Roaming records are bounded by the forwarded attempt (issue 12, finding 7): a host used to
sign a second record for an attempt with any amount, or one for an attempt that was
withdrawn, and the home platform paid it. Now a record is paid only for an attempt the host
accepted, and an attempt's records together never exceed devices x time limit x the agreed
price (the bound the host declared when it accepted, within the job's own price ceiling);
anything else is refused (409) and a dispute is opened."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from suanli.adapters.store.federation_tables import (
    GuestJobRow,
    RoamingJobRow,
    RoamingRecordRow,
)
from suanli.bootstrap import parse_authority
from suanli.domain import federation as fed
from suanli.domain.ids import ComputeId, IdKind
from suanli.domain.roaming import attempt_bound_fen
from suanli.services.roaming import bounds
from tests.federation.helpers import HandAgent, account, roaming_setup, submit


def _signed(host, document: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    me = host.runtime.me
    return {"record": document, "key_id": me.key_id,
            "signature": fed.sign_document(me.private_key, me.key_id, document)}


def _deliver(host, payload: dict[str, Any]) -> int:  # type: ignore[no-untyped-def]
    try:
        host.runtime.call("CN.GD", "POST", "/federation/v1/roaming-records", payload)
    except Exception as exc:  # noqa: BLE001 - the peer error carries the status
        return int(getattr(exc, "status", 0))
    return 200


def _record(host) -> RoamingRecordRow:  # type: ignore[no-untyped-def]
    with host.db.unit_of_work() as session:
        return session.scalars(select(RoamingRecordRow)).one()


def _disputes(home) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The home's open disputes; its books balance whatever it refused."""
    check = home.client.get("/v1/ledger/check", headers=home.operator).json()
    assert check["ok"] is True, check
    return home.client.get("/v1/federation/disputes", headers=home.operator).json()["items"]


def _another_id(record_id: str, serial: int) -> str:
    return str(ComputeId.parse(record_id).parent.child(IdKind.RECORD, serial))  # type: ignore[union-attr]


def test_a_second_record_for_an_attempt_beyond_its_bound_is_refused_and_disputed(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net, price=360)
    submit(gd, setup.consumer, "bounded", time_limit_s=3600)
    net.tick("CN.GD")
    HandAgent(sc, setup.provider, [setup.pool]).run(wall_s=1800)
    net.tick("CN.SC")
    first = _record(sc)
    assert first.amount_fen == 180
    with gd.db.unit_of_work() as session:
        [attempt] = session.scalars(select(RoamingJobRow)).all()
        bound = attempt.max_charge_fen
    assert bound is not None and 360 <= bound < 400  # one device-hour at 360, and rounding
    greedy = {**first.document, "record_id": _another_id(first.id, 2),
              "amount_fen": 1_000_000}
    assert _deliver(sc, _signed(sc, greedy)) == 409
    [dispute] = _disputes(gd)
    assert dispute["kind"] == "bound" and dispute["record_id"] == greedy["record_id"]
    assert "1000000 fen" in dispute["detail"] and f"bound of {bound} fen" in dispute["detail"]
    # What is left of the bound is still payable; a fen more is not.
    fits = {**first.document, "record_id": _another_id(first.id, 3),
            "amount_fen": bound - 180}
    assert _deliver(sc, _signed(sc, fits)) == 200
    one_more = {**first.document, "record_id": _another_id(first.id, 4), "amount_fen": 1}
    assert _deliver(sc, _signed(sc, one_more)) == 409
    wallet = gd.client.get("/v1/wallet", headers=setup.consumer).json()["wallet"]
    assert wallet["balance_fen"] == 100_000 - bound
    assert account(gd, "peer:CN.SC")["balance_fen"] == bound


def test_a_record_for_a_withdrawn_attempt_is_refused_and_disputed(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net)
    net.router.down.add("sc.test")
    submitted = submit(gd, setup.consumer, "withdrawn")
    net.tick("CN.GD", times=130)  # nobody answered: withdrawing
    net.router.down.clear()
    net.tick("CN.GD", times=40)
    roamed = gd.client.get(f"/v1/federation/jobs/{submitted['id']}",
                           headers=setup.consumer).json()
    assert roamed["attempts"][0]["state"] == "withdrawn"
    host_job = parse_authority("CN.SC").child(IdKind.JOB, 99)
    record_id = str(host_job.child(IdKind.LEASE, 1).child(IdKind.RECORD, 1))
    forged = {"v": 1, "record_id": record_id, "home": "CN.GD", "host": "CN.SC",
              "home_job_id": submitted["id"], "attempt": 1, "host_job_id": str(host_job),
              "lease_id": str(host_job.child(IdKind.LEASE, 1)),
              "tenant_id": setup.consumer_id, "pool_id": setup.pool, "provider_id": "x",
              "province": "CN-SC", "hub": "chengyu", "accelerator": "intel-xeon-8480",
              "devices": 1, "started_at": "2026-11-02T08:00:00+00:00",
              "ended_at": "2026-11-02T09:00:00+00:00", "wall_ms": 3_600_000,
              "device_ms": 3_600_000, "energy_wh": 0, "units_micro": 1_000_000,
              "amount_fen": 360, "currency": "CNY", "tariff_id": "pool-price",
              "business_date": "2026-11-02", "issued_at": "2026-11-02T09:00:00+00:00"}
    assert _deliver(sc, _signed(sc, forged)) == 409
    [dispute] = _disputes(gd)
    assert dispute["kind"] == "bound" and "did not accept" in dispute["detail"]
    assert "withdrawn" in dispute["detail"]
    wallet = gd.client.get("/v1/wallet", headers=setup.consumer).json()["wallet"]
    assert wallet["balance_fen"] == 100_000
    with gd.db.unit_of_work() as session:
        assert session.scalars(select(RoamingRecordRow)).all() == []


def test_the_home_takes_the_bound_the_host_declared_and_pays_an_honest_record(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net, price=360)
    submit(gd, setup.consumer, "honest", time_limit_s=600)
    net.tick("CN.GD")
    HandAgent(sc, setup.provider, [setup.pool]).run(wall_s=600)
    net.tick("CN.SC")
    with sc.db.unit_of_work() as session:
        [guest] = session.scalars(select(GuestJobRow)).all()
        declared = guest.max_charge_fen
    with gd.db.unit_of_work() as session:
        [attempt] = session.scalars(select(RoamingJobRow)).all()
        assert attempt.max_charge_fen == declared
    assert declared is not None and 60 <= declared <= 70  # 10 minutes at 360 fen an hour
    [home] = gd.client.get("/v1/federation/roaming-records",
                           headers=setup.consumer).json()["items"]
    assert home["amount_fen"] == 60 and home["state"] == "charged"
    assert _disputes(gd) == []


@pytest.mark.parametrize("declared,devices,limit,ceiling,expected", [
    (5000, 1, 3600, None, 5000), (5000, 2, 3600, 1000, 2000), (100, 2, 3600, 1000, 100),
    (5000, 3, 1, 1, 1)])
def test_the_attempt_bound_is_the_declared_one_within_the_jobs_ceiling(
        declared: int, devices: int, limit: int, ceiling: int | None, expected: int) -> None:
    assert attempt_bound_fen(declared, devices, limit, ceiling) == expected


def test_records_module_names_the_accepted_states() -> None:
    assert set(bounds.ACCEPTED_STATES) == {"accepted", "finished", "withdrawing"}
