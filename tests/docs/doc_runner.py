"""Runs the shell blocks of a Markdown document the way a reader would, and checks them.

The rules a document follows (docs/decisions.md, 2026-11, "The README is executed"):

- A code block is a *command block* when its language is a shell (`sh`, `bash`, `shell`,
  `console`, `zsh`), or when it has no language and a line starts like a command (`suanli `,
  `python`, `pip `, `.venv/`, `$ `). Every command block runs, unless the HTML comment right
  above it says `<!-- not-run: why -->`. A command block that runs must be tagged `sh`.
- Directives are HTML comments on the lines right above the block (no blank line between):
  `<!-- expect: TEXT -->` the block's output contains TEXT; `<!-- capture NAME: REGEX -->` the
  first match (group 1 if any) in a command's output replaces the literal NAME (e.g.
  `<the demo consumer key>`, `sle_...`) in every later command; `<!-- eventually: TEXT -->`
  the block is re-run (its commands must be read-only) until its output contains TEXT.
- Each block starts in the document's working directory, as a new terminal would; `cd` holds
  until the block ends, `export` until the document ends. Commands run in bash with the
  suite's virtualenv first on PATH, HOME and the config directory in a temporary directory.
- `suanli serve` and `suanli agent` (not `agent calibrate`) keep running: they start in the
  background on a free port (the port the document shows is replaced by it in every later
  command), and the runner waits until the server answers or the agent has registered.
- The two set-up commands (`python3 -m venv .venv && .venv/bin/pip install -e . && ...`) cannot
  be re-run inside the suite, which already runs in such a virtualenv: only their tail (the
  command after the last `&&`) runs, with `.venv/bin/` dropped; `source .venv/bin/activate`
  does nothing for the same reason.
A placeholder left in a command (`<...>` or `...`) fails the run: the document needs a capture.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SHELL_LANGUAGES = {"sh", "bash", "shell", "console", "zsh"}
COMMAND_STARTS = ("suanli ", "python", "pip ", ".venv/", "$ ")
COMMAND_TIMEOUT_S = 120.0
SERVER_START_S = 60.0
AGENT_START_S = 30.0
EVENTUALLY_S = 30.0
DEFAULT_PORT = 8000
_DIRECTIVE = re.compile(r"^<!--\s*([a-z-]+)(?:\s+(.+?))?:\s*(.*?)\s*-->$")
_FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)\s*$")
_PLACEHOLDER = re.compile(r"<[A-Za-z][^<>\n]*>|(?<![.\w])\.\.\.(?![.\w])|\w+_\.\.\.")


class DocError(AssertionError):
    """A document's command failed, or the document breaks the rules above."""


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    directives: list[tuple[str, str, str]]  # (kind, name, value)

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    def directive(self, kind: str) -> list[tuple[str, str]]:
        return [(name, value) for k, name, value in self.directives if k == kind]

    @property
    def is_commands(self) -> bool:
        if self.language in SHELL_LANGUAGES:
            return True
        return self.language == "" and any(
            line.lstrip().startswith(COMMAND_STARTS) for line in self.text.splitlines())

    @property
    def not_run_reason(self) -> str | None:
        reasons = self.directive("not-run")
        return reasons[0][1] if reasons else None


