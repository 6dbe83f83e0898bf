"""The agent <-> platform wire (`/v1/agents/...`): every message either end sends, as models.

Requests are strict (unknown fields, wrong types and values past a limit are refused with a
422 naming the field). Answers are strict about the types of the fields an agent relies on
and ignore fields they do not name, so a newer platform can add to an answer without
breaking an older agent. The platform builds its answers from these models; the agent checks
every answer with them before acting on it (`ClaimAnswer.model_validate(...)`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from suanli.domain.jobs import JobState
from suanli.protocol.fields import (
    MAX_FENCE,
    Flag,
    Name,
    Strict,
    Token,
    bounded_float,
    bounded_int,
    one_of,
    text,
)

# Engines are pluggable (the suanli.engines entry points): a kind, not a closed list.
EngineKind = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[a-z0-9][a-z0-9_.-]*$",
                                  description="the agent's engine kind, e.g. local or slurm")]
JobStateName = one_of([s.value for s in JobState], what="job state")
Fence = bounded_int(0, MAX_FENCE)
ExitCode = bounded_int(-(2**31), 2**31 - 1)
WallSeconds = bounded_float(0, 366 * 86400)
Measure = bounded_float(0, 1e12)
Share = bounded_float(0, 1)
# The engine's own words (a traceback may hold ANSI colours): only NUL is refused, app-wide.
MAX_MESSAGE_CHARS = 2000
Message = Annotated[str, Field(max_length=MAX_MESSAGE_CHARS)]
EngineRef = text(200)
MaxJobs = bounded_int(1, 16)
MAX_LEASES_PER_BEAT = 128
MAX_LOG_CHARS = 4 << 20
# What a heartbeat answers per lease: keep running, cancel it, or stop (fenced off).
LeaseVerdict = Literal["ok", "cancel", "lost"]


class Answer(BaseModel):
    """Base of the platform's answers: the named fields with their exact JSON types; fields
    an older agent does not know are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)


# -- the agent's requests --------------------------------------------------------------------

class Registration(Strict):
    """POST /v1/agents: an agent offers to run the placed jobs of its pools."""

    name: Name
    pools: list[Token] = Field(min_length=1, max_length=256)
    engine: EngineKind = "local"


class ClaimRequest(Strict):
    """POST /v1/agents/{id}/claim: hand me up to `max_jobs` placed jobs."""

    max_jobs: MaxJobs = 4


class LeaseBeat(Strict):
    lease_id: Token
    fence: Fence


class HeartbeatRequest(Strict):
    """POST /v1/agents/{id}/heartbeat: the leases the agent still holds, with their fences."""

    leases: list[LeaseBeat] = Field(default_factory=list, max_length=MAX_LEASES_PER_BEAT)


class Usage(Strict):
    """What a job used, as its engine measured it."""

    wall_s: WallSeconds
    cpu_s: Measure | None = None
    max_rss_mb: Measure | None = None
    energy_wh: Measure | None = None
    energy_estimated: Flag = True
    utilisation: Share = 1.0


class Report(Strict):
    """POST /v1/agents/{id}/leases/{lease}/report: the state of the lease's job."""

    fence: Fence
    state: JobStateName
    exit_code: ExitCode | None = None
    message: Message = ""
    logs: str | None = Field(default=None, max_length=MAX_LOG_CHARS,
                             description="the job's output; no NUL")
    engine_ref: EngineRef | None = None
    usage: Usage | None = None


# -- the platform's answers ------------------------------------------------------------------

class RegistrationAnswer(Answer):
    id: StrictStr
    pools: list[StrictStr]
    heartbeat_ttl_s: StrictInt


class AssignedSpec(Answer):
    """The parts of a job's spec an agent runs it with. The spec as stored (name, devices,
    placement constraints, ...) travels whole; limits are not checked again here, since a
    spec stored under older limits must still reach its engine (and be refused there)."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    command: list[StrictStr] = Field(min_length=1)
    env: dict[StrictStr, StrictStr] | None = None
    time_limit_s: StrictInt
    network: StrictBool | None = None


class Assignment(Answer):
    """A placed job handed to the agent; `fence` is the claim's, to quote on every report."""

    job_id: StrictStr
    lease_id: StrictStr
    fence: StrictInt
    pool_id: StrictStr
    devices: StrictInt
    spec: AssignedSpec


class ClaimAnswer(Answer):
    assignments: list[Assignment]


class HeartbeatAnswer(Answer):
    leases: dict[StrictStr, LeaseVerdict] = Field(description="per lease: ok, cancel, or lost "
                                                  "(stop it: another claim holds it now)")


class ReportAnswer(Answer):
    job_id: StrictStr
    state: StrictStr


class PoolKind(Answer):
    """What an agent reads of GET /v1/pools/{id}: whether its devices are GPUs."""

    device_kind: StrictStr
