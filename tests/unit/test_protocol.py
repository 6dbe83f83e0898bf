"""The wires' message models (suanli.protocol): every message round-trips through its model
unchanged; an answer missing a field or with a wrong type is refused naming the field; and
an agent that meets a malformed answer logs it and retries instead of crashing."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from suanli.adapters.engines.noop import NoopEngine
from suanli.adapters.peers import PeerResponseInvalid, read_answer
from suanli.api import job_schemas
from suanli.agent.runner import MalformedAnswer, PlatformClient, ProviderAgent, engine_message
from suanli.domain import federation as fed
from suanli.domain.errors import ValidationFailed
from suanli.protocol import agent as wire
from suanli.protocol import federation as fwire

SPEC = {"name": "train", "command": ["python", "train.py"], "devices": 2,
        "workload_class": "general", "accelerator": None, "vendor": None,
        "device_kind": None, "min_memory_gb": None, "provinces": [], "pool_id": None,
        "time_limit_s": 3600, "max_price_fen_per_device_hour": None,
        "env": {"SEED": "1"}, "spot": False, "network": False}
ASSIGNMENT = {"job_id": "job_1", "lease_id": "CN:ls-1", "fence": 3, "pool_id": "CN:pool-1",
              "devices": 2, "spec": SPEC}

AGENT_MESSAGES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (wire.Registration, {"name": "rack 7", "pools": ["CN:pool-1"], "engine": "slurm"}),
    (wire.RegistrationAnswer, {"id": "ag_1", "pools": ["CN:pool-1"], "heartbeat_ttl_s": 30}),
    (wire.ClaimRequest, {"max_jobs": 4}),
    (wire.ClaimAnswer, {"assignments": [ASSIGNMENT]}),
    (wire.ClaimAnswer, {"assignments": []}),
    (wire.HeartbeatRequest, {"leases": [{"lease_id": "CN:ls-1", "fence": 3}]}),
    (wire.HeartbeatAnswer, {"leases": {"CN:ls-1": "ok", "CN:ls-2": "cancel",
                                       "CN:ls-3": "lost"}}),
    (wire.Report, {"fence": 3, "state": "succeeded", "exit_code": 0, "message": "done",
                   "logs": "epoch 1\n", "engine_ref": "slurm:42",
                   "usage": {"wall_s": 12.5, "cpu_s": 11.0, "max_rss_mb": 512.0,
                             "energy_wh": 3.5, "energy_estimated": False,
                             "utilisation": 1.0}}),
    (wire.Report, {"fence": 3, "state": "running", "message": ""}),
    (wire.Usage, {"wall_s": 0.0, "energy_estimated": True, "utilisation": 1.0}),
    (wire.ReportAnswer, {"job_id": "job_1", "state": "succeeded"}),
    (wire.PoolKind, {"device_kind": "gpu"}),
]


@pytest.mark.parametrize(("model", "message"), AGENT_MESSAGES,
                         ids=[f"{m.__name__}-{i}" for i, (m, _) in enumerate(AGENT_MESSAGES)])
def test_every_agent_message_round_trips_unchanged(model: type[BaseModel],
                                                   message: dict[str, Any]) -> None:
    parsed = model.model_validate(json.loads(json.dumps(message)))
    assert parsed.model_dump(mode="json", exclude_none=True) == _without_none(message)
    assert model.model_validate_json(parsed.model_dump_json()) == parsed


def test_an_assignment_carries_the_whole_stored_spec() -> None:
    assignment = wire.Assignment.model_validate(ASSIGNMENT)
    assert assignment.spec.command == ["python", "train.py"]
    assert assignment.model_dump(mode="json")["spec"] == SPEC  # fields it does not name too


@pytest.mark.parametrize(("model", "answer", "field"), [
    (wire.ClaimAnswer, {}, "assignments"),
    (wire.ClaimAnswer, {"assignments": [{**ASSIGNMENT, "fence": "3"}]}, "assignments.0.fence"),
    (wire.ClaimAnswer, {"assignments": [{k: v for k, v in ASSIGNMENT.items() if k != "spec"}]},
     "assignments.0.spec"),
    (wire.ClaimAnswer, {"assignments": [{**ASSIGNMENT, "spec": {**SPEC, "command": "ls"}}]},
     "assignments.0.spec.command"),
    (wire.HeartbeatAnswer, {"leases": {"CN:ls-1": "maybe"}}, "leases.CN:ls-1"),
    (wire.HeartbeatAnswer, {"leases": [["CN:ls-1", "ok"]]}, "leases"),
    (wire.RegistrationAnswer, {"pools": [], "heartbeat_ttl_s": 30}, "id"),
    (wire.RegistrationAnswer, {"id": "ag_1", "pools": [], "heartbeat_ttl_s": 30.5},
     "heartbeat_ttl_s"),
    (wire.ReportAnswer, {"job_id": 7, "state": "running"}, "job_id"),
])
def test_a_malformed_answer_is_refused_naming_the_field(model: type[BaseModel],
                                                        answer: dict[str, Any],
                                                        field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(answer)
    assert field in {".".join(str(p) for p in e["loc"]) for e in refused.value.errors()}


def test_requests_stay_strict_as_the_api_was() -> None:
    with pytest.raises(ValidationError):
        wire.Registration.model_validate({"name": "a", "pools": ["CN:p"], "colour": "red"})
    with pytest.raises(ValidationError):
        wire.LeaseBeat.model_validate({"lease_id": "CN:ls-1", "fence": "3"})
    with pytest.raises(ValidationError):
        wire.Report.model_validate({"fence": 1, "state": "running", "message": "x" * 2001})


def test_the_old_api_names_are_the_wire_models() -> None:
    assert job_schemas.AgentIn is wire.Registration
    assert job_schemas.ReportIn is wire.Report
    assert job_schemas.UsageIn is wire.Usage


# -- the agent against a platform that answers badly -----------------------------------------

def _platform(claim_answer: Any, seen: list[tuple[str, Any]]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.url.path, body))
        if request.url.path == "/v1/agents":
            return httpx.Response(201, json={"id": "ag_1", "pools": body["pools"],
                                             "heartbeat_ttl_s": 30})
        if request.url.path.endswith("/claim"):
            return httpx.Response(200, json=claim_answer)
        return httpx.Response(404, json={"detail": "not here"})
    return httpx.MockTransport(answer)


def _agent(tmp_path: Path, transport: httpx.MockTransport) -> ProviderAgent:
    client = PlatformClient("http://platform", "key", transport=transport)
    return ProviderAgent(client, NoopEngine(), ["CN:pool-1"], tmp_path, name="rack",
                         platform_url="http://platform")


def test_the_agent_sends_the_wire_models(tmp_path: Path) -> None:
    seen: list[tuple[str, Any]] = []
    agent = _agent(tmp_path, _platform({"assignments": []}, seen))
    agent.register()
    agent.step()
    assert seen == [("/v1/agents", {"name": "rack", "pools": ["CN:pool-1"], "engine": "noop"}),
                    ("/v1/agents/ag_1/claim", {"max_jobs": 4})]


@pytest.mark.parametrize("claim_answer", [
    {"assignments": [{**ASSIGNMENT, "fence": None}]},
    {"jobs": []},
    ["not", "an", "object"],
])
def test_an_agent_that_meets_a_malformed_answer_logs_it_and_retries(
        tmp_path: Path, claim_answer: Any, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, Any]] = []
    agent = _agent(tmp_path, _platform(claim_answer, seen))
    stop, errors = threading.Event(), []

    def on_error(exc: Exception) -> None:
        errors.append(exc)
        if len(errors) == 3:
            stop.set()

    with caplog.at_level(logging.WARNING, logger="suanli.agent"):
        agent.run(stop, poll_s=0.0, on_error=on_error)  # returns: no crash, no refusal
    assert len(errors) == 3 and all(isinstance(e, MalformedAnswer) for e in errors)
    assert "malformed answer to /v1/agents/ag_1/claim" in caplog.text
    assert [path for path, _ in seen].count("/v1/agents/ag_1/claim") == 3
    assert agent.state.leases == {}  # nothing of the bad answer was acted on


# -- the federation wire ---------------------------------------------------------------------

PLATFORM = {"authority": "CN.GD", "name": "Guangdong", "level": "regional", "parent": "CN",
            "endpoint": "https://gd.example", "state": "active"}
KEY = {"key_id": "CN.GD:3f2a9c01d4e5b6a7", "authority": "CN.GD", "public_key": "A" * 43,
       "revoked_at": None}
REGISTRY = {"platforms": [PLATFORM], "keys": [KEY]}
SUMMARY = {"origin": "CN.GD", "generated_at": "2026-11-30T01:00:00+08:00", "digest": "ab" * 32,
           "groups": [{"accelerator": "nvidia-a800", "free_devices": 8,
                       "min_unit_prices": {"general": 1.25}}]}
STATUS = {"home_job_id": "CN:job-1", "attempt": 1, "host_job_id": "CN.GD:job-9",
          "pool_id": "CN.GD:pool-2", "max_charge_fen": 12000, "state": "running",
          "exit_code": None, "message": "", "started_at": "2026-11-30T01:00:00+08:00",
          "finished_at": None, "logs": None, "logs_truncated": False}
# A signed document as the host signs it: unicode, floats, nesting, keys out of order.
RECORD = {"record_id": "CN.GD:rr-1", "home": "CN", "host": "CN.GD", "amount_fen": 1234,
          "units_micro": 2_500_000, "pool": {"province": "CN-GD", "名称": "华南 A800"},
          "rate": 0.1, "lines": [{"kind": "compute", "fen": 1234}]}
RECORD_SUMMARY = {"record_id": "CN.GD:rr-1", "role": "home", "home": "CN", "host": "CN.GD",
                  "home_job_id": "CN:job-1", "host_job_id": "CN.GD:job-9",
                  "tenant_id": "CN:t-1", "business_date": "2026-11-29", "amount_fen": 1234,
                  "units_micro": 2_500_000, "digest": "cd" * 32, "state": "charged",
                  "cycle_id": None, "settled_at": None, "charge": {"transfer_id": "tr-1"}}

FEDERATION_MESSAGES: list[tuple[type[fwire.Message], dict[str, Any]]] = [
    (fwire.Hello, {"platform": "CN", "key_id": "CN:00aa11bb22cc33dd", "you": "CN.GD"}),
    (fwire.PlatformRegistration, {"authority": "CN.GD", "name": "Guangdong",
                                  "level": "regional", "endpoint": "https://gd.example",
                                  "public_key": "A" * 43, "key_id": KEY["key_id"],
                                  "enrolment_token": None}),
    (fwire.RegistrationAnswer, {"parent": {"authority": "CN", "name": "National",
                                           "level": "national", "parent": None,
                                           "key_id": "CN:00aa11bb22cc33dd",
                                           "public_key": "B" * 43},
                                "registry": REGISTRY}),
    (fwire.Registry, REGISTRY),
    (fwire.SyncRequest, {"platforms": REGISTRY, "catalog": [SUMMARY],
                         "known": {"CN.SC": "ef" * 32}}),
    (fwire.SyncAnswer, {"registry": REGISTRY, "catalog": [SUMMARY],
                        "origins": [{k: SUMMARY[k] for k in ("origin", "generated_at",
                                                             "digest")}],
                        "need": ["CN.GD.SZ"]}),
    (fwire.CatalogAnswer, {"platform": "CN", "items": [{"platform": "CN.GD",
                                                        "free_devices": 8}]}),
    (fwire.Forward, {"home": "CN", "home_job_id": "CN:job-1", "attempt": 1,
                     "tenant_id": "CN:t-1", "tenant_class": "enterprise", "spec": SPEC}),
    (fwire.Withdraw, {"home": "CN", "home_job_id": "CN:job-1", "attempt": 1,
                      "cancel": True}),
    (fwire.ForwardAnswer, {"outcome": "rejected", "reason": "no pool here can take it"}),
    (fwire.ForwardAnswer, {"outcome": "accepted", **STATUS}),
    (fwire.StatusPush, {**STATUS, "home": "CN"}),
    (fwire.Ack, {"ok": True}),
    (fwire.RecordDelivery, {"record": RECORD, "signature": "s" * 86,
                            "key_id": KEY["key_id"]}),
    (fwire.RecordReceipt, {"state": "charged", "created": True, "record": RECORD_SUMMARY}),
    (fwire.RecordReceipt, {"state": "charged", "created": False, "record": None}),
    (fwire.RecordPage, {"items": [{"record_id": "CN.GD:rr-1", "side": "host"}],
                        "next_after": None}),
    (fwire.CollectRequest, {"cycle_id": "CN:cy-1", "through_date": "2026-11-29",
                            "after": None, "pending_cycles": []}),
    (fwire.CollectAnswer, {"platform": "CN.GD", "columns": {"record_id": ["CN.GD:rr-1"],
                                                            "amount_fen": [1234]},
                           "next_after": "CN.GD:rr-1"}),
    (fwire.StatementDelivery, {"statement": {"cycle_id": "CN:cy-1", "net_fen": -500},
                               "signature": "s" * 86, "key_id": "CN:00aa11bb22cc33dd"}),
    (fwire.StatementAnswer, {"cycle_id": "CN:cy-1", "state": "accepted"}),
    (fwire.StatementAnswer, {"cycle_id": "CN:cy-1", "state": "disputed",
                             "problem": "net differs"}),
]


@pytest.mark.parametrize(("model", "message"), FEDERATION_MESSAGES,
                         ids=[f"{m.__name__}-{i}" for i, (m, _) in enumerate(FEDERATION_MESSAGES)])
def test_every_federation_message_round_trips_to_the_same_bytes(
        model: type[fwire.Message], message: dict[str, Any]) -> None:
    parsed = fwire.parse(model, json.loads(json.dumps(message)))
    assert parsed.dump() == message
    assert json.dumps(parsed.dump()) == json.dumps(message)  # same keys in the same order


def test_signed_documents_keep_their_canonical_json() -> None:
    delivered = fwire.RecordDelivery.model_validate(
        {"record": RECORD, "signature": "s" * 86, "key_id": KEY["key_id"]}).dump()
    assert fed.canonical_json(delivered["record"]) == fed.canonical_json(RECORD)


def test_fields_a_newer_platform_adds_travel_on() -> None:
    message = {**STATUS, "home": "CN", "gpu_hours": 2}
    assert fwire.StatusPush.model_validate(message).dump() == message


@pytest.mark.parametrize(("model", "message", "field"), [
    (fwire.Forward, {"home": "CN", "home_job_id": "CN:job-1", "attempt": "1",
                     "tenant_id": "CN:t-1", "tenant_class": "enterprise", "spec": SPEC},
     "attempt"),
    (fwire.Forward, {"home": "CN", "home_job_id": "CN:job-1", "attempt": 1,
                     "tenant_id": "CN:t-1", "tenant_class": "enterprise", "spec": "ls"}, "spec"),
    (fwire.CollectRequest, {"through_date": "2026-11-29"}, "cycle_id"),
    (fwire.CollectRequest, {"cycle_id": "c", "through_date": "d", "pending_cycles": "c"},
     "pending_cycles"),
    (fwire.RecordDelivery, {"record": RECORD, "signature": None, "key_id": "k"}, "signature"),
])
def test_a_malformed_request_is_a_422_naming_the_field(model: type[fwire.Message],
                                                      message: dict[str, Any],
                                                      field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        fwire.parse(model, message)
    assert refused.value.field == field


@pytest.mark.parametrize(("model", "answer"), [
    (fwire.SyncAnswer, {"registry": {"platforms": [{"name": "no authority"}]}}),
    (fwire.CollectAnswer, {"platform": "CN.GD", "columns": [], "next_after": None}),
    (fwire.RecordReceipt, {"state": "charged", "record": None}),
    (fwire.ForwardAnswer, {"reason": "no outcome"}),
    (fwire.StatementAnswer, "accepted"),
])
def test_a_malformed_peer_answer_is_refused_not_acted_on(model: type[fwire.Message],
                                                         answer: Any) -> None:
    with pytest.raises(PeerResponseInvalid, match=f"malformed {model.__name__}"):
        read_answer("CN.GD", model, answer)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def test_a_long_engine_message_keeps_its_end_and_fits_the_wire() -> None:
    """An engine's traceback longer than the wire allows used to get the report refused (422)
    and stop the agent for good; the agent now sends its end, where the error is."""
    long = "x" * 5000 + "ZeroDivisionError: division by zero"
    short = engine_message(long)
    assert len(short) == wire.MAX_MESSAGE_CHARS and short.endswith("division by zero")
    assert wire.Report(fence=1, state="failed", message=short).message == short
    assert engine_message("fine") == "fine"
