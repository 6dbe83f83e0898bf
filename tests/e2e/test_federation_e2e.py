"""The federation for real: a national and two regional `suanli serve` processes on loopback
ports, a provider agent with the local engine at CN.SC, a consumer at CN.GD.

A job submitted in CN.GD runs in CN.SC; the tenant is charged at home, the provider is paid
at the host, and the national clearing house nets the positions. Faults: the host down while
the job is forwarded, messages replayed and tampered with, a partition that heals.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from suanli.adapters.platform_key import identity
from suanli.domain import federation as fed
from suanli.domain.clearing import business_date
from tests.e2e.conftest import run_cli
from tests.e2e.test_jobs_e2e import FAST, Platform

FEDERATION = {**FAST, "SUANLI_FEDERATION_INTERVAL_S": "0.2", "SUANLI_CATALOG_PULL_S": "0.5",
              "SUANLI_PEER_TIMEOUT_S": "2", "SUANLI_PEER_RETRIES": "1",
              "SUANLI_CLEARING_AUTO": "false"}
WAIT_S = 40
PRICE = 360_000  # fen per device-hour: 100 fen a second, so a short job costs something


def _wait(what: str, check, timeout_s: float = WAIT_S, every_s: float = 0.2) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Tree:
    """CN with CN.GD and CN.SC enrolled and registered, each a real process."""

    def __init__(self, node_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        self.factory, self.tmp = node_factory, tmp_path
        self.cn = self._node("CN")
        self.cn_operator = {"Authorization": f"Bearer {self.cn.operator_key}"}
        self.tokens = {a: self._enrol(a) for a in ("CN.GD", "CN.SC")}
        self.gd = self._node("CN.GD")
        self.sc = self._node("CN.SC")
        for node in (self.gd, self.sc):
            _wait("registration", lambda n=node: self._knows(n, {"CN", "CN.GD", "CN.SC"}))

    def _node(self, authority: str, *, storage: dict[str, str] | None = None,
              port: int | None = None):  # type: ignore[no-untyped-def]
        args = ["--authority", authority]
        if authority != "CN":
            args += ["--parent", self.cn.url, "--enrolment-token", self.tokens[authority]]
        env = {**FEDERATION, "SUANLI_KEY_FILE": str(self.key_file(authority)),
               "SUANLI_PLATFORM_NAME": f"platform {authority}"}
        return self.factory(*args, env=env, storage=storage, port=port)

    def key_file(self, authority: str) -> Path:
        return self.tmp / f"{authority}.key"

    def restart(self, authority: str):  # type: ignore[no-untyped-def]
        old = self.gd if authority == "CN.GD" else self.sc
        node = self._node(authority, storage=old.storage, port=old.port)
        node.operator_key = old.operator_key  # printed on the first start only
        setattr(self, "gd" if authority == "CN.GD" else "sc", node)
        return node

    def _enrol(self, authority: str) -> str:
        response = httpx.post(self.cn.url + "/v1/federation/enrolments",
                              headers=self.cn_operator,
                              json={"authority": authority, "name": f"platform {authority}"})
        response.raise_for_status()
        return response.json()["enrolment_token"]

    def _knows(self, node, authorities: set[str]) -> bool:  # type: ignore[no-untyped-def]
        response = httpx.get(node.url + "/v1/federation/platforms",
                             headers={"Authorization": f"Bearer {node.operator_key}"}, timeout=5)
        return {p["authority"] for p in response.json()["platforms"]} >= authorities


def _setup(tree: Tree) -> tuple[Platform, Platform, str]:
    """A provider with a local-engine pool at CN.SC, a funded consumer at CN.GD."""
    host = Platform(tree.sc.url, tree.sc.operator_key)
    [pool] = host.pools([PRICE])
    home = Platform(tree.gd.url, tree.gd.operator_key)
    me = httpx.get(home.url + "/v1/me", headers=home.consumer).json()
    httpx.post(f"{home.url}/v1/tenants/{me['id']}/deposits",
               headers={**home.operator, "Idempotency-Key": "e2e-deposit"},
               json={"amount_fen": 100_000}).raise_for_status()
    _wait("the CN.SC pool in CN.GD's catalog", lambda: httpx.get(
        home.url + "/v1/federation/catalog", headers=home.consumer,
        params={"platform": "CN.SC"}).json()["items"])
    return home, host, pool


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _records(platform: Platform, job_id: str) -> list[dict[str, Any]]:
    return httpx.get(f"{platform.url}/v1/federation/jobs/{job_id}",
                     headers=platform.consumer).json()["records"]


def test_a_job_submitted_in_one_region_runs_in_another_and_clears(node_factory, agent_factory,
                                                                 tmp_path: Path) -> None:
    tree = Tree(node_factory, tmp_path)
    home, host, pool = _setup(tree)
    agent_factory(tree.sc.url, host.provider_key, [pool], name="sc")
    job = home.submit(_python("import time; print('computed in Sichuan'); time.sleep(1)"),
                      "roam-e2e")
    assert job["placement"]["platform"] == "CN.SC"
    done = home.wait(job["id"], {"succeeded", "failed"}, timeout_s=WAIT_S)
    assert done["state"] == "succeeded" and done["pool_id"] == pool, done
    logs = httpx.get(f"{home.url}/v1/jobs/{job['id']}/logs", headers=home.consumer).text
    assert "computed in Sichuan" in logs
    [record] = _wait("the roaming record at home", lambda: _records(home, job["id"]))
    amount = record["amount_fen"]
    assert amount >= 100  # at least a second at 100 fen a second
    assert record["state"] == "charged" and record["charge"]["wallet_fen"] == amount
    wallet = httpx.get(home.url + "/v1/wallet", headers=home.consumer).json()["wallet"]
    assert wallet["balance_fen"] == 100_000 - amount
    provider = httpx.get(host.url + "/v1/wallet", headers=host.provider).json()
    assert provider["receivable"]["balance_fen"] == amount - amount * 5 // 100
    today = business_date(datetime.now(UTC))
    settled = run_cli("federation", "settle", "--through", today, url=tree.cn.url,
                      key=tree.cn.operator_key)
    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert "1 records cleared" in settled.stdout
    positions = [httpx.get(node.url + "/v1/federation/positions",
                           headers={"Authorization": f"Bearer {node.operator_key}"}).json()
                 for node in (tree.gd, tree.sc)]
    assert positions[0]["ledger"]["clearing:CN"]["balance_fen"] == amount
    assert positions[1]["ledger"]["clearing:CN"]["balance_fen"] == -amount
    assert positions[0]["ledger"]["peer:CN.SC"]["balance_fen"] == 0
    assert positions[0]["open"] == {} and positions[1]["open"] == {}


def test_the_host_down_while_forwarding_runs_the_job_once(node_factory, agent_factory,
                                                         tmp_path: Path) -> None:
    tree = Tree(node_factory, tmp_path)
    home, host, pool = _setup(tree)
    tree.sc.stop()
    job = home.submit(_python("print('start')"), "host-down")
    _wait("a failed forward", lambda: "unreachable" in home.job(job["id"])["message"])
    tree.restart("CN.SC")
    agent_factory(tree.sc.url, host.provider_key, [pool], name="sc-after")
    done = home.wait(job["id"], {"succeeded", "failed"}, timeout_s=WAIT_S)
    assert done["state"] == "succeeded", done
    # a job cannot write outside its sandbox: count the runs in every agent's engine instead
    runs = list(tmp_path.glob("agent-*/engine/*/spec.json"))
    assert len(runs) == 1, runs


def test_replayed_and_tampered_messages_are_refused(node_factory, tmp_path: Path) -> None:
    tree = Tree(node_factory, tmp_path)
    gd = identity("CN.GD", tree.key_file("CN.GD"))  # the test holds CN.GD's key file
    body = json.dumps({"home": "CN.GD", "home_job_id": "CN.GD.J00000001-8", "attempt": 1,
                       "cancel": False}).encode()
    path = "/federation/v1/jobs/withdraw"

    def send(payload: bytes, headers: fed.SignatureHeaders) -> httpx.Response:
        return httpx.post(tree.sc.url + path, content=payload,
                          headers={**headers.as_headers(), "Content-Type": "application/json"})

    signed = fed.sign_request(gd.private_key, gd.key_id, "CN.SC", "POST", path, body,
                              int(time.time()), secrets.token_urlsafe(18))
    first = send(body, signed)
    assert first.status_code == 200 and first.json()["outcome"] == "withdrawn"
    replayed = send(body, signed)
    assert replayed.status_code == 401 and "replayed" in replayed.json()["detail"]
    fresh = fed.sign_request(gd.private_key, gd.key_id, "CN.SC", "POST", path, body,
                             int(time.time()), secrets.token_urlsafe(18))
    tampered = send(body.replace(b"false", b"true"), fresh)
    assert tampered.status_code == 401
    assert tampered.headers["content-type"].startswith("application/problem+json")
    stale = fed.sign_request(gd.private_key, gd.key_id, "CN.SC", "POST", path, body,
                             int(time.time()) - 3600, secrets.token_urlsafe(18))
    assert send(body, stale).status_code == 401


def test_a_partition_that_heals_reconciles_and_clears_once(node_factory, agent_factory,
                                                          tmp_path: Path) -> None:
    tree = Tree(node_factory, tmp_path)
    home, host, pool = _setup(tree)
    agent_factory(tree.sc.url, host.provider_key, [pool], name="sc")
    job = home.submit(_python("import time; time.sleep(3)"), "partition")
    home.wait(job["id"], {"running"}, timeout_s=WAIT_S)
    tree.gd.stop()  # the home platform is cut off while its job finishes at the host
    _wait("the record issued at the host", lambda: httpx.get(
        tree.sc.url + "/v1/federation/roaming-records",
        headers={"Authorization": f"Bearer {tree.sc.operator_key}"}).json()["items"])
    today = business_date(datetime.now(UTC))
    cut = httpx.post(tree.cn.url + "/v1/federation/clearing/cycles", headers=tree.cn_operator,
                     json={"through_date": today}, timeout=30).json()
    assert cut["unreachable"] == ["CN.GD"] and cut["records_cleared"] == 0
    tree.restart("CN.GD")
    home.url = tree.gd.url
    done = home.wait(job["id"], {"succeeded", "failed"}, timeout_s=WAIT_S)
    assert done["state"] == "succeeded"
    [record] = _wait("the record delivered home", lambda: _records(home, job["id"]))
    reconciled = run_cli("federation", "reconcile", "--peer", "CN.SC", url=tree.gd.url,
                         key=tree.gd.operator_key)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert "1 records here, 1 there, 1 matched" in reconciled.stdout
    healed = httpx.post(tree.cn.url + "/v1/federation/clearing/cycles",
                        headers=tree.cn_operator, json={"through_date": today},
                        timeout=30).json()
    assert healed["records_cleared"] == 1 and healed["unreachable"] == []
    assert healed["net_positions"] == {"CN.GD": -record["amount_fen"],
                                       "CN.SC": record["amount_fen"]}
    again = httpx.post(tree.cn.url + "/v1/federation/clearing/cycles",
                       headers=tree.cn_operator, json={"through_date": today},
                       timeout=30).json()
    assert again["records_cleared"] == 0
    wallet = httpx.get(home.url + "/v1/wallet", headers=home.consumer).json()["wallet"]
    assert wallet["balance_fen"] == 100_000 - record["amount_fen"]
