"""Bills and payouts as dataclasses render exactly as the nested dicts did, byte for byte.

The reference is the dict-building module as it stood (tests/billing/bills_before.py), run on
the same rows: the JSON, CSV and HTML the API serves must equal what it makes of them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from suanli.domain.bills import (
    Bill,
    BillItem,
    BillLine,
    BillTotals,
    VoucherShare,
    WalletMovement,
    voucher_totals,
)
from suanli.domain.tenants import Principal, Role
from suanli.domain.time import SHANGHAI
from suanli.services.billing import statements
from tests.billing import bills_before
from tests.billing.conftest import PROGRAMME, TARIFF

PERIOD = "2026-11"


def _json_bytes(document: dict[str, Any]) -> bytes:
    # What the API sends for a dict: compact, UTF-8, keys in insertion order.
    return json.dumps(document, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


def _run(world, tenant, key: str, wall_s: float, clock, **changes: Any) -> None:  # noqa: ANN001
    world.submit(tenant, key, **changes)
    [assignment] = world.claim()
    assert world.report(assignment, state="running").status_code == 200
    clock.advance(int(wall_s))
    done = world.report(assignment, state="succeeded", exit_code=0, usage={"wall_s": wall_s})
    assert done.status_code == 200, done.text


def test_bills_and_payouts_are_byte_for_byte_what_the_dict_version_made(
        world, start_up, make_tenant, clock, database) -> None:  # noqa: ANN001
    client, operator, provider = world.client, world.operator, world.provider
    assert client.put(f"/v1/pools/{world.pool_id}/tariff", json=TARIFF,
                      headers=provider.headers).status_code == 200
    assert world.deposit(start_up, 100_000, "bank-1").status_code == 201
    assert client.post("/v1/programmes", json=PROGRAMME,
                       headers=operator.headers).status_code == 201
    assert client.post(f"/v1/programmes/{PROGRAMME['id']}/grants",
                       json={"tenant_id": start_up.id, "granted_fen": 20_000},
                       headers={**operator.headers, "Idempotency-Key": "g-1"}).status_code == 201
    # Two tiers and two bands (16:00 peak into 18:00 flat), a voucher, a name to escape, a run
    # of no time; then a postpaid tenant whose bill stays unpaid and has no voucher.
    _run(world, start_up, "fine-tune", 9000, clock, name='<b>R&D "α"</b>', time_limit_s=14400)
    _run(world, start_up, "eval", 600, clock)
    _run(world, start_up, "no-op", 0, clock)
    firm = make_tenant("consumer", "postpaid & co <ltd>", "enterprise")
    _run(world, firm, "post-1", 900, clock)

    for tenant, role in ((start_up, Role.CONSUMER), (firm, Role.CONSUMER)):
        with database.unit_of_work() as session:
            reference = bills_before.statement(session, Principal(tenant.id, role), PERIOD)
        assert reference["lines"] and reference["lines"][0]["items"]
        assert not reference["lines"][-1]["items"] or tenant is firm  # the run of no time
        served = {fmt: client.get(f"/v1/bills/{PERIOD}?format={fmt}", headers=tenant.headers)
                  for fmt in ("json", "csv", "html")}
        assert all(r.status_code == 200 for r in served.values())
        assert served["json"].content == _json_bytes(reference)
        assert served["csv"].text == bills_before.to_csv(reference)
        assert served["html"].text == bills_before.to_html(reference)

    with database.unit_of_work() as session:
        reference = bills_before.payout(session, Principal(provider.id, Role.PROVIDER), PERIOD)
    assert len(reference["lines"]) == 4
    served_payout = client.get(f"/v1/payouts/{PERIOD}", headers=provider.headers)
    assert served_payout.content == _json_bytes(reference)


def test_a_bill_without_hub_tier_or_band_renders_as_the_dict_version_did() -> None:
    # What the API scenario above cannot reach: a pool outside the hubs, a minimum-charge
    # item with neither tier nor band, a line with no items, unicode and markup in names.
    minimum = BillItem(kind="minimum", tier=None, band=None, quantity_micro=0,
                       unit_price_fen_e4=0, amount_fen=100, discount_fen=0, payable_fen=100,
                       vouchers=())
    usage = BillItem(kind="usage", tier=2, band="valley", quantity_micro=1_234_567,
                     unit_price_fen_e4=4_500_000, amount_fen=556, discount_fen=55,
                     payable_fen=501, vouchers=(VoucherShare("v-1", "p-<1>", 55),))
    start = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)

    def line(record: str, items: tuple[BillItem, ...], amount: int, discount: int) -> BillLine:
        return BillLine(
            usage_record_id=record, job_id=f"job-{record}", job_name="", lease_id="l",
            pool_id="pool-1", pool_name="池 <1>", provider_id="prov", accelerator="a800",
            hub=None, province="CN-BJ", start=start, end=start + timedelta(hours=1),
            tariff_id="t", basis="device-hour", spot=True, device_hours_micro=1_234_567,
            compute_unit_hours_micro=3_000_001, quantity_micro=1_234_567,
            facility_energy_wh=1500, items=items, amount_fen=amount, discount_fen=discount,
            payable_fen=amount - discount, collected_fen=0, unpaid_fen=amount - discount,
            transfer_ids=("x:charge",))

    lines = (line("u1", (minimum, usage), 656, 55), line("u2", (), 0, 0))
    bill = Bill(tenant_id="CN.T1", tenant_name="A & B", period=PERIOD, billing_mode="postpaid",
                period_start=datetime(2026, 11, 1, tzinfo=SHANGHAI),
                period_end=datetime(2026, 12, 1, tzinfo=SHANGHAI), lines=lines,
                totals=BillTotals.of(lines), vouchers=voucher_totals(lines),
                wallet=WalletMovement("wallet:CN.T1", 500, 0, 300, {"job-charge": 300}))
    document = bill.as_json()
    assert document["totals"]["facility_energy_kwh"] == "3"  # summed in Wh, as before
    assert statements.to_csv(bill) == bills_before.to_csv(document)
    assert statements.to_html(bill) == bills_before.to_html(document)
