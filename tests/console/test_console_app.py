"""The console in-process (no browser): sign-in, sessions, CSRF, tenant scoping, the catalogue."""

from __future__ import annotations

import re
import time
from importlib import resources

import pytest
from fastapi.testclient import TestClient

from suanli.api.app import create_app
from suanli.bootstrap import parse_authority
from suanli.console import install
from suanli.console.common import local_path
from suanli.console.i18n import CATALOGUE, LANGUAGES, translator
from suanli.console.sessions import SessionStore
from suanli.console.views import project, yuan
from suanli.domain.tenants import Role, TenantClass
from suanli.services import tenants
from suanli.settings import Settings

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def client(database, clock) -> TestClient:  # type: ignore[no-untyped-def]
    app = create_app(Settings(database_url="sqlite://", authority="CN", auto_migrate=False),
                     database=database, clock=clock)
    install(app)
    return TestClient(app)


@pytest.fixture
def make_key(database, clock):  # type: ignore[no-untyped-def]
    def make(role: str) -> tuple[str, str]:
        with database.unit_of_work() as session:
            new = tenants.create_tenant(session, parse_authority("CN"), f"{role} co",
                                        Role(role), TenantClass("start-up"), clock.now())
        return new.tenant_id, new.api_key

    return make


def _sign_in(client: TestClient, key: str) -> None:
    token = CSRF.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"csrf": token, "key": key, "next": "/jobs"},
                         follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/jobs", answer.text


def test_the_root_is_the_console_and_sends_strangers_to_sign_in(client) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert client.get("/docs").status_code == 200  # the API's docs stay where they were
    login = client.get("/login")
    assert login.status_code == 200 and "default-src 'self'" in login.headers[
        "content-security-policy"]
    assert client.get("/static/console/htmx.min.js").status_code == 200


def test_signing_in_sets_an_httponly_strict_cookie_without_the_key(client, make_key) -> None:
    _, key = make_key("consumer")
    token = CSRF.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"csrf": token, "key": key}, follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert key not in cookie
    page = client.get("/jobs")
    assert page.status_code == 200 and key not in page.text


def test_a_wrong_key_or_a_missing_token_signs_nobody_in(client, make_key) -> None:
    _, key = make_key("consumer")
    token = CSRF.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
    wrong = client.post("/login", data={"csrf": token, "key": key + "x"}, follow_redirects=False)
    assert "error=key" in wrong.headers["location"]
    forged = client.post("/login", data={"csrf": "forged", "key": key}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/jobs", follow_redirects=False).status_code == 303


def test_every_form_needs_the_sessions_token_and_logout_ends_the_session(client,
                                                                         make_key) -> None:
    _, key = make_key("consumer")
    _sign_in(client, key)
    assert client.post("/jobs/quote", data={"command": "true"}).status_code == 403
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
    token = CSRF.search(client.get("/jobs/new").text).group(1)  # type: ignore[union-attr]
    assert client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert client.get("/jobs", follow_redirects=False).status_code == 303


def test_only_operators_see_federation_and_tenants_stay_apart(client, make_key) -> None:
    _, key = make_key("consumer")
    _sign_in(client, key)
    assert client.get("/federation").status_code == 403
    assert client.get("/jobs/CN.J99999999-0").status_code == 422  # the API's answer, as a page
    for path in ("/", "/pools", "/catalog", "/jobs", "/jobs/new", "/money", "/market"):
        assert client.get(path).status_code == 200, path
    client.cookies.clear()
    _, operator = make_key("operator")
    _sign_in(client, operator)
    assert client.get("/federation").status_code == 200


def test_a_poll_after_the_session_ended_sends_the_whole_page_to_sign_in(client) -> None:
    answer = client.get("/overview/live", headers={
        "HX-Request": "true", "HX-Current-URL": "http://testserver/jobs/CN.J1"},
        follow_redirects=False)
    assert answer.status_code == 204
    assert answer.headers["HX-Redirect"] == "/login?next=/jobs/CN.J1"


def test_the_language_switch_only_redirects_home() -> None:
    assert local_path("//elsewhere.example/x") == "/"
    assert local_path("https://elsewhere.example") == "/"
    assert local_path("/jobs?state=failed") == "/jobs?state=failed"


def test_every_string_a_template_uses_is_in_the_catalogue_in_both_languages() -> None:
    templates = resources.files("suanli.console").joinpath("templates")
    used: set[str] = set()
    for template in templates.iterdir():
        used |= set(re.findall(r"""\bt\(["']([a-z_.]+[a-z_])["']\)""", template.read_text()))
    assert used, "no strings found"
    missing = sorted(used - set(CATALOGUE))
    assert not missing, missing
    for key, texts in CATALOGUE.items():
        assert len(texts) == len(LANGUAGES) and all(texts), key
    assert translator("zh")("nav.jobs") == "作业" and translator("en")("nav.jobs") == "Jobs"


def test_sessions_are_signed_expire_and_are_bounded() -> None:
    store = SessionStore(ttl_s=0.2, max_sessions=2)
    cookie, session = store.create("sl_key", "CN.T1", "t", "consumer")
    assert store.get(cookie) is session
    assert store.get(cookie.split(".")[0] + ".forged") is None
    assert store.get(session.id) is None  # unsigned
    store.create("k2", "CN.T2", "t", "consumer")
    store.create("k3", "CN.T3", "t", "consumer")
    assert len(store) == 2 and store.get(cookie) is None  # the oldest went first
    later, _ = store.create("k4", "CN.T4", "t", "consumer")
    time.sleep(0.25)
    assert store.get(later) is None


def test_money_is_shown_from_fen_without_float_and_the_map_keeps_china_in_the_box() -> None:
    assert yuan(123456) == "¥1,234.56" and yuan("84.2842") == "¥0.84" and yuan(-5) == "-¥0.05"
    x, y = project(116.4, 39.9)  # Beijing: north-east of the box's centre
    west, north = project(73, 54)
    assert (west, north) == (0, 0) and x > 300 and y < 200
