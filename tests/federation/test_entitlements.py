"""Entitlements (issue 12, finding 2): a consumer used to grant itself 10^9 compute-unit
hours for 0 fen (201), roam a job for free, and leave its home platform paying the host.
Now only operators grant entitlements, at the platform's price, from the grantee's wallet or
a funded voucher programme: nothing is minted."""

from __future__ import annotations

from tests.federation.helpers import HandAgent, account, roaming_setup, submit

FREE_LUNCH = {"units": "1000000000", "price_fen": 0}


def _price(node, fen: str = "1000") -> None:  # type: ignore[no-untyped-def]
    response = node.client.put("/v1/federation/entitlement-price", headers=node.operator,
                               json={"fen_per_unit_hour": fen})
    assert response.status_code == 200, response.text


def _grant(node, headers, key: str, **body):  # type: ignore[no-untyped-def]
    return node.client.post("/v1/federation/entitlements",
                            headers={**headers, "Idempotency-Key": key}, json=body)


def test_a_consumer_cannot_grant_itself_free_roaming_compute(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    setup = roaming_setup(net)
    _price(gd)
    named = _grant(gd, setup.consumer, "free-1", tenant_id=setup.consumer_id, **FREE_LUNCH)
    assert named.status_code == 422, named.text  # nobody names the price
    assert named.json()["errors"][0]["field"] == "price_fen"
    mine = _grant(gd, setup.consumer, "free-2", tenant_id=setup.consumer_id,
                  units="1000000000")
    assert mine.status_code == 403, mine.text
    assert gd.client.get("/v1/federation/entitlements",
                         headers=setup.consumer).json()["items"] == []
    # The roamed job is paid from the wallet, in full.
    submit(gd, setup.consumer, "roam")
    net.tick("CN.GD")
    HandAgent(sc, setup.provider, [setup.pool]).run(wall_s=1800)
    net.tick("CN.SC")
    [record] = gd.client.get("/v1/federation/roaming-records",
                             headers=setup.consumer).json()["items"]
    assert record["amount_fen"] == 180 and record["charge"]["wallet_fen"] == 180
    assert account(gd, "platform:roaming")["balance_fen"] == 0  # the platform fronts nothing


def test_an_operator_grants_at_the_platforms_price_from_the_wallet(net) -> None:  # type: ignore[no-untyped-def]
    gd = net["CN.GD"]
    setup = roaming_setup(net, deposit=5_000)
    unpriced = _grant(gd, gd.operator, "ent-0", tenant_id=setup.consumer_id, units="1")
    assert unpriced.status_code == 409 and "entitlement-price" in unpriced.json()["detail"]
    _price(gd, "1234.5")
    granted = _grant(gd, gd.operator, "ent-1", tenant_id=setup.consumer_id, units="2")
    assert granted.status_code == 201, granted.text
    assert granted.json()["price_fen"] == 2469  # 2 x 1234.5
    assert gd.client.get("/v1/wallet", headers=setup.consumer).json()["wallet"][
        "balance_fen"] == 5_000 - 2469
    again = _grant(gd, gd.operator, "ent-1", tenant_id=setup.consumer_id, units="2")
    assert again.status_code == 200 and again.json()["id"] == granted.json()["id"]
    other = _grant(gd, gd.operator, "ent-1", tenant_id=setup.consumer_id, units="3")
    assert other.status_code == 409
    too_much = _grant(gd, gd.operator, "ent-2", tenant_id=setup.consumer_id, units="3")
    assert too_much.status_code == 402  # the wallet has 2531 fen left, 3 unit-hours cost 3704
    assert account(gd, f"entitlement:{setup.consumer_id}")["balance_fen"] == 2469
    assert gd.client.get("/v1/ledger/check", headers=gd.operator).json()["ok"] is True


def test_an_entitlement_paid_by_a_programme_never_takes_budget_promised_to_vouchers(
        net) -> None:  # type: ignore[no-untyped-def]
    gd = net["CN.GD"]
    setup = roaming_setup(net, deposit=0)
    _price(gd, "100")
    created = gd.client.post("/v1/programmes", headers={**gd.operator,
                                                        "Idempotency-Key": "prog"},
                             json={"id": "roam-2026", "issuer": "GD DRC", "budget_fen": 1000,
                                   "coverage": "1", "cap_fen_per_tenant": 1000,
                                   "eligible_tenant_classes": ["start-up"],
                                   "valid_from": "2026-01-01T00:00:00+08:00",
                                   "valid_until": "2027-01-01T00:00:00+08:00"})
    assert created.status_code == 201, created.text
    voucher = gd.client.post("/v1/programmes/roam-2026/grants",
                             headers={**gd.operator, "Idempotency-Key": "v1"},
                             json={"tenant_id": setup.consumer_id, "granted_fen": 600})
    assert voucher.status_code == 201, voucher.text
    over = _grant(gd, gd.operator, "p-1", tenant_id=setup.consumer_id, units="5",
                  pay_from="programme", programme_id="roam-2026")
    assert over.status_code == 409 and "400 fen" in over.json()["detail"]
    fits = _grant(gd, gd.operator, "p-2", tenant_id=setup.consumer_id, units="4",
                  pay_from="programme", programme_id="roam-2026")
    assert fits.status_code == 201 and fits.json()["price_fen"] == 400
    assert account(gd, "programme:roam-2026")["balance_fen"] == 600
    assert account(gd, f"wallet:{setup.consumer_id}")["balance_fen"] == 0
