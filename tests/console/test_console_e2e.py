"""The web console in a real browser against a real `suanli serve --demo` (issue 17): sign in
as each role, search, submit a job and watch it finish, open the bill, keep tenants apart."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.e2e.conftest import run_cli

pytestmark = pytest.mark.xdist_group("console")
JOB_TIMEOUT_S = 90


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_consumer_signs_in_and_sees_the_map_the_pools_and_the_catalog(visit, console_node
                                                                           ) -> None:
    browser = visit()
    browser.sign_in(console_node.demo_key)
    page = browser.page
    assert int(page.locator("#total-pools").inner_text()) > 100  # the active pools of 178
    assert page.locator("#china-map circle.site").count() > 20
    assert page.locator("#china-map g.hub").count() == 8
    browser.shot("overview", "console-overview.png")
    page.select_option("#metric", "price")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state("networkidle")
    assert "metric=price" in page.url
    browser.shot("overview-price")

    browser.goto("/pools")
    page.get_by_label("Vendor", exact=True).fill("Huawei")
    page.get_by_label("Sort by").select_option("price")
    page.locator("#search").click()
    page.wait_for_load_state("networkidle")
    rows = page.locator("#pool-results tbody tr")
    assert rows.count() > 0
    assert all("Huawei" in rows.nth(i).inner_text() for i in range(rows.count()))
    browser.shot("pools")
    rows.first.get_by_role("link").first.click()
    page.wait_for_load_state("networkidle")
    assert "/pools/CN." in page.url and "Tariff" in page.content()
    browser.shot("pool")

    browser.goto("/catalog")
    assert page.locator("#catalog tbody tr").count() > 10
    browser.shot("catalog")
    browser.goto("/market")
    browser.shot("market")

    page.locator("#lang-switch").click()
    page.wait_for_load_state("networkidle")
    assert "加速器目录" in page.content() and page.url.endswith("/market")
    browser.shot("market-zh")
    page.locator("#lang-switch").click()
    page.wait_for_load_state("networkidle")

    assert browser.goto("/federation").status == 403  # operators only

    browser.goto("/")  # by keyboard: the first Tab reaches "skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    browser.goto("/jobs")
    assert page.evaluate("document.documentElement.scrollWidth") <= 392
    browser.shot("jobs-phone")


def test_a_consumer_quotes_submits_watches_a_job_finish_and_opens_the_bill(
        visit, console_node) -> None:
    browser = visit()
    browser.sign_in(console_node.demo_key)
    page = browser.page
    browser.goto("/jobs/new")
    page.get_by_label("Name", exact=True).fill("console-hello")
    page.get_by_label("Command").fill("python3 -c \"print('hello from the console')\"")
    page.locator("#quote").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#quote-result tbody tr").count() > 0
    browser.shot("job-quote")
    page.locator("#submit-job").click()
    page.wait_for_url(re.compile(r".*/jobs/CN\.J[^/]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    page.locator("#job-state", has_text="succeeded").wait_for(timeout=JOB_TIMEOUT_S * 1000)
    page.wait_for_load_state("networkidle")
    assert "hello from the console" in page.locator("#logs").inner_text()
    assert page.locator("#timeline li").count() >= 3
    assert page.locator("#placement-reason").inner_text()
    assert page.locator("#cost-estimated").inner_text().startswith("¥")
    browser.shot("job", "console-job.png")

    browser.goto("/jobs")
    assert job_id in page.locator("#job-list").inner_text()
    browser.goto("/money")
    assert "console-hello" in page.locator("#bill-lines").inner_text()
    browser.shot("money", "console-bill.png")
    with page.expect_download() as download:
        page.locator("#bill-csv").click()
    csv = open(download.value.path(), encoding="utf-8").read()
    assert csv.startswith("period,") and job_id in csv


def test_a_job_that_cannot_be_placed_says_why_it_waits_and_can_be_cancelled(
        visit, console_node) -> None:
    browser = visit()
    browser.sign_in(console_node.demo_key)
    page = browser.page
    browser.goto("/jobs/new")
    page.get_by_label("Name", exact=True).fill("too-big")
    page.get_by_label("Devices").fill("4000")
    page.locator("#quote").click()
    page.wait_for_load_state("networkidle")
    assert "no pool" in page.locator("#quote-result").inner_text()
    page.locator("#submit-job").click()
    page.wait_for_url(re.compile(r".*/jobs/CN\.J[^/]+$"))
    assert page.locator("#job-state").inner_text() == "pending"
    assert "waiting for a pool" in page.locator("#job-message").inner_text()
    browser.shot("job-pending")
    page.locator("#cancel-job").click()
    page.locator("#job-state", has_text="cancelled").wait_for()


def test_a_consumer_cannot_open_another_tenants_job_page(visit, console_node) -> None:
    answer = httpx.post(f"{console_node.url}/v1/jobs",
                        headers={**_auth(console_node.demo_provider_key),
                                 "Idempotency-Key": f"other-{time.time_ns()}"},
                        json={"name": "not-yours", "device_kind": "cpu", "command": ["true"],
                              "time_limit_s": 60})
    assert answer.status_code == 201, answer.text
    other = answer.json()["id"]
    browser = visit()
    browser.sign_in(console_node.demo_key)
    response = browser.goto(f"/jobs/{other}")
    assert response.status == 404
    assert "not-yours" not in browser.page.content()
    assert browser.goto(f"/jobs/{other}/live").status == 404
    browser.shot("other-tenant-job")


def test_provider_and_operator_see_their_pages_and_sign_out(visit, console_node) -> None:
    provider = visit()
    provider.sign_in(console_node.demo_provider_key)
    provider.goto("/money")
    assert provider.page.locator("#payouts").count() == 1
    provider.shot("provider-money")

    operator = visit()
    operator.sign_in(console_node.operator_key)
    operator.goto("/federation")
    assert "CN" in operator.page.locator("#platforms").inner_text()
    assert operator.page.locator("#cycles").count() == 1
    operator.shot("federation")
    operator.page.locator("#logout").click()
    operator.page.wait_for_url(re.compile(r".*/login"))
    operator.goto("/federation")
    assert "/login" in operator.page.url


def test_the_session_cookie_is_httponly_strict_and_forms_need_their_token(
        visit, console_node) -> None:
    browser = visit()
    browser.sign_in(console_node.demo_key)
    cookies = {c["name"]: c for c in browser.context.cookies()}
    session = cookies["suanli_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert console_node.demo_key not in browser.page.content()
    assert console_node.demo_key not in session["value"]
    refused = browser.context.request.post(
        f"{console_node.url}/jobs/quote", form={"command": "true", "csrf": "forged"})
    assert refused.status == 403
    assert browser.page.evaluate("document.cookie") == ""  # nothing readable by script


def test_the_market_page_shows_a_trade_the_book_and_the_product(visit, console_node) -> None:
    pool = httpx.get(f"{console_node.url}/v1/pools", params={"hub": "ningxia", "limit": 1},
                     headers=_auth(console_node.operator_key)).json()["items"][0]
    ask = run_cli("market", "place", "ask", pool["accelerator"], "ningxia", "--price", "1500",
                  "--count", "1", "--hours", "2", "--client-id", "console-ask",
                  "--pool-id", pool["id"], url=console_node.url, key=console_node.operator_key)
    assert ask.returncode == 0, ask.stderr
    bid = run_cli("market", "place", "bid", pool["accelerator"], "ningxia", "--price", "1600",
                  "--count", "1", "--client-id", "console-bid", url=console_node.url,
                  key=console_node.demo_key)
    assert bid.returncode == 0, bid.stderr
    browser = visit()
    browser.sign_in(console_node.demo_key)
    browser.goto("/market")
    page = browser.page
    assert "ningxia" in page.locator("#products").inner_text()
    assert "¥15.00" in page.locator("#trades").inner_text()  # 1500 fen per unit-hour
    assert page.locator("#book").count() == 1
    browser.shot("market-trade")
