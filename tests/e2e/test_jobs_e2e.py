"""Jobs run for real: `suanli serve` + `suanli agent` processes with the local engine."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

FAST = {"SUANLI_HEARTBEAT_TTL_S": "3", "SUANLI_SCHEDULER_INTERVAL_S": "0.2",
        "SUANLI_CLAIM_TIMEOUT_S": "30"}
SITE = {"name": "Gui'an DC", "province": "CN-GZ", "city": "Guiyang", "latitude": 26.6,
        "longitude": 106.7, "pue": "1.2", "electricity_fen_per_kwh": 35, "green_share": "0.6",
        "kind": "hub", "hub": "guizhou"}
JOB_TIMEOUT_S = 90


class Platform:
    """A user's view of a running node: an operator, a provider with pools, a consumer."""

    def __init__(self, url: str, operator_key: str) -> None:
        self.url = url
        self.operator = {"Authorization": f"Bearer {operator_key}"}
        self.provider_key = self._tenant("provider", "Guizhou Compute")
        self.consumer_key = self._tenant("consumer", "Start-up")
        self.provider = {"Authorization": f"Bearer {self.provider_key}"}
        self.consumer = {"Authorization": f"Bearer {self.consumer_key}"}

    def _tenant(self, role: str, name: str) -> str:
        response = httpx.post(self.url + "/v1/tenants", headers=self.operator,
                              json={"name": name, "role": role, "tenant_class": "start-up"})
        response.raise_for_status()
        return response.json()["api_key"]

    def pools(self, prices: list[int], engine: str = "local") -> list[str]:
        p = httpx.post(self.url + "/v1/providers", headers=self.provider,
                       json={"name": "Guizhou Compute", "kind": "computing-centre"}).json()
        site = httpx.post(f"{self.url}/v1/providers/{p['id']}/sites", headers=self.provider,
                          json=SITE).json()
        ids = []
        for price in prices:
            response = httpx.post(f"{self.url}/v1/sites/{site['id']}/pools",
                                  headers=self.provider,
                                  json={"name": f"cpu {price}", "accelerator": "intel-xeon-8480",
                                        "device_count": 2, "engine": engine,
                                        "price_fen_per_device_hour": price})
            response.raise_for_status()
            ids.append(response.json()["id"])
        return ids

    def submit(self, command: list[str], key: str, **extra) -> dict:  # type: ignore[no-untyped-def]
        response = httpx.post(self.url + "/v1/jobs", headers={**self.consumer,
                                                              "Idempotency-Key": key},
                              json={"name": key, "command": command, "devices": 1, **extra})
        response.raise_for_status()
        return response.json()

    def job(self, job_id: str) -> dict:
        return httpx.get(f"{self.url}/v1/jobs/{job_id}", headers=self.consumer).json()

    def wait(self, job_id: str, states: set[str], timeout_s: float = JOB_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout_s
        job = self.job(job_id)
        while job["state"] not in states and time.monotonic() < deadline:
            time.sleep(0.2)
            job = self.job(job_id)
        assert job["state"] in states, job
        return job


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_job_runs_on_the_local_engine_with_logs_and_usage(node_factory,
                                                            agent_factory) -> None:
    node = node_factory(env=FAST)
    platform = Platform(node.url, node.operator_key)
    [pool] = platform.pools([60])
    agent_factory(node.url, platform.provider_key, [pool], name="a")
    job = platform.submit(_python("import sys; print('hello from suanli'); "
                                  "sum(range(3_000_000)); sys.exit(0)"), "hello")
    done = platform.wait(job["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded" and done["exit_code"] == 0, done
    assert [e["to_state"] for e in done["events"]][:3] == ["pending", "placed", "dispatched"]
    logs = httpx.get(f"{node.url}/v1/jobs/{job['id']}/logs", headers=platform.consumer).text
    assert "hello from suanli" in logs
    [usage] = httpx.get(f"{node.url}/v1/jobs/{job['id']}/usage",
                        headers=platform.consumer).json()
    assert usage["wall_s"] > 0 and usage["cpu_s"] is not None and usage["cpu_s"] > 0
    failing = platform.submit(_python("import sys; sys.exit(3)"), "fails")
    failed = platform.wait(failing["id"], {"succeeded", "failed"})
    assert failed["state"] == "failed" and failed["exit_code"] == 3


def test_killed_agent_fails_over_to_another_pool(node_factory, agent_factory) -> None:
    node = node_factory(env=FAST)
    platform = Platform(node.url, node.operator_key)
    cheap, dear = platform.pools([50, 80])
    first = agent_factory(node.url, platform.provider_key, [cheap], name="first")
    job = platform.submit(_python(
        "import time; open('starts.txt', 'a').write('start\\n'); time.sleep(4)"), "failover")
    running = platform.wait(job["id"], {"running"})
    assert running["pool_id"] == cheap
    first.kill()
    agent_factory(node.url, platform.provider_key, [dear], name="second")
    done = platform.wait(job["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded" and done["pool_id"] == dear and done["attempts"] == 2
    reasons = " ".join(e["reason"] for e in done["events"])
    assert "expired" in reasons


def test_platform_restart_mid_run_runs_nothing_twice(node_factory, agent_factory,
                                                     tmp_path: Path) -> None:
    node = node_factory(env=FAST)
    platform = Platform(node.url, node.operator_key)
    [pool] = platform.pools([60])
    agent_factory(node.url, platform.provider_key, [pool], name="steady")
    job = platform.submit(_python("import time; time.sleep(8)"), "restart")
    platform.wait(job["id"], {"running"})
    node.stop()
    time.sleep(5)  # longer than the heartbeat TTL: every deadline has passed
    restarted = node_factory(env=FAST, storage=node.storage, port=node.port)
    platform.url = restarted.url
    done = platform.wait(job["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded" and done["attempts"] == 1, done
    # jobs cannot write outside their sandbox: count the engine's runs instead
    runs = list((tmp_path / "agent-steady" / "engine").glob("*/spec.json"))
    assert len(runs) == 1, runs


@pytest.mark.parametrize("engine", ["noop"])
def test_agent_on_a_noop_engine(node_factory, agent_factory, engine) -> None:
    node = node_factory(env=FAST)
    platform = Platform(node.url, node.operator_key)
    [pool] = platform.pools([60], engine="local")
    agent_factory(node.url, platform.provider_key, [pool], "--engine", engine, name="noop")
    job = platform.submit(["true"], "noop")
    assert platform.wait(job["id"], {"succeeded", "failed"})["state"] == "succeeded"


def test_jobs_from_the_cli(node_factory, agent_factory) -> None:
    from tests.e2e.conftest import run_cli

    node = node_factory(env=FAST)
    platform = Platform(node.url, node.operator_key)
    [pool] = platform.pools([60])
    agent_factory(node.url, platform.provider_key, [pool], name="cli")
    key = platform.consumer_key
    done = run_cli("jobs", "submit", "--name", "cli-hello", "--wait", "--poll-s", "0.3", "--",
                   *_python("print('cli says hi')"), url=node.url, key=key, timeout_s=120)
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = done.stdout.split("submitted ")[1].split()[0]
    logs = run_cli("jobs", "logs", job_id, url=node.url, key=key)
    assert "cli says hi" in logs.stdout
    listed = run_cli("jobs", "list", url=node.url, key=key)
    assert "cli-hello" in listed.stdout and "succeeded" in listed.stdout
    sleeper = run_cli("jobs", "submit", "--", *_python("import time; time.sleep(60)"),
                      url=node.url, key=key)
    sleeper_id = sleeper.stdout.split("submitted ")[1].split()[0]
    platform.wait(sleeper_id, {"running"})
    cancelled = run_cli("jobs", "cancel", sleeper_id, url=node.url, key=key)
    assert "cancelled" in cancelled.stdout
    shown = run_cli("jobs", "get", sleeper_id, url=node.url, key=key)
    assert "running" in shown.stdout and "cancelled" in shown.stdout
    bad = run_cli("jobs", "submit", "--devices", "2", "--workload-class", "mining", "--",
                  "true", url=node.url, key=key)
    assert bad.returncode == 1 and "workload_class" in bad.stderr
