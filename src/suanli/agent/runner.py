"""The agent loop: register, heartbeat, watch the engine, report, claim more work."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from suanli.adapters.engines import (
    Engine,
    EngineError,
    EngineJobRef,
    EngineJobSpec,
    EngineState,
)
from suanli.agent.state import AgentState, LeaseState, StateFile
from suanli.domain.errors import NotFound
from suanli.protocol.agent import (
    MAX_MESSAGE_CHARS,
    Answer,
    AssignedSpec,
    Assignment,
    ClaimAnswer,
    ClaimRequest,
    HeartbeatAnswer,
    HeartbeatRequest,
    LeaseBeat,
    PoolKind,
    Registration,
    RegistrationAnswer,
    Report,
    ReportAnswer,
    Usage,
)

log = logging.getLogger("suanli.agent")
REQUEST_TIMEOUT_S = 15.0
MAX_LOG_BYTES = 256 << 10
MAX_REFUSAL_CHARS = 1000
_NAME_SAFE = re.compile(r"[^A-Za-z0-9._-]")
TERMINAL = {EngineState.SUCCEEDED: "succeeded", EngineState.FAILED: "failed",
            EngineState.CANCELLED: "cancelled"}
# Answers no retry changes: a bad or revoked key, a pool of another provider, a pool or agent
# that does not exist, a request the platform cannot accept. The agent stops on them, except
# an unknown agent id, which it re-registers once (a reused state directory, a new database).
PERMANENT = frozenset({401, 403, 404, 422})
MALFORMED_ANSWER = 502  # the platform answered, but not with the message the wire defines
MAX_ERRORS_SHOWN = 3
A = TypeVar("A", bound=Answer)


class PlatformError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class MalformedAnswer(PlatformError):
    """The platform's answer does not match the wire's model (a field missing, a wrong type):
    nothing in it is acted on, and the round is retried like any platform failure."""

    def __init__(self, path: str, error: ValidationError) -> None:
        super().__init__(MALFORMED_ANSWER, f"malformed answer to {path}: {_errors(error)}")


class AgentRefused(Exception):
    """The platform refused the agent for good (PERMANENT): retrying cannot help."""

    def __init__(self, error: PlatformError, hint: str) -> None:
        super().__init__(f"the platform refused the agent ({error.status}): {error.detail}"
                         f"{'; ' + hint if hint else ''}")
        self.status = error.status


_HINTS = {401: "check the provider's API key (SUANLI_API_KEY or `suanli login`)",
          403: "the key must be a provider's, and every --pool must belong to it",
          404: "check the --pool ids (`suanli pools search --json`)"}


class PlatformClient:
    """Outbound-only HTTP to the platform: works from behind NAT and firewalls."""

    def __init__(self, url: str, api_key: str, transport: httpx.BaseTransport | None = None):
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=REQUEST_TIMEOUT_S,
                                  headers={"Authorization": f"Bearer {api_key}"},
                                  transport=transport)

    def send(self, method: str, path: str, request: BaseModel | None,
             answer: type[A]) -> A:
        """One message of the agent wire: `request` sent as JSON, the answer checked against
        its model. A request this agent cannot form is refused as the platform would (422);
        an answer that does not match is a MalformedAnswer."""
        body = None if request is None else request.model_dump(mode="json", exclude_none=True)
        raw = self.call(method, path, body)
        try:
            return answer.model_validate(raw)
        except ValidationError as exc:
            raise MalformedAnswer(path, exc) from None

    def call(self, method: str, path: str, json: Any = None) -> Any:
        response = self._http.request(method, path, json=json)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise PlatformError(response.status_code, str(detail))
        return response.json()

    def close(self) -> None:
        self._http.close()


class ProviderAgent:
    """Runs the jobs the platform places on this provider's pools, on one engine."""

    def __init__(self, client: PlatformClient, engine: Engine, pools: list[str],
                 state_dir: Path, *, name: str = "agent", max_running: int = 4,
                 platform_url: str = "") -> None:
        assert 1 <= max_running <= 64
        self._client, self._engine, self._pools = client, engine, pools
        self._store = StateFile(state_dir)
        self._state = self._store.load()
        self._name, self._max_running, self._platform_url = name, max_running, platform_url
        self._device_kind: dict[str, str] = {}
        self._fenced: list[LeaseState] = []  # fenced-off jobs whose cancel must be retried
        self._refusals: dict[str, str] = {}  # lease id -> why the engine refused its job

    @property
    def state(self) -> AgentState:
        return self._state

    def register(self) -> str:
        if self._state.agent_id and self._state.platform_url == self._platform_url:
            return self._state.agent_id
        request = _message(Registration, name=self._name, pools=self._pools,
                           engine=self._engine.kind)
        answer = self._client.send("POST", "/v1/agents", request, RegistrationAnswer)
        self._state.agent_id, self._state.platform_url = answer.id, self._platform_url
        self._state.leases.clear()
        self._store.save(self._state)
        log.info("registered as %s for %d pool(s) at %s", answer.id, len(self._pools),
                 self._platform_url or "the platform")
        return answer.id

    def forget_registration(self) -> None:
        """The platform does not know our agent id: register again on the next round."""
        log.warning("the platform does not know agent %s (a new database?); registering again",
                    self._state.agent_id)
        self._state.agent_id = None
        self._store.save(self._state)

    def step(self) -> None:
        """One round: heartbeat, follow the engine, report, claim. Bounded work per call."""
        self._retry_fenced()
        self._heartbeat()
        for lease in list(self._state.leases.values()):
            self._follow(lease)
        free = self._max_running - len(self._state.leases)
        if free > 0:
            self._claim(free)

    def run(self, stop: threading.Event, poll_s: float = 1.0,
            on_error: Callable[[Exception], None] | None = None) -> None:
        """Rounds until `stop` is set. Raises AgentRefused on a permanent refusal."""
        failures, last_error, reregistered = 0, "", False
        while not stop.is_set():
            try:
                self.register()
                self.step()
            except PlatformError as exc:
                if exc.status in PERMANENT:
                    if exc.status == 404 and self._state.agent_id and not reregistered:
                        reregistered = True
                        self.forget_registration()
                        continue
                    raise AgentRefused(exc, _HINTS.get(exc.status, "")) from None
                failures, last_error = self._failed(exc, failures, last_error, on_error)
            except (httpx.HTTPError, EngineError) as exc:
                # The platform may be restarting or unreachable: keep the engine jobs
                # running and try again; the platform grants a grace period after a restart.
                failures, last_error = self._failed(exc, failures, last_error, on_error)
            else:
                reregistered = False
                if failures:
                    log.info("rounds succeed again after %d failed", failures)
                failures, last_error = 0, ""
            stop.wait(poll_s)

    @staticmethod
    def _failed(exc: Exception, failures: int, last_error: str,
                on_error: Callable[[Exception], None] | None) -> tuple[int, str]:
        """Log a failure when it is new (not every round of an outage); debug otherwise."""
        message = f"{type(exc).__name__}: {exc}"
        if message != last_error:
            log.warning("agent round failed (retrying every round): %s", message)
        else:
            log.debug("agent round failed again: %s", message)
        if on_error:
            on_error(exc)
        return failures + 1, message

    # -- the parts of a round -----------------------------------------------------------

    def _agent_path(self) -> str:
        assert self._state.agent_id
        return f"/v1/agents/{self._state.agent_id}"

    def _heartbeat(self) -> None:
        if not self._state.leases:
            return
        beats = [_message(LeaseBeat, lease_id=lease.lease_id, fence=lease.fence)
                 for lease in self._state.leases.values()]
        answers = self._client.send("POST", self._agent_path() + "/heartbeat",
                                    HeartbeatRequest(leases=beats), HeartbeatAnswer).leases
        for lease_id, answer in answers.items():
            lease = self._state.leases.get(lease_id)
            if lease is None:
                continue
            if answer == "lost":
                self._fence_off(lease, "the platform gave its lease to another claim")
            elif answer == "cancel" and not lease.cancel_requested:
                lease.cancel_requested = True
                self._cancel_engine(lease)
        self._store.save(self._state)

    def _follow(self, lease: LeaseState) -> None:
        if lease.engine_ref is None:
            self._never_started(lease)
            return
        ref = EngineJobRef.parse(lease.engine_ref)
        try:
            status = self._engine.status(ref)
        except NotFound:
            self._refuse(lease, f"the engine no longer knows job {ref}")
            return
        if status.state is EngineState.RUNNING and not lease.reported_running:
            if not self._report(lease, "running"):
                self._fence_off(lease, "the platform refused its report")
                return
            lease.reported_running = True
            self._store.save(self._state)
        elif status.state in TERMINAL:
            usage = self._engine.usage(ref)
            body_usage = _message(Usage, wall_s=usage.wall_s, cpu_s=usage.cpu_s,
                                  max_rss_mb=usage.max_rss_mb, energy_wh=usage.energy_wh,
                                  energy_estimated=usage.energy_estimated)
            state = "cancelled" if lease.cancel_requested else TERMINAL[status.state]
            self._report(lease, state, exit_code=status.exit_code, message=status.message,
                         logs=self._engine.logs(ref, max_bytes=MAX_LOG_BYTES), usage=body_usage)
            del self._state.leases[lease.lease_id]
            self._store.save(self._state)

    def _report(self, lease: LeaseState, state: str, **body: Any) -> bool:
        """True when the platform took the report; False when it answered that the lease is
        no longer ours (409: fenced off, already ended)."""
        path = f"{self._agent_path()}/leases/{lease.lease_id}/report"
        if "message" in body:
            body["message"] = engine_message(body["message"])
        try:
            request = _message(Report, fence=lease.fence, state=state,
                               engine_ref=lease.engine_ref, **body)
            self._client.send("POST", path, request, ReportAnswer)
            log.info("job %s: %s%s", lease.job_id, state,
                     "" if body.get("exit_code") is None else f" (exit {body['exit_code']})")
        except PlatformError as exc:
            if exc.status != 409:
                raise
            log.info("report on %s refused (%s); the lease is no longer ours", lease.lease_id,
                     exc)
            return False
        return True

    def _claim(self, free: int) -> None:
        answer = self._client.send("POST", self._agent_path() + "/claim",
                                   ClaimRequest(max_jobs=min(free, 16)), ClaimAnswer)
        for assignment in answer.assignments:
            lease = LeaseState(lease_id=assignment.lease_id, job_id=assignment.job_id,
                               fence=assignment.fence, pool_id=assignment.pool_id)
            self._state.leases[lease.lease_id] = lease
            self._store.save(self._state)  # remembered before the engine starts anything
            log.info("job %s: claimed on pool %s (lease %s)", lease.job_id, lease.pool_id,
                     lease.lease_id)
            self._start_on_engine(lease, assignment)
            self._store.save(self._state)

    def _engine_spec(self, assignment: Assignment) -> EngineJobSpec:
        spec: AssignedSpec = assignment.spec
        gpus = assignment.devices if self._pool_kind(assignment.pool_id) == "gpu" else 0
        return EngineJobSpec(command=tuple(spec.command), env=dict(spec.env or {}),
                             cpus=1, gpus=gpus, time_limit_s=spec.time_limit_s,
                             name=_NAME_SAFE.sub("-", assignment.lease_id)[:64],
                             network=spec.network is True)

    def _pool_kind(self, pool_id: str) -> str:
        if pool_id not in self._device_kind:
            pool = self._client.send("GET", f"/v1/pools/{pool_id}", None, PoolKind)
            self._device_kind[pool_id] = pool.device_kind
        return self._device_kind[pool_id]

    def _cancel_engine(self, lease: LeaseState) -> bool:
        """Stops the lease's engine job; False when the engine could not be made to."""
        if lease.engine_ref is None:
            return True
        try:
            self._engine.cancel(EngineJobRef.parse(lease.engine_ref))
        except NotFound:
            return True  # the engine no longer knows it: nothing is left to stop
        except Exception as exc:  # noqa: BLE001 - any engine failure: retried next round
            log.warning("could not cancel %s: %s", lease.engine_ref, exc)
            return False
        return True

    # -- engine refusals and fencing (docs/engines.md, "Failover and fencing") ------------

    def _start_on_engine(self, lease: LeaseState, assignment: Assignment) -> None:
        """Hands the job to the engine. Whatever the engine (or a spec it cannot take) raises,
        the job fails with the reason and the lease is released: one bad job never stops the
        agent."""
        try:
            ref = self._engine.submit(self._engine_spec(assignment))
        except Exception as exc:  # noqa: BLE001 - the refusal is reported, never raised
            log.warning("engine refused the job of lease %s: %s", lease.lease_id, exc)
            reason = f"engine refused the job: {_printable(str(exc))}"
            self._refusals[lease.lease_id] = reason
            try:
                self._refuse(lease, reason)
            except (httpx.HTTPError, PlatformError) as report_exc:  # next round retries it
                log.warning("could not report the refusal yet: %s", report_exc)
        else:
            lease.engine_ref = str(ref)

    def _never_started(self, lease: LeaseState) -> None:
        """A lease whose job the engine never accepted: a refusal whose report did not get
        through, or an agent that stopped between claiming and submitting. Without this the
        lease would be heartbeated forever with nothing running."""
        reason = self._refusals.get(lease.lease_id) or (
            "the engine never started the job (the agent stopped between claiming and "
            "starting it)")
        self._refuse(lease, reason)

    def _refuse(self, lease: LeaseState, message: str) -> None:
        """Reports the job failed and forgets the lease; a report the platform rejects (4xx)
        is given up on, since the lease then expires on its own; a platform that cannot be
        reached keeps the lease for the next round."""
        try:
            self._report(lease, "failed", message=message[:MAX_REFUSAL_CHARS],
                         usage=Usage(wall_s=0.0))
        except PlatformError as exc:
            if not 400 <= exc.status < 500:
                raise
            log.warning("platform rejected the failure report of %s: %s", lease.lease_id, exc)
        self._state.leases.pop(lease.lease_id, None)
        self._refusals.pop(lease.lease_id, None)
        self._store.save(self._state)

    def _fence_off(self, lease: LeaseState, why: str) -> None:
        """The platform says this lease is no longer ours (failover gave the job to another
        claim): kill our copy at once and report nothing more for it. A cancel that fails is
        retried every round until the engine job is gone."""
        log.warning("lease %s fenced off (%s): stopping %s", lease.lease_id, why,
                    lease.engine_ref)
        self._state.leases.pop(lease.lease_id, None)
        self._store.save(self._state)
        if not self._cancel_engine(lease):
            self._fenced.append(lease)

    def _retry_fenced(self) -> None:
        self._fenced = [lease for lease in self._fenced if not self._cancel_engine(lease)]


def _printable(text: str) -> str:
    """A reason safe to send: no NUL or other control characters (a refused job's command
    may hold them, and the platform rightly refuses them in a report)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


M = TypeVar("M", bound=BaseModel)


def engine_message(text: str) -> str:
    """An engine's words, fitted to the wire: a longer message (a long traceback) keeps its
    end, where the error is, rather than costing the agent a refused report."""
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return "..." + text[-(MAX_MESSAGE_CHARS - 3):]


def _message(model: type[M], **fields: Any) -> M:
    """A request of the wire, built here; one this agent cannot form (a name too long, a
    figure out of range) is refused as the platform would refuse it: a 422."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise PlatformError(422, f"{model.__name__}: {_errors(exc)}") from None


def _errors(error: ValidationError) -> str:
    """The first few problems of a validation error, each naming its field."""
    shown = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
             for e in error.errors()[:MAX_ERRORS_SHOWN]]
    more = error.error_count() - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")
