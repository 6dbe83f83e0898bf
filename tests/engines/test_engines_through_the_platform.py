"""Submit over HTTP -> a provider agent runs it on Slurm / Ray -> succeeded, logs, usage.

Real processes throughout: `suanli serve`, `suanli agent --engine slurm|ray`, and the Slurm
cluster and Ray head the engine fixtures start.
"""

from __future__ import annotations

import sys

import httpx

from tests.e2e.conftest import agent_factory, node_factory  # noqa: F401  (fixtures)
from tests.e2e.test_jobs_e2e import FAST, Platform


def _run_one(node, agent_factory, engine: str, *engine_options: str):  # type: ignore[no-untyped-def]  # noqa: F811
    platform = Platform(node.url, node.operator_key)
    [pool] = platform.pools([60], engine=engine)
    options = [item for option in engine_options for item in ("--engine-option", option)]
    agent_factory(node.url, platform.provider_key, [pool], "--engine", engine, *options,
                  name=engine)
    job = platform.submit([sys.executable, "-c",
                           f"import time; print('hello from {engine}', flush=True); time.sleep(1.5)"],
                          f"on-{engine}")
    done = platform.wait(job["id"], {"succeeded", "failed"}, timeout_s=180)
    assert done["state"] == "succeeded", done
    logs = httpx.get(f"{node.url}/v1/jobs/{job['id']}/logs", headers=platform.consumer).text
    assert f"hello from {engine}" in logs
    [usage] = httpx.get(f"{node.url}/v1/jobs/{job['id']}/usage",
                        headers=platform.consumer).json()
    assert usage["wall_s"] > 0 and usage["device_seconds"] > 0
    return usage


def test_a_job_runs_on_slurm_through_the_platform(slurm_cluster, node_factory,  # noqa: F811
                                                  agent_factory) -> None:  # noqa: F811
    node = node_factory(env=FAST)
    usage = _run_one(node, agent_factory, "slurm")
    assert usage["cpu_s"] is not None


def test_a_job_runs_on_ray_through_the_platform(ray_head, node_factory,  # noqa: F811
                                                agent_factory) -> None:  # noqa: F811
    node = node_factory(env=FAST)
    _run_one(node, agent_factory, "ray", f"address={ray_head}")
