"""A newcomer's first hour (issue 10) with real `suanli serve` and `suanli agent` processes:
the demo runs work on any of its pools, keeps its keys across restarts, the CLI logs in, and
the agent survives what a new user does to it (a relative state dir, a stale id, a bad key)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import cli_env, run_cli
from tests.e2e.test_jobs_e2e import FAST, Platform

AGENT_EXIT_S = 30


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _wait_job(url: str, key: str, job_id: str, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = httpx.get(f"{url}/v1/jobs/{job_id}", headers=_auth(key)).json()
        if job["state"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def _submit(url: str, key: str, name: str, command: list[str], **spec: object) -> dict:
    response = httpx.post(f"{url}/v1/jobs", headers={**_auth(key), "Idempotency-Key": name},
                          json={"name": name, "command": command, "time_limit_s": 600, **spec})
    assert response.status_code == 201, response.text
    return response.json()


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with open(task / "children") as fh:
            found |= {int(child) for child in fh.read().split()}
    return found


def test_the_demo_runs_a_job_on_any_of_its_pools_and_stops_its_agent_with_it(
        node_factory) -> None:
    node = node_factory("--demo", env=FAST)
    key = node.demo_key
    assert key and node.demo_provider_key
    agents = [pid for pid in _children(node.process.pid)
              if "agent" in Path(f"/proc/{pid}/cmdline").read_text()]
    deadline = time.monotonic() + 30
    while not agents and time.monotonic() < deadline:  # spawned once the node answers
        time.sleep(0.2)
        agents = [pid for pid in _children(node.process.pid)
                  if "agent" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(agents) == 1, "one demo agent process for all demo pools"
    # An illustrative GPU pool: the job runs on this host's CPU, given device indices.
    gpu = _submit(node.url, key, "h800", [sys.executable, "-c",
                  "import os; print('devices', os.environ['CUDA_VISIBLE_DEVICES'])"],
                  accelerator="nvidia-h800-sxm", devices=8)
    # An NPU pool picked by the consumer, and the cheapest CPU pool the placement picks.
    npu_pool = httpx.get(f"{node.url}/v1/pools", headers=_auth(key),
                         params={"device_kind": "npu", "limit": 1}).json()["items"][0]["id"]
    npu = _submit(node.url, key, "npu", [sys.executable, "-c", "print('on an npu pool')"],
                  pool_id=npu_pool)
    cpu = _submit(node.url, key, "cpu", [sys.executable, "-c", "print('hello')"],
                  device_kind="cpu")
    for job, text in ((gpu, "devices 0,1,2,3,4,5,6,7"), (npu, "on an npu pool"),
                      (cpu, "hello")):
        done = _wait_job(node.url, key, job["id"])
        assert done["state"] == "succeeded", done
        logs = httpx.get(f"{node.url}/v1/jobs/{job['id']}/logs", headers=_auth(key)).text
        assert text in logs
        assert done["cost"]["records"] == 1 and done["cost"]["estimated_cost_fen"] > 0
    pools = httpx.get(f"{node.url}/v1/pools/{npu_pool}", headers=_auth(key)).json()
    assert pools["labels"].get("illustrative") == "true"
    node.stop()
    for pid in agents:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z", "the agent outlived serve"


def test_a_restarted_demo_prints_the_same_keys_and_keeps_its_wallet(node_factory,
                                                                    tmp_path: Path) -> None:
    first = node_factory("--demo", "--no-demo-agent")
    login = re.search(r"log in as the demo consumer: +(suanli login --url (\S+) --key (\S+))",
                      first.output.read_text())
    assert login and login.group(2) == first.url and login.group(3) == first.demo_key
    files = list(tmp_path.glob("*-demo-keys.json"))
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    wallet = httpx.get(f"{first.url}/v1/wallet", headers=_auth(first.demo_key)).json()
    first.stop()
    again = node_factory("--demo", "--no-demo-agent", storage=first.storage)
    assert (again.demo_key, again.demo_provider_key) == (first.demo_key, first.demo_provider_key)
    assert "keys reused from" in again.output.read_text()
    assert httpx.get(f"{again.url}/v1/wallet", headers=_auth(again.demo_key)).json() == wallet
    me = httpx.get(f"{again.url}/v1/me", headers=_auth(again.demo_provider_key)).json()
    assert me["role"] == "provider"
    # A key file that no longer matches the database is replaced, never trusted.
    files[0].write_text(json.dumps({**json.loads(files[0].read_text()),
                                    "consumer_key": "sl_0000000000_forged"}))
    again.stop()
    third = node_factory("--demo", "--no-demo-agent", storage=first.storage)
    assert third.demo_key != first.demo_key and third.demo_provider_key == first.demo_provider_key
    assert httpx.get(f"{third.url}/v1/wallet", headers=_auth(third.demo_key)).json()[
        "tenant_id"] == wallet["tenant_id"], "the same demo consumer, with a new key"


def test_login_whoami_and_logout_keep_the_cli_pointed_at_the_platform(node_factory) -> None:
    node = node_factory()
    key = node.operator_key
    env_free = {"url": None, "key": None}
    wrong = run_cli("login", "--url", node.url, "--key", "sl_0000000000_wrong", **env_free)
    assert wrong.returncode == 1 and "refused the key" in wrong.stderr
    good = run_cli("login", "--url", node.url, "--key", key, **env_free)
    assert good.returncode == 0, good.stderr
    path = Path(re.search(r"stored in (\S+)", good.stdout).group(1))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["url"] == node.url
    who = run_cli("whoami", **env_free)
    assert who.returncode == 0 and "operator" in who.stdout and node.url in who.stdout
    listed = run_cli("pools", "search", **env_free)  # no SUANLI_URL, no SUANLI_API_KEY
    assert listed.returncode == 0, listed.stderr
    # What the old README told people to type now works; what cannot work says why.
    catalog = run_cli("federation", "catalog", "--accelerator-model", "H100-SXM", **env_free)
    assert catalog.returncode == 0, catalog.stderr
    devices = run_cli("accelerators", "--vendor", "nvidia", "--min-memory-gb", "80", **env_free)
    assert devices.returncode == 0 and "nvidia-h100-sxm" in devices.stdout
    assert "huawei" not in devices.stdout.lower() and "units/h" in devices.stdout
    tpu = run_cli("pools", "search", "--device-kind", "tpu", **env_free)
    assert tpu.returncode == 2 and "gpu, npu, dcu, xpu, cpu" in tpu.stderr
    status = run_cli("login", "--status", url="http://127.0.0.1:9", key=None)
    assert status.returncode == 2 and "SUANLI_URL" in status.stdout, "the environment wins"
    out = run_cli("logout", **env_free)
    assert out.returncode == 0 and not path.exists()
    assert run_cli("pools", "search", **env_free).returncode != 0


def _agent(url: str, key: str, pools: list[str], cwd: Path, *extra: str
           ) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "suanli.cli.main", "agent", "--platform", url,
               "--poll-s", "0.2", *extra]
    for pool in pools:
        command += ["--pool", pool]
    return subprocess.Popen(command, cwd=cwd, env=cli_env(key=key), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_the_agent_stops_with_a_reason_when_the_platform_refuses_it(node_factory,
                                                                    tmp_path: Path) -> None:
    node = node_factory(env=FAST)
    platform = Platform(node.url, node.operator_key)
    [pool] = platform.pools([60])
    for key, status in (("sl_0000000000_not-a-key", "401"), (platform.consumer_key, "403")):
        agent = _agent(node.url, key, [pool], tmp_path)
        try:
            output, _ = agent.communicate(timeout=AGENT_EXIT_S)
        finally:
            agent.kill()
        assert agent.returncode == 3, output
        assert f"refused the agent ({status})" in output


def test_a_relative_state_dir_and_a_stale_agent_id_still_run_jobs(node_factory,
                                                                  tmp_path: Path) -> None:
    node = node_factory(env=FAST)
    platform = Platform(node.url, node.operator_key)
    [pool] = platform.pools([60])
    state = tmp_path / "relative-state"
    state.mkdir()
    # A state dir reused from another platform database: its agent id means nothing here.
    (state / "agent-state.json").write_text(json.dumps(
        {"agent_id": "ag_00000000deadbeef", "platform_url": node.url, "leases": {}}))
    agent = _agent(node.url, platform.provider_key, [pool], tmp_path,
                   "--state-dir", "relative-state")
    try:
        job = platform.submit([sys.executable, "-c", "print('relative ok')"], "relative")
        done = platform.wait(job["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done
        time.sleep(3)  # idle rounds: 15 polls that must not be logged
    finally:
        agent.terminate()
        output, _ = agent.communicate(timeout=AGENT_EXIT_S)
    assert "registering again" in output and str(state.resolve()) in output
    lines = [line for line in output.splitlines() if line.strip()]
    # start, stale id, registered, claimed, succeeded, stopped: not one line per poll.
    assert len(lines) <= 10, "\n".join(lines)
    assert "HTTP Request" not in output
    assert os.path.isdir(state / "engine")
