"""Money end to end over HTTP: fund, grant, run a job as its agent, read the bill and payout."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from tests.billing.conftest import PROGRAMME, TARIFF

DEPOSIT_FEN = 100_000


def test_a_start_ups_job_is_held_charged_discounted_billed_and_paid_out(
        world, start_up, make_tenant, clock, tick) -> None:
    client, operator, provider = world.client, world.operator, world.provider
    put = client.put(f"/v1/pools/{world.pool_id}/tariff", json=TARIFF, headers=provider.headers)
    assert put.status_code == 200, put.text
    assert world.deposit(start_up, DEPOSIT_FEN, "bank-0001").status_code == 201
    assert world.deposit(start_up, DEPOSIT_FEN, "bank-0001").status_code == 200  # a retry
    created = client.post("/v1/programmes", json=PROGRAMME, headers=operator.headers)
    assert created.status_code == 201, created.text
    grant = client.post(f"/v1/programmes/{PROGRAMME['id']}/grants",
                        json={"tenant_id": start_up.id, "granted_fen": 20_000},
                        headers={**operator.headers, "Idempotency-Key": "g-1"})
    assert grant.status_code == 201, grant.text
    voucher_id = grant.json()["id"]

    job = world.submit(start_up, "train-1")
    assert job["state"] == "placed", job
    # The hold: 2 devices x 1 h at the highest price (peak, tier 0: 1,500 fen), plus rounding room.
    held = world.wallet(start_up)["held_fen"]
    assert 3_000 < held <= 3_010
    [assignment] = world.claim()
    assert world.report(assignment, state="running").status_code == 200
    clock.advance(1800)  # 16:00-16:30 local time: the peak band
    done = world.report(assignment, state="succeeded", exit_code=0, usage={"wall_s": 1800.0})
    assert done.status_code == 200, done.text

    bill = client.get("/v1/bills/2026-11", headers=start_up.headers).json()
    [line] = bill["lines"]
    assert line["job_id"] == job["id"] and line["pool_id"] == world.pool_id
    assert line["device_hours"] == "1.000000" and float(line["compute_unit_hours"]) > 0
    assert line["hub"] == "ningxia" and line["basis"] == "device-hour"
    items = {(item["tier"], item["band"]): item for item in line["items"]}
    # Graduated: the first 0.5 device-hour at tier 0, the rest at tier 1; all in the peak band.
    assert set(items) == {(0, "peak"), (1, "peak")}
    assert items[(0, "peak")]["unit_price_fen"] == "1500.0000"
    assert items[(0, "peak")]["amount_fen"] == 750 and items[(1, "peak")]["amount_fen"] == 600
    # The voucher pays 30 % + 10 % western extra of each line, floored.
    assert items[(0, "peak")]["discount_fen"] == 300 and items[(1, "peak")]["discount_fen"] == 240
    assert items[(0, "peak")]["vouchers"][0]["voucher_id"] == voucher_id
    assert (line["amount_fen"], line["discount_fen"], line["payable_fen"]) == (1350, 540, 810)
    assert line["collected_fen"] == 810 and line["unpaid_fen"] == 0
    assert bill["vouchers"] == [{"programme_id": PROGRAMME["id"], "voucher_id": voucher_id,
                                 "discount_fen": 540}]

    # The amounts add up to the wallet's movement ...
    wallet = world.wallet(start_up)
    assert wallet["wallet"]["balance_fen"] == DEPOSIT_FEN - 810
    assert wallet["held_fen"] == 0 and wallet["wallet"]["available_fen"] == DEPOSIT_FEN - 810
    movement = bill["wallet"]
    assert movement["credits_fen"] == DEPOSIT_FEN and movement["debits_fen"] == 810
    assert movement["closing_balance_fen"] == wallet["wallet"]["balance_fen"]
    assert bill["totals"]["payable_fen"] == movement["debits_fen"]
    # ... and to the provider's payout: tenant + voucher - 5 % platform fee.
    payout = client.get("/v1/payouts/2026-11", headers=provider.headers).json()
    [paid] = payout["lines"]
    assert (paid["tenant_paid_fen"], paid["voucher_paid_fen"], paid["fee_fen"]) == (810, 540, 67)
    assert paid["net_fen"] == 810 + 540 - 67 == payout["receivable_balance_fen"]
    programme = client.get(f"/v1/programmes/{PROGRAMME['id']}", headers=start_up.headers).json()
    assert programme["remaining_fen"] == PROGRAMME["budget_fen"] - 540
    assert programme["paid_fen"] == 540
    vouchers = client.get("/v1/vouchers", headers=start_up.headers).json()
    assert vouchers[0]["remaining_fen"] == 20_000 - 540
    check = client.get("/v1/ledger/check", headers=operator.headers).json()
    assert check["ok"], check["problems"]

    # The same bill as CSV and HTML; another consumer sees neither it nor the wallet.
    as_csv = client.get("/v1/bills/2026-11?format=csv", headers=start_up.headers)
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["band"] for r in rows[:-1]] == ["peak", "peak"] and rows[-1]["kind"] == "total"
    assert sum(int(r["payable_fen"]) for r in rows[:-1]) == 810
    as_html = client.get("/v1/bills/2026-11?format=html", headers=start_up.headers)
    assert as_html.headers["content-type"].startswith("text/html") and "8.10" in as_html.text
    stranger = make_tenant("consumer", "someone else")
    assert client.get(f"/v1/bills/2026-11?tenant_id={start_up.id}",
                      headers=stranger.headers).status_code == 403
    assert client.get(f"/v1/wallet?tenant_id={start_up.id}",
                      headers=stranger.headers).status_code == 403
    assert client.get(f"/v1/ledger/accounts/wallet:{start_up.id}",
                      headers=stranger.headers).status_code == 403
    assert client.get(f"/v1/bills/2026-11?tenant_id={start_up.id}",
                      headers=operator.headers).json()["totals"]["payable_fen"] == 810
    statement = client.get(f"/v1/ledger/accounts/wallet:{start_up.id}",
                           headers=start_up.headers).json()
    assert {t["code"] for t in statement["transfers"]} == {"deposit", "job-hold", "job-charge"}


def test_a_job_waits_for_money_and_runs_once_the_wallet_is_topped_up(world, start_up,
                                                                     tick) -> None:
    world.deposit(start_up, 500, "small")
    job = world.submit(start_up, "big")
    assert job["state"] == "pending"
    assert job["message"].startswith("insufficient funds: a hold of")
    assert world.wallet(start_up)["held_fen"] == 0
    world.deposit(start_up, 10_000, "top-up")
    tick()
    again = world.client.get(f"/v1/jobs/{job['id']}", headers=start_up.headers).json()
    assert again["state"] == "placed" and world.wallet(start_up)["held_fen"] > 0


def test_a_hold_goes_back_when_the_job_is_cancelled_or_its_lease_expires(world, start_up,
                                                                          clock, tick) -> None:
    world.deposit(start_up, 10_000, "funds")
    job = world.submit(start_up, "to-cancel")
    assert world.wallet(start_up)["held_fen"] > 0
    world.client.post(f"/v1/jobs/{job['id']}/cancel", headers=start_up.headers)
    tick()  # the sweep voids the hold of a lease that ended without usage
    assert world.wallet(start_up)["held_fen"] == 0
    world.submit(start_up, "never-claimed")
    clock.advance(3600)
    tick()  # the lease expires (nobody claimed it) and the job is placed again: a new hold
    wallet = world.wallet(start_up)
    assert wallet["wallet"]["balance_fen"] == 10_000 and wallet["held_fen"] > 0
    statement = world.client.get(f"/v1/ledger/accounts/wallet:{start_up.id}",
                                 headers=start_up.headers).json()
    assert sorted(t["state"] for t in statement["transfers"] if t["code"] == "job-hold") == [
        "pending", "voided", "voided"]


def test_a_postpaid_tenant_runs_without_a_hold_and_owes_the_bill(world, make_tenant,
                                                                 clock) -> None:
    firm = make_tenant("consumer", "postpaid enterprise", "enterprise")
    job = world.submit(firm, "post-1")
    assert job["state"] == "placed" and world.wallet(firm)["billing_mode"] == "postpaid"
    [assignment] = world.claim()
    clock.advance(600)
    world.report(assignment, state="succeeded", usage={"wall_s": 600.0})
    bill = world.client.get("/v1/bills/2026-11", headers=firm.headers).json()
    # 2 devices x 10 min at the pool's list price (900 fen a device-hour), nothing discounted.
    assert bill["totals"]["amount_fen"] == 300 and bill["totals"]["unpaid_fen"] == 300
    assert bill["wallet"]["debits_fen"] == 0


def test_tariffs_belong_to_the_pools_provider_and_bad_input_names_the_field(
        world, start_up) -> None:
    client = world.client
    assert client.put(f"/v1/pools/{world.pool_id}/tariff", json=TARIFF,
                      headers=start_up.headers).status_code == 403
    listed = client.get(f"/v1/pools/{world.pool_id}/tariff", headers=start_up.headers).json()
    assert listed["source"] == "list-price" and listed["tariff"]["base_unit_price_fen"] == "900"
    cases = [
        ({**TARIFF, "tiers": [{"from_quantity": "-1", "unit_price_fen": "5"}]},
         "tiers[0].from_quantity"),
        ({**TARIFF, "base_unit_price_fen": "abc"}, "base_unit_price_fen"),
        ({**TARIFF, "base_unit_price_fen": 12.5}, "base_unit_price_fen"),
        ({**TARIFF, "time_of_use": {"hour_bands": ["noon"] * 24, "multipliers": {}}},
         "time_of_use.hour_bands[0]"),
        ({**TARIFF, "spot_discount": "0.99"}, "spot_discount"),
        ({**TARIFF, "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        response = client.put(f"/v1/pools/{world.pool_id}/tariff", json=body,
                              headers=world.provider.headers)
        assert response.status_code == 422, (field, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], response.text
    first = client.put(f"/v1/pools/{world.pool_id}/tariff", json=TARIFF,
                       headers=world.provider.headers).json()
    second = client.put(f"/v1/pools/{world.pool_id}/tariff", json=TARIFF,
                        headers=world.provider.headers).json()
    assert (first["version"], second["version"]) == (1, 2)


def test_price_guidance_flags_a_tariff_outside_the_band(world, start_up) -> None:
    client = world.client
    fair = client.get(f"/v1/pools/{world.pool_id}/price-guidance",
                      params={"capex_fen": 20_000_000}, headers=start_up.headers).json()
    assert fair["inputs"]["pue"] == "1.15" and fair["inputs"]["electricity_fen_per_kwh"] == "32"
    assert Decimal(fair["inputs"]["device_power_kw"]) == Decimal("0.4")  # the A800's TDP
    assert "capex_fen" not in fair["defaults_used"]
    low, high = float(fair["low_fen"]), float(fair["high_fen"])
    assert 0 < low < high
    cheap = {"basis": "device-hour", "base_unit_price_fen": "1"}
    client.put(f"/v1/pools/{world.pool_id}/tariff", json=cheap, headers=world.provider.headers)
    flagged = client.get(f"/v1/pools/{world.pool_id}/price-guidance",
                         params={"capex_fen": 20_000_000}, headers=start_up.headers).json()
    assert not flagged["within_band"]
    assert flagged["findings"] == [{"field": "base_unit_price_fen", "unit_price_fen": "1",
                                    "verdict": "below"}]
    bad = client.get(f"/v1/pools/{world.pool_id}/price-guidance",
                     params={"utilisation": "2"}, headers=start_up.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "utilisation"


def test_deposits_and_grants_are_for_operators_and_idempotent(world, start_up,
                                                              make_tenant) -> None:
    client, operator = world.client, world.operator
    assert client.post(f"/v1/tenants/{start_up.id}/deposits", json={"amount_fen": 5},
                       headers={**start_up.headers, "Idempotency-Key": "x"}).status_code == 403
    assert world.deposit(start_up, 100, "k").status_code == 201
    assert world.deposit(start_up, 101, "k").status_code == 409
    missing = client.post(f"/v1/tenants/{start_up.id}/deposits", json={"amount_fen": 5},
                          headers=operator.headers)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "Idempotency-Key"
    zero = world.deposit(start_up, 0, "z")
    assert zero.status_code == 422 and zero.json()["errors"][0]["field"] == "amount_fen"
    assert client.post("/v1/programmes", json=PROGRAMME,
                       headers=start_up.headers).status_code == 403
    assert client.post("/v1/programmes", json=PROGRAMME,
                       headers=operator.headers).status_code == 201
    assert client.post("/v1/programmes", json=PROGRAMME,
                       headers=operator.headers).status_code == 200
    changed = client.post("/v1/programmes", json={**PROGRAMME, "coverage": "0.5"},
                          headers=operator.headers)
    assert changed.status_code == 409
    url = f"/v1/programmes/{PROGRAMME['id']}/grants"
    headers = {**operator.headers, "Idempotency-Key": "g"}
    assert client.post(url, json={"tenant_id": start_up.id, "granted_fen": 100},
                       headers=headers).status_code == 201
    assert client.post(url, json={"tenant_id": start_up.id, "granted_fen": 100},
                       headers=headers).status_code == 200
    assert client.post(url, json={"tenant_id": start_up.id, "granted_fen": 999},
                       headers=headers).status_code == 409
    over_cap = client.post(url, json={"tenant_id": start_up.id, "granted_fen": 50_000},
                           headers={**operator.headers, "Idempotency-Key": "g2"})
    assert over_cap.status_code == 422 and over_cap.json()["errors"][0]["field"] == "granted_fen"
    enterprise = make_tenant("consumer", "big co", "enterprise")
    ineligible = client.post(url, json={"tenant_id": enterprise.id, "granted_fen": 100},
                             headers={**operator.headers, "Idempotency-Key": "g3"})
    assert ineligible.status_code == 422
    assert ineligible.json()["errors"][0]["field"] == "tenant_id"
    bad = client.post("/v1/programmes", json={**PROGRAMME, "id": "x2", "coverage": "1.5"},
                      headers=operator.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "coverage"


def test_bad_periods_are_422_naming_the_period(world, start_up) -> None:
    for period in ("2026-13", "26-11", "2026-1", "1999-12"):
        response = world.client.get(f"/v1/bills/{period}", headers=start_up.headers)
        assert response.status_code == 422, period
        assert response.json()["errors"][0]["field"] == "period"
    assert world.client.get("/v1/payouts/2026-11",
                            headers=start_up.headers).status_code == 403


def test_hostile_identifiers_are_refused_before_they_reach_the_database(world,
                                                                       start_up) -> None:
    client, operator = world.client, world.operator
    nul = "CN.T\x00"
    responses = [
        client.get("/v1/wallet", params={"tenant_id": nul}, headers=operator.headers),
        client.post("/v1/tenants/%00/deposits", json={"amount_fen": 1},
                    headers={**operator.headers, "Idempotency-Key": "k"}),
        client.get("/v1/ledger/accounts/wallet:%00", headers=operator.headers),
        client.get("/v1/programmes/%00", headers=operator.headers),
        client.get("/v1/bills/2026-11", params={"tenant_id": nul}, headers=operator.headers),
    ]
    for response in responses:
        assert response.status_code == 422, response.text
    client.post("/v1/programmes", json=PROGRAMME, headers=operator.headers)
    grant = client.post(f"/v1/programmes/{PROGRAMME['id']}/grants",
                        json={"tenant_id": nul, "granted_fen": 1},
                        headers={**operator.headers, "Idempotency-Key": "k"})
    assert grant.status_code == 422 and grant.json()["errors"][0]["field"] == "tenant_id"
