"""Clearing through the national house: netting, signed statements, the ledger afterwards, a
partition that heals, and bilateral reconciliation."""

from __future__ import annotations

from sqlalchemy import select, update

from suanli.adapters.store.federation_tables import RoamingRecordRow
from suanli.domain import federation as fed
from tests.federation.helpers import HandAgent, account, roaming_setup, submit

TODAY = "2026-11-02"  # the test clock's business day in Asia/Shanghai


def _roam(net, home: str, host: str, key: str, *, wall_s: float, price: int,  # type: ignore[no-untyped-def]
          pools: dict | None = None) -> int:
    """One job from `home` run at `host` (on the host's pool in `pools`, made if missing);
    returns what the host charged for it."""
    pools = {} if pools is None else pools
    setup = roaming_setup(net, home=home, host=host, price=price, reuse=pools.get(host))
    pools[host] = setup
    submit(net[home], setup.consumer, key, pool_id=setup.pool)  # pinned: never local
    net.tick(home)
    HandAgent(net[host], setup.provider, [setup.pool]).run(wall_s=wall_s)
    net.tick(host)
    with net[home].db.unit_of_work() as session:
        rows = session.scalars(select(RoamingRecordRow).where(
            RoamingRecordRow.home_job_id.like(f"{home}.J%"))).all()
    return max(rows, key=lambda r: r.created_at).amount_fen


def _cycle(net, through: str = TODAY) -> dict:  # type: ignore[no-untyped-def]
    cn = net["CN"]
    response = cn.client.post("/v1/federation/clearing/cycles", headers=cn.operator,
                              json={"through_date": through})
    assert response.status_code == 201, response.text
    return response.json()


