"""`suanli agent calibrate`: a dry run as a real process, and an upload to a platform."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from suanli.agent import runner
from suanli.cli.main import app as cli
from tests.agent.conftest import register_pool
from tests.asgi_transport import TestClientTransport

SMALL = ["--size", "128", "--copy-mib", "4", "--repeats", "2", "--cpu"]


def test_a_dry_run_prints_the_probe_and_its_comparison_as_json() -> None:
    done = subprocess.run([sys.executable, "-m", "suanli.cli.main", "agent", "calibrate",
                           "--dry-run", "--json", "--accelerator", "nvidia-h100-sxm", *SMALL],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert output["probe"]["backend"] == "numpy-cpu"
    assert output["probe"]["figures"]["fp64_tflops"] > 0
    assert output["comparison"]["accelerator"] == "nvidia-h100-sxm"
    assert output["comparison"]["over_declared"] is True


def test_a_dry_run_without_a_platform_measures_and_compares_nothing() -> None:
    result = CliRunner().invoke(cli, ["agent", "calibrate", "--dry-run", "--json", *SMALL])
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout[result.stdout.index("{"):])
    assert output["comparison"] is None and output["probe"]["figures"]


def test_an_upload_needs_a_platform_a_pool_and_a_key() -> None:
    result = CliRunner().invoke(cli, ["agent", "calibrate", *SMALL], env={"SUANLI_API_KEY": ""})
    assert result.exit_code == 2


def test_calibrate_uploads_to_the_platform_and_prints_the_verdict(client, provider,
                                                                 monkeypatch) -> None:
    pool_id = register_pool(client, provider, "nvidia-h100-sxm")
    real = runner.PlatformClient
    # the CLI's HTTP goes to the in-process app instead of a socket
    monkeypatch.setattr(runner, "PlatformClient",
                        lambda url, key: real(url, key, transport=TestClientTransport(client)))
    result = CliRunner().invoke(cli, ["agent", "calibrate", "--platform", "http://testserver",
                                      "--pool", pool_id, *SMALL],
                                env={"SUANLI_API_KEY": provider.key, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "over-declared" in result.stdout and "stored as calibration" in result.stdout
    stored = client.get(f"/v1/pools/{pool_id}/calibration", headers=provider.headers).json()
    assert stored["latest"]["over_declared"] is True
