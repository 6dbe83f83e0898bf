"""The estimate a consumer sees before and at placement is what billing charges for the same
usage: the tariff in force (tiers, time-of-use bands, month-to-date), not the list price."""

from __future__ import annotations

from tests.billing.conftest import TARIFF

DEPOSIT_FEN = 200_000
TIME_LIMIT_S = 3 * 3600  # 16:00-19:00 local: two peak hours, one flat


def _quote(world, tenant, **spec):  # type: ignore[no-untyped-def]
    body = {"name": "q", "command": ["train"], "devices": 2, "accelerator": "nvidia-a800",
            "time_limit_s": TIME_LIMIT_S, **spec}
    response = world.client.post("/v1/quotes", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


def _run_whole_limit(world, tenant, key, clock):  # type: ignore[no-untyped-def]
    job = world.submit(tenant, key, time_limit_s=TIME_LIMIT_S)
    [assignment] = world.claim()
    assert world.report(assignment, state="running").status_code == 200
    clock.advance(TIME_LIMIT_S)
    done = world.report(assignment, state="succeeded", exit_code=0,
                        usage={"wall_s": float(TIME_LIMIT_S)})
    assert done.status_code == 200, done.text
    charged = world.client.get(f"/v1/jobs/{job['id']}", headers=tenant.headers).json()
    return job, charged


def test_estimate_quote_and_charge_agree_for_the_same_usage(world, start_up, clock) -> None:
    put = world.client.put(f"/v1/pools/{world.pool_id}/tariff",
                           json={**TARIFF, "minimum_charge_fen_per_job": 100},
                           headers=world.provider.headers)
    assert put.status_code == 200, put.text
    assert world.deposit(start_up, DEPOSIT_FEN, "bank-estimate").status_code == 201

    quote = _quote(world, start_up)
    [option] = quote["options"]
    estimate = option["estimate"]["estimated_cost_fen"]
    # 6 device-hours, graduated at 0.5 (1,000 then 800 fen), two thirds at peak (x 1.5):
    # about 0.5 x 1,333 + 5.5 x 1,067; the list price (900 fen/device-hour) would say 5,400.
    assert 6_500 < estimate < 6_560
    assert option["estimate"]["tariff_id"].endswith("/v1") and option["placement"]["policy"]
    assert option["estimate"]["hold_fen"] >= estimate

    job, charged = _run_whole_limit(world, start_up, "estimate-1", clock)
    assert job["placement"]["estimated_cost_fen"] == estimate == job["cost"]["estimated_cost_fen"]
    assert charged["cost"]["records"] == 1
    assert charged["cost"]["amount_fen"] == estimate, "estimate and charge differ"

    # The tenant is now past the first tier this month: the next estimate prices all of it at
    # tier 1, and is again what the charge comes to.
    second = _quote(world, start_up)["options"][0]["estimate"]["estimated_cost_fen"]
    assert second < estimate
    job2, charged2 = _run_whole_limit(world, start_up, "estimate-2", clock)
    assert job2["placement"]["estimated_cost_fen"] == second == charged2["cost"]["amount_fen"]


def test_a_quote_reserves_nothing_and_names_its_limits(world, start_up) -> None:
    assert world.deposit(start_up, DEPOSIT_FEN, "bank-quote").status_code == 201
    before = world.client.get("/v1/wallet", headers=start_up.headers).json()
    quote = _quote(world, start_up)
    assert quote["candidates"] == 1 and quote["options"][0]["pool_id"] == world.pool_id
    # list price, no tariff of its own: 2 devices x 3 h x 900 fen
    assert quote["options"][0]["estimate"]["estimated_cost_fen"] == 5_400
    assert world.client.get("/v1/wallet", headers=start_up.headers).json() == before
    assert world.client.get("/v1/jobs", headers=start_up.headers).json()["items"] == []
    none = _quote(world, start_up, accelerator="nvidia-h800-sxm")
    assert none["options"] == [] and "no pool" in none["message"]
    bad = world.client.post("/v1/quotes?limit=0", json={"name": "q", "command": ["x"]},
                            headers=start_up.headers)
    assert bad.status_code == 422
    unknown = world.client.post("/v1/quotes", json={"name": "q", "command": ["x"],
                                                    "accelerator": "nvidia-h1000"},
                                headers=start_up.headers)
    assert unknown.status_code == 422 and "accelerator" in unknown.text
    assert world.client.post("/v1/quotes", json={"name": "q", "command": ["x"]}
                             ).status_code == 401
