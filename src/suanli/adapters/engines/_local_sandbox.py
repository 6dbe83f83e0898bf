"""The local engine's job sandbox: a bubblewrap (`bwrap`) command line for one job.

A job sees a fresh root: /usr and the few /etc files programs need, read-only; the Python
the agent runs on, read-only; its own working directory at /job, read-write; a private /tmp
and /dev/shm of bounded size; a /proc of its own PID namespace; a minimal /dev. It has no
network unless it asked for it and the provider's policy allows it, and an environment made
only of an allow-list and the job's own variables.

Two ways to be unprivileged, chosen by who runs the engine:

- root: bwrap runs as root (so it can bind what only root can read, such as a Python under
  /root) without a user namespace, and `setpriv` drops the job to a uid of its own (one per
  running job) with no capabilities and no_new_privs before it execs anything of the job's;
- any other user: bwrap makes an unprivileged user namespace in which the job is uid 65534
  (nobody), with further user namespaces disabled.

Every option travels through a memfd read by `bwrap --args`, so the job's environment (its
secrets) never appears in the host's `ps`; its command line does, as any process's would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from suanli.adapters.engines.base import EngineUnavailable

JOB_HOME = "/job"  # where the job's working directory appears inside the sandbox
SCRIPT_PATH = "/run/suanli/job.sh"
NOBODY = 65534
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROBE_TIMEOUT_S = 20.0
# Names the engine sets itself; a job's own env cannot override them.
RESERVED_ENV = frozenset({"SUANLI_JOB_ID", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
                          "HOME", "USER", "LOGNAME", "TMPDIR"})
INSTALL_HINT = (
    "install bubblewrap: `apt-get install -y bubblewrap` (Debian, Ubuntu) or "
    "`dnf install -y bubblewrap` (Fedora, RHEL); or, for development only, start the agent "
    "with `--sandbox none` (jobs then run unconfined, as the agent's own user)"
)

# /etc entries programs commonly read; none holds a secret. Bound read-only when present.
_ETC_ALWAYS = ("alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
               "timezone", "ssl/certs", "ssl/openssl.cnf", "ca-certificates",
               "ca-certificates.conf", "pki/tls/certs", "pki/ca-trust", "crypto-policies",
               "mime.types", "protocols", "services", "os-release")
_ETC_NETWORK = ("resolv.conf", "hosts", "host.conf", "gai.conf", "nsswitch.conf")
_TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_NVIDIA_CONTROL = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


class SandboxPolicy(StrEnum):
    """How the provider lets jobs run: `strict` (default) never gives a job the network;
    `network` gives it to jobs that ask; `none` runs jobs unconfined (development only)."""

    STRICT = "strict"
    NETWORK = "network"
    NONE = "none"


class SandboxUnavailable(EngineUnavailable):
    """The sandbox the policy asks for cannot be had on this host."""

    title = "Job sandbox unavailable"


@dataclass(frozen=True, slots=True)
class Tools:
    """The host programs the sandbox needs, found once by the engine."""

    bwrap: str
    setpriv: str
    prlimit: str


def find_tools(bwrap: str | None = None) -> Tools:
    """bwrap (given, or found on the system PATH), setpriv and prlimit."""
    found = {name: shutil.which(name, path=DEFAULT_PATH) for name in ("setpriv", "prlimit")}
    found["bwrap"] = shutil.which(bwrap or "bwrap", path=DEFAULT_PATH)
    if found["bwrap"] is None:
        where = f" at {bwrap}" if bwrap else ""
        raise SandboxUnavailable(f"bubblewrap (`bwrap`) is not installed{where}; {INSTALL_HINT}")
    for name in ("setpriv", "prlimit"):
        if found[name] is None:
            raise SandboxUnavailable(f"`{name}` (util-linux) is missing; install util-linux")
    return Tools(found["bwrap"], found["setpriv"], found["prlimit"])  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class JobSandbox:
    """Everything the sandbox of one job is made of."""

    workdir: Path  # on the host; appears at JOB_HOME
    argv: Sequence[str]
    env: Mapping[str, str]
    job_id: str
    uid: int | None  # the host uid the job runs as (root mode); None: the engine's own
    network: bool = False
    gpu_indices: Sequence[int] = ()
    expose: Sequence[str] = ()  # host paths shown read-only at the same place
    max_processes: int = 1024
    tmp_mb: int = 1024
    chdir: str = JOB_HOME
    script: str | None = None  # when set, runs as `bash SCRIPT_PATH`
    extra_etc: Mapping[str, str] = field(default_factory=dict)


class Launch:
    """A built bwrap command: its argv, the environment bwrap itself gets, and the memfds it
    reads (pass them with `pass_fds`, close them after the spawn)."""

    def __init__(self, tools: Tools, sandbox: JobSandbox) -> None:
        self.fds: list[int] = []
        args = _namespace_args(sandbox) + _filesystem_args(sandbox, self._data)
        args += ["--chdir", sandbox.chdir, "--clearenv"]
        for key, value in _sandbox_environment(sandbox).items():
            args += ["--setenv", key, value]
        # bwrap takes only options through --args; the command stays on its own argv
        self.argv = [tools.bwrap, "--args", str(self._data("\0".join(args) + "\0")), "--",
                     *_inner_command(tools, sandbox)]
        self.env = {"PATH": DEFAULT_PATH}

    def _data(self, text: str) -> int:
        fd = os.memfd_create("suanli-sandbox", 0)  # no MFD_CLOEXEC: bwrap must inherit it
        os.write(fd, text.encode())
        os.lseek(fd, 0, os.SEEK_SET)
        self.fds.append(fd)
        return fd

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()


def job_environment(env: Mapping[str, str], *, job_id: str, home: str,
                    cuda_visible: str) -> dict[str, str]:
    """The allow-list, then the job's own variables, then what the engine reserves: nothing
    of the engine's own environment (its API key, its paths) reaches a job."""
    out = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}
    out.update({k: v for k, v in env.items() if k not in RESERVED_ENV})
    out.update({"HOME": home, "TMPDIR": "/tmp", "USER": "job", "LOGNAME": "job",
                "SUANLI_JOB_ID": job_id, "CUDA_VISIBLE_DEVICES": cuda_visible})
    return out


