"""`suanli agent` refuses bad engine settings and a missing sandbox with the reason, before it
contacts any platform (issue 12, finding 12: `--engine-option cpus=4` crashed the agent)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def agent(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUANLI_")}
    env.update(SUANLI_API_KEY="sk-test", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "suanli.cli.main", "agent",
                           "--platform", "http://127.0.0.1:9", "--pool", "CN.P1.S1.R1",
                           "--state-dir", str(tmp_path / "agent"), *args],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def test_a_bad_engine_setting_is_refused_with_its_name(tmp_path: Path) -> None:
    for setting, words in (("cpus=four", "cpus: 'four' is not an integer"),
                           ("cpus=0", "cpus must be an integer"),
                           ("sandbox=loose", "sandbox must be one of strict, network, none"),
                           ("colour=blue", "no setting 'colour'")):
        done = agent(tmp_path, "--engine-option", setting)
        assert done.returncode == 2, done
        assert words in " ".join(done.stderr.split()) and "Traceback" not in done.stderr


def test_the_strict_default_refuses_to_start_without_bwrap(tmp_path: Path) -> None:
    done = agent(tmp_path, "--engine-option", "bwrap=/nonexistent/bwrap")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "apt-get install -y bubblewrap" in " ".join(done.stderr.split())


def test_a_sandbox_is_only_for_the_local_engine(tmp_path: Path) -> None:
    done = agent(tmp_path, "--engine", "noop", "--sandbox", "none")
    assert done.returncode == 2 and "only the local engine has a job sandbox" in \
        " ".join(done.stderr.split())
