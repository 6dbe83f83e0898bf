"""The agent's durable memory: its id and the leases it runs, kept in one JSON file."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class LeaseState:
    lease_id: str
    job_id: str
    fence: int
    pool_id: str
    engine_ref: str | None = None  # set once the engine accepted the job
    reported_running: bool = False
    cancel_requested: bool = False


@dataclass
class AgentState:
    agent_id: str | None = None
    platform_url: str | None = None
    leases: dict[str, LeaseState] = field(default_factory=dict)


class StateFile:
    """Written atomically (temp file + rename) after every change, read back on restart, so a
    restarted agent re-attaches to the engine jobs it started instead of starting them again."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "agent-state.json"

    def load(self) -> AgentState:
        if not self.path.exists():
            return AgentState()
        raw = json.loads(self.path.read_text())
        leases = {k: LeaseState(**v) for k, v in raw.get("leases", {}).items()}
        return AgentState(raw.get("agent_id"), raw.get("platform_url"), leases)

    def save(self, state: AgentState) -> None:
        tmp = self.path.with_suffix(".tmp")
        payload = {"agent_id": state.agent_id, "platform_url": state.platform_url,
                   "leases": {k: asdict(v) for k, v in state.leases.items()}}
        tmp.write_text(json.dumps(payload, indent=1))
        os.replace(tmp, self.path)