def _sandbox_environment(sandbox: JobSandbox) -> dict[str, str]:
    # only the job's GPUs have device nodes in the sandbox, so CUDA numbers them from 0
    visible = ",".join(str(i) for i in range(len(sandbox.gpu_indices)))
    return job_environment(sandbox.env, job_id=sandbox.job_id, home=JOB_HOME,
                           cuda_visible=visible)


def _namespace_args(sandbox: JobSandbox) -> list[str]:
    args = ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "suanli-job", "--die-with-parent", "--new-session"]
    if not sandbox.network:
        args.append("--unshare-net")
    if sandbox.uid is None:  # unprivileged: a user namespace where the job is nobody
        args += ["--unshare-user", "--disable-userns", "--uid", str(NOBODY),
                 "--gid", str(NOBODY)]
    else:  # root: keep only what setpriv needs to drop to the job's uid
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_SETPCAP"]
    return args


def _filesystem_args(sandbox: JobSandbox, put: Callable[[str], int]) -> list[str]:
    """`put` stores a text in a memfd bwrap reads and returns its descriptor."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _TOP_LEVEL:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", "/etc"]
    etc = _ETC_ALWAYS + (_ETC_NETWORK if sandbox.network else ())
    for name in etc:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    files = {"passwd": _passwd(sandbox.uid), "group": _group(sandbox.uid)}
    if not sandbox.network:
        files["hosts"] = "127.0.0.1 localhost suanli-job\n::1 localhost\n"
        files["nsswitch.conf"] = "passwd: files\ngroup: files\nhosts: files\n"
    files.update(sandbox.extra_etc)
    for name, text in files.items():
        args += ["--perms", "0644", "--ro-bind-data", str(put(text)), f"/etc/{name}"]
    args += _expose_args(sandbox.expose)
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(sandbox.tmp_mb << 20), "--tmpfs", "/tmp",
             "--perms", "1777", "--size", str(sandbox.tmp_mb << 20), "--tmpfs", "/dev/shm",
             "--bind", str(sandbox.workdir), JOB_HOME]
    if sandbox.script is not None:
        args += ["--perms", "0755", "--dir", "/run", "--perms", "0755", "--dir", "/run/suanli",
                 "--perms", "0444", "--ro-bind-data", str(put(sandbox.script)), SCRIPT_PATH]
    args += _gpu_args(sandbox.gpu_indices)
    return args


def _expose_args(paths: Sequence[str]) -> list[str]:
    """Each path read-only at the same place, its parents made traversable (bwrap would
    create them 0700, which the job's uid could not enter)."""
    args: list[str] = []
    made: set[str] = {"/", "/usr", "/etc"}
    for raw in paths:
        for dest in dict.fromkeys((raw, os.path.realpath(raw))):
            if _covered(dest):
                continue
            for parent in reversed(Path(dest).parents):
                if str(parent) not in made:
                    made.add(str(parent))
                    args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", os.path.realpath(raw), dest]
            made.add(dest)
    return args


def _covered(path: str) -> bool:
    return any(path == top or path.startswith(top + "/")
               for top in ("/usr", "/etc", "/proc", "/dev", "/tmp", JOB_HOME))


def _gpu_args(gpu_indices: Sequence[int]) -> list[str]:
    if not gpu_indices:
        return []
    args: list[str] = []
    for name in (*_NVIDIA_CONTROL, *(f"nvidia{i}" for i in gpu_indices)):
        args += ["--dev-bind-try", f"/dev/{name}", f"/dev/{name}"]
    return args + ["--ro-bind-try", "/sys", "/sys"]  # CUDA reads PCI topology from sysfs


def _inner_command(tools: Tools, sandbox: JobSandbox) -> list[str]:
    command = list(sandbox.argv) if sandbox.script is None else ["/bin/bash", SCRIPT_PATH]
    # RLIMIT_NPROC is set inside, so it counts this job's processes only (per user namespace,
    # or per job uid), not every process of the user who runs the engine.
    limit = [tools.prlimit, f"--nproc={sandbox.max_processes}:{sandbox.max_processes}", "--"]
    if sandbox.uid is None:
        return limit + command
    drop = [tools.setpriv, f"--reuid={sandbox.uid}", f"--regid={sandbox.uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return drop + limit + command


def _passwd(uid: int | None) -> str:
    lines = ["root:x:0:0:root:/root:/usr/sbin/nologin",
             f"nobody:x:{NOBODY}:{NOBODY}:nobody:{JOB_HOME}:/bin/sh"]
    if uid is not None:
        lines.append(f"job:x:{uid}:{uid}:suanli job:{JOB_HOME}:/bin/sh")
    return "\n".join(lines) + "\n"


def _group(uid: int | None) -> str:
    lines = ["root:x:0:", f"nogroup:x:{NOBODY}:"]
    if uid is not None:
        lines.append(f"job:x:{uid}:")
    return "\n".join(lines) + "\n"


def probe(tools: Tools, *, as_root: bool, uid: int, expose: Sequence[str],
          scratch: Path) -> None:
    """Runs `true` in a sandbox like a job's; raises SandboxUnavailable with bwrap's words if
    this host cannot make one (no user namespaces, a seccomp profile that forbids them...)."""
    workdir = scratch / f".probe-{os.getpid()}"
    workdir.mkdir(mode=0o700, exist_ok=True)
    if as_root:
        os.chown(workdir, uid, uid)
    launch = Launch(tools, JobSandbox(workdir=workdir, argv=["/bin/true"], env={},
                                      job_id="probe", uid=uid if as_root else None,
                                      expose=expose, max_processes=64, tmp_mb=1))
    try:
        done = subprocess.run(launch.argv, env=launch.env, pass_fds=launch.fds,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"bwrap could not run: {exc}; {INSTALL_HINT}") from exc
    finally:
        launch.close()
        shutil.rmtree(workdir, ignore_errors=True)
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip()[-500:]
        raise SandboxUnavailable(
            f"bwrap cannot make a job sandbox on this host (exit {done.returncode}: {why}); "
            "unprivileged user namespaces may be disabled (sysctl "
            "kernel.unprivileged_userns_clone, or an AppArmor userns restriction); run the "
            "agent as root, or allow them"
        )