def parse(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file with the directives right above each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        directives = []
        above = index - 1
        while above >= 0 and lines[above].startswith("<!--"):
            found = _DIRECTIVE.match(lines[above].strip())
            if not found:
                raise DocError(f"{path.name}:{above + 1}: not a directive: {lines[above]}")
            kind, name, value = found.group(1), found.group(2) or "", found.group(3)
            if kind == "not-run":
                name, value = "", (f"{name}: {value}" if name else value)
            directives.insert(0, (kind, name, value))
            above -= 1
        end = index + 1
        while end < len(lines) and not lines[end].startswith(fence.group(1)):
            end += 1
        blocks.append(Block(path, index + 1, fence.group(2).lower(),
                            "\n".join(lines[index + 1:end]), directives))
        index = end + 1
    return blocks


def commands(text: str) -> list[str]:
    """Shell commands of a block: comments dropped, `\\` continuations and heredocs joined."""
    out: list[str] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command = line
        while command.rstrip().endswith("\\") and index < len(lines):
            command = command.rstrip()[:-1] + " " + lines[index].strip()
            index += 1
        heredoc = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", command)
        if heredoc:
            body = []
            while index < len(lines) and lines[index].strip() != heredoc.group(1):
                body.append(lines[index])
                index += 1
            index += 1
            out.append("\n".join([command, *body, heredoc.group(1)]))
            continue
        out.append(_strip_comment(command).strip())
    return out


def _and_parts(command: str) -> list[str]:
    """`a && cd b && c` as its parts (outside quotes), so a `cd` in a chain holds."""
    parts, quote, start, position = [], None, 0, 0
    while position < len(command):
        char = command[position]
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif command.startswith("&&", position):
            parts.append(command[start:position].strip())
            start = position + 2
            position += 1
        position += 1
    parts.append(command[start:].strip())
    return parts


def _strip_comment(command: str) -> str:
    """Drop a trailing `# comment` outside quotes."""
    quote = None
    for position, char in enumerate(command):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or command[position - 1].isspace()):
            return command[:position]
    return command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Background:
    command: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Session:
    """One document's run: its directory, environment, servers, ports and captured values."""

    workdir: Path
    env: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)
    background: list[Background] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, workdir: Path) -> Session:
        home = workdir / ".home"
        (home / ".config").mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUANLI_")}
        if "SUANLI_SHARED_DATA" in os.environ:
            env["SUANLI_SHARED_DATA"] = os.environ["SUANLI_SHARED_DATA"]
        venv_bin = str(Path(sys.executable).parent)
        env.update(PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}", HOME=str(home),
                   XDG_CONFIG_HOME=str(home / ".config"), XDG_STATE_HOME=str(home / ".state"),
                   COLUMNS="200", PYTHONUNBUFFERED="1")
        env.pop("VIRTUAL_ENV", None)
        return cls(workdir, env)

    # -- substitutions ---------------------------------------------------------------------

    def substitute(self, command: str, block: Block) -> str:
        for name in sorted(self.values, key=len, reverse=True):
            command = command.replace(name, self.values[name])
        for shown, real in self.ports.items():
            command = re.sub(rf"(127\.0\.0\.1|localhost):{shown}\b", rf"\g<1>:{real}", command)
            command = re.sub(rf"--port[ =]{shown}\b", f"--port {real}", command)
        left = _PLACEHOLDER.findall(command.split("<<")[0])
        if left:
            raise DocError(f"{block.where}: {command!r} still has {left}: no capture "
                           "directive gave it a value")
        return command

    # -- running ---------------------------------------------------------------------------

    def run_block(self, block: Block) -> str:
        if block.language != "sh":
            raise DocError(f"{block.where}: a block that runs must be tagged ```sh "
                           f"(or marked <!-- not-run: why -->), not {block.language or 'untagged'}")
        eventually = block.directive("eventually")
        deadline = time.monotonic() + EVENTUALLY_S
        while True:
            output = self._run_once(block)
            missing = [text for _, text in eventually if text not in output]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for _, text in [*block.directive("expect"), *eventually]:
            if text not in output:
                raise DocError(f"{block.where}: the output does not contain {text!r}:\n"
                               f"{output[-4000:]}")
        return output

    def _run_once(self, block: Block) -> str:
        cwd = self.workdir
        captures = dict(block.directive("capture"))
        outputs = []
        for raw in commands(block.text):
            command = self.substitute(raw, block)
            if "python3 -m venv" in command:  # the set-up command: only its tail runs
                command = command.rsplit("&&", 1)[1].strip().replace(".venv/bin/", "")
            parts = [command] if "<<" in command else _and_parts(command)
            output = ""
            for part in parts:
                more, cwd = self._run(part, cwd, block)
                output += more
            outputs.append(output)
            for name, pattern in list(captures.items()):
                found = re.search(pattern, output)
                if found:
                    self.values[name] = found.group(1) if found.groups() else found.group(0)
                    del captures[name]
        if captures:
            raise DocError(f"{block.where}: nothing matched the capture(s) "
                           f"{sorted(captures)}:\n{''.join(outputs)[-4000:]}")
        return "\n".join(outputs)

    def _run(self, command: str, cwd: Path, block: Block) -> tuple[str, Path]:
        self.transcript.append(f"$ {command}")
        words = shlex.split(command.split("<<")[0]) if command else []
        if words[:1] in (["source"], ["."]) and words[1:] == [".venv/bin/activate"]:
            return "", cwd
        if words[:1] == ["cd"]:
            target = (cwd / words[1]).resolve()
            if not target.is_dir():
                raise DocError(f"{block.where}: cd {words[1]}: no such directory")
            return "", target
        if words[:1] == ["export"]:
            for word in words[1:]:
                name, _, value = word.partition("=")
                self.env[name] = value
            return "", cwd
        if words[:2] == ["suanli", "serve"]:
            return self._serve(command, cwd, block), cwd
        if words[:2] == ["suanli", "agent"] and not {"calibrate", "--help"} & set(words):
            return self._agent(command, cwd, block), cwd
        try:
            done = subprocess.run(["bash", "-c", command], cwd=cwd, env=self.env, check=False,
                                  capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise DocError(f"{block.where}: {command!r} ran over {COMMAND_TIMEOUT_S} s") \
                from None
        output = done.stdout + done.stderr
        self.transcript.append(output)
        if done.returncode != 0:
            raise DocError(f"{block.where}: {command!r} exited {done.returncode}:\n{output}")
        return output, cwd

    def _spawn(self, command: str, cwd: Path) -> Background:
        log = self.workdir / f".background-{len(self.background)}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd,
                                       env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        started = Background(command, process, log)
        self.background.append(started)
        return started

    def _serve(self, command: str, cwd: Path, block: Block) -> str:
        shown = re.search(r"--port[ =](\d+)", command)
        real = free_port()
        self.ports[int(shown.group(1)) if shown else DEFAULT_PORT] = real
        command = re.sub(r"--port[ =]\d+", f"--port {real}", command) if shown \
            else f"{command} --port {real}"
        server = self._spawn(command, cwd)
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise DocError(f"{block.where}: {command!r} exited:\n{server.output()}")
            try:
                if httpx.get(f"http://127.0.0.1:{real}/v1/health", timeout=1).status_code \
                        == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise DocError(f"{block.where}: {command!r} did not answer in {SERVER_START_S} s:"
                           f"\n{server.output()}")
        output = server.output()
        self.transcript.append(output)
        return output

    def _agent(self, command: str, cwd: Path, block: Block) -> str:
        agent = self._spawn(command, cwd)
        deadline = time.monotonic() + AGENT_START_S
        while "registered as" not in agent.output():
            if agent.process.poll() is not None or time.monotonic() > deadline:
                raise DocError(f"{block.where}: {command!r} did not register:\n"
                               f"{agent.output()}")
            time.sleep(0.2)
        return agent.output()

    def stop(self) -> None:
        """Stop what the document started, newest first: SIGTERM to each process group (a
        server stops its demo agent), then SIGKILL for what is left."""
        for started in reversed(self.background):
            if started.process.poll() is None:
                os.killpg(started.process.pid, signal.SIGTERM)
        for started in reversed(self.background):
            try:
                started.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(started.process.pid, signal.SIGKILL)
                started.process.wait(timeout=10)


def run_document(path: Path, workdir: Path) -> tuple[list[Block], list[Block]]:
    """Run every command block of `path` in order; returns (blocks run, blocks not run)."""
    blocks = [b for b in parse(path) if b.is_commands]
    skipped = [b for b in blocks if b.not_run_reason is not None]
    for block in skipped:
        if not block.not_run_reason.strip():
            raise DocError(f"{block.where}: <!-- not-run --> needs a reason")
    ran = [b for b in blocks if b.not_run_reason is None]
    session = Session.start(workdir)
    try:
        for block in ran:
            session.run_block(block)
    finally:
        session.stop()
    return ran, skipped