def test_clearing_nets_both_ways_and_settles_with_signed_statements(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc, cn = net["CN.GD"], net["CN.SC"], net["CN"]
    pools: dict = {}
    gd_at_sc = _roam(net, "CN.GD", "CN.SC", "gd-1", wall_s=3600, price=300, pools=pools)
    sc_at_gd = _roam(net, "CN.SC", "CN.GD", "sc-1", wall_s=1800, price=200, pools=pools)
    cn_at_gd = _roam(net, "CN", "CN.GD", "cn-1", wall_s=900, price=200, pools=pools)
    assert (gd_at_sc, sc_at_gd, cn_at_gd) == (300, 100, 50)
    summary = _cycle(net)
    assert summary["records_cleared"] == 3 and summary["missing"] == 0
    assert summary["gross_fen"] == 450
    assert summary["net_positions"] == {"CN": -50, "CN.GD": -300 + 100 + 50, "CN.SC": 200}
    assert sum(summary["net_positions"].values()) == 0
    assert summary["bilateral"] == {"CN.GD|CN.SC": 200, "CN|CN.GD": 50}
    statements = cn.client.get("/v1/federation/clearing/statements", headers=cn.operator,
                               params={"cycle_id": summary["cycle_id"]}).json()["items"]
    assert {s["platform"]: s["state"] for s in statements} == {
        "CN": "accepted", "CN.GD": "delivered", "CN.SC": "delivered"}
    for item in statements:  # each statement verifies with the house's key
        assert fed.verify_document(cn.runtime.me.public_raw, item["key_id"], item["statement"],
                                   item["signature"])
    received = gd.client.get("/v1/federation/clearing/statements",
                             headers=gd.operator).json()["items"]
    assert [(s["role"], s["state"], s["net_fen"]) for s in received] == [
        ("received", "accepted", -150)]
    lines = {line["platform"]: line for line in received[0]["statement"]["counterparties"]}
    assert lines["CN.SC"]["payable_fen"] == 300 and lines["CN.SC"]["receivable_fen"] == 100
    assert lines["CN"]["receivable_fen"] == 50
    # The cleared positions moved onto the house: peers at zero, the house holds the net.
    for node, peers, net_fen in ((gd, ("CN.SC", "CN"), -150), (sc, ("CN.GD",), 200),
                                 (cn, ("CN.GD",), -50)):
        for peer in peers:
            assert account(node, f"peer:{peer}")["balance_fen"] == 0, (node.authority, peer)
        assert account(node, "clearing:CN")["balance_fen"] == -net_fen
    with gd.db.unit_of_work() as session:
        assert all(r.settled_at is not None for r in session.scalars(select(RoamingRecordRow)))
    again = _cycle(net)
    assert again["records_cleared"] == 0 and again["net_positions"] == {}


def test_a_partition_heals_and_clears_with_nothing_lost_or_counted_twice(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net, price=300)
    submit(gd, setup.consumer, "split-brain")
    net.tick("CN.GD")
    HandAgent(sc, setup.provider, [setup.pool]).run(wall_s=3600)
    net.router.down.add("gd.test")  # CN.GD cut off: the record cannot go home
    net.tick("CN.SC")
    first = _cycle(net)
    assert first["unreachable"] == ["CN.GD"] and first["records_cleared"] == 0
    assert first["missing"] == 1
    sc_statement = sc.client.get("/v1/federation/clearing/statements",
                                 headers=sc.operator).json()["items"][0]["statement"]
    assert sc_statement["records"] == 0
    assert sc_statement["excluded"][0]["reason"] == "missing at home platform CN.GD"
    with sc.db.unit_of_work() as session:
        [held] = session.scalars(select(RoamingRecordRow)).all()
        assert held.cycle_id is None and held.settled_at is None  # released, not lost
    net.router.down.clear()
    net.tick("CN.SC", times=40)  # the record is delivered when CN.GD is back
    report = gd.client.post("/v1/federation/reconcile", headers=gd.operator,
                            json={"peer": "CN.SC"}).json()
    assert report["here"] == report["there"] == report["matched"] == 1
    assert not (report["missing_here"] or report["missing_there"] or report["mismatched"])
    second = _cycle(net)
    assert second["records_cleared"] == 1 and second["net_positions"] == {"CN.GD": -300,
                                                                         "CN.SC": 300}
    third = _cycle(net)
    assert third["records_cleared"] == 0
    wallet = gd.client.get("/v1/wallet", headers=setup.consumer).json()["wallet"]
    assert wallet["balance_fen"] == 100_000 - 300  # charged once
    assert account(gd, "clearing:CN")["balance_fen"] == 300
    assert account(sc, "clearing:CN")["balance_fen"] == -300
    assert account(sc, "peer:CN.GD")["balance_fen"] == 0


def test_reconcile_finds_missing_and_mismatched_records_and_repairs_the_missing(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net, price=300)
    submit(gd, setup.consumer, "lost-record")
    net.tick("CN.GD")
    HandAgent(sc, setup.provider, [setup.pool]).run(wall_s=3600)
    net.router.down.add("gd.test")
    net.tick("CN.SC")  # delivery fails
    net.router.down.clear()
    report = gd.client.post("/v1/federation/reconcile", headers=gd.operator,
                            json={"peer": "CN.SC", "since": TODAY, "through": TODAY}).json()
    assert len(report["missing_here"]) == 1 and report["repaired"] == []
    repaired = gd.client.post("/v1/federation/reconcile", headers=gd.operator,
                              json={"peer": "CN.SC", "repair": True}).json()
    assert repaired["repaired"] == report["missing_here"]
    net.tick("CN.SC", times=40)  # the host's own retry now finds it already there
    wallet = gd.client.get("/v1/wallet", headers=setup.consumer).json()["wallet"]
    assert wallet["balance_fen"] == 100_000 - 300
    with gd.db.unit_of_work() as session:  # corrupt our copy: reconcile must see it
        session.execute(update(RoamingRecordRow).values(digest="0" * 64))
    mismatch = gd.client.post("/v1/federation/reconcile", headers=gd.operator,
                              json={"peer": "CN.SC"}).json()
    assert mismatch["mismatched"] == report["missing_here"]
    disputes = gd.client.get("/v1/federation/disputes", headers=gd.operator,
                             params={"state": "open"}).json()["items"]
    assert disputes[0]["kind"] == "mismatch" and disputes[0]["counterparty"] == "CN.SC"
    resolved = gd.client.post(f"/v1/federation/disputes/{disputes[0]['id']}/resolve",
                              headers=gd.operator, json={"resolution": "restored from backup"})
    assert resolved.json()["state"] == "resolved"
    assert gd.client.post("/v1/federation/reconcile", headers=gd.operator,
                          json={"peer": "CN.XX"}).status_code == 404


def test_only_the_national_platform_clears(net) -> None:  # type: ignore[no-untyped-def]
    gd = net["CN.GD"]
    response = gd.client.post("/v1/federation/clearing/cycles", headers=gd.operator,
                              json={"through_date": TODAY})
    assert response.status_code == 403
    _, consumer = net["CN"].tenant("consumer")
    assert net["CN"].client.post("/v1/federation/clearing/cycles", headers=consumer,
                                 json={"through_date": TODAY}).status_code == 403


def test_records_of_a_cycle_the_house_never_finished_are_cleared_in_the_next(net) -> None:  # type: ignore[no-untyped-def]
    gd, cn = net["CN.GD"], net["CN"]
    setup = roaming_setup(net, price=300)
    submit(gd, setup.consumer, "orphaned", pool_id=setup.pool)
    net.tick("CN.GD")
    HandAgent(net["CN.SC"], setup.provider, [setup.pool]).run(wall_s=3600)
    net.tick("CN.SC")
    # The house collects for a cycle, then dies before it issues anything.
    for platform in ("CN.GD", "CN.SC"):
        reply = cn.runtime.call(platform, "POST", "/federation/v1/clearing/collect",
                                {"cycle_id": f"{TODAY}.01", "through_date": TODAY})
        assert len(reply["columns"]["record_id"]) == 1
    with gd.db.unit_of_work() as session:
        assert session.scalars(select(RoamingRecordRow)).one().cycle_id == f"{TODAY}.01"
    summary = _cycle(net, "2026-11-03")  # another cycle id: the orphaned lock must not hold
    assert summary["cycle_id"] == "2026-11-03.01"
    assert summary["records_cleared"] == 1 and summary["gross_fen"] == 300
    assert _cycle(net, "2026-11-03")["records_cleared"] == 0
