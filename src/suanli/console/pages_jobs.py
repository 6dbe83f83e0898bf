"""Jobs: the list, a submit form that quotes first, a job with its timeline and costs."""

from __future__ import annotations

import secrets
import shlex
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from suanli.console.client import ApiError
from suanli.console.common import api, checked_form, current, page
from suanli.console.sessions import ConsoleSession

router = APIRouter(include_in_schema=False)
Session = Annotated[ConsoleSession, Depends(current)]

JOB_STATES = ("", "pending", "placed", "dispatched", "running", "succeeded", "failed",
              "cancelled")
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
LIST_LIMIT = 50
QUOTE_OPTIONS = 5
SPEC_TEXT = ("name", "device_kind", "accelerator", "vendor", "workload_class")
SPEC_INT = ("devices", "time_limit_s", "max_price_fen_per_device_hour")
DEVICE_KINDS = ("", "gpu", "npu", "cpu")
WORKLOAD_CLASSES = ("general", "training", "inference", "hpc")


@router.get("/jobs")
async def jobs(request: Request, session: Session, state: str = "") -> Response:
    params: dict[str, Any] = {"limit": LIST_LIMIT}
    if state in JOB_STATES and state:
        params["state"] = state
    found = await api(request, session).get("/v1/jobs", params)
    return page(request, "jobs.html", {"items": found["items"], "states": JOB_STATES,
                                       "state": state}, session=session)


def _spec(form: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The JobIn of the form, and the names of fields it could not read (the API names the
    rest)."""
    spec: dict[str, Any] = {}
    bad: list[str] = []
    for name in SPEC_TEXT:
        if form.get(name, "").strip():
            spec[name] = form[name].strip()
    for name in SPEC_INT:
        value = form.get(name, "").strip()
        if value:
            if value.isdigit():
                spec[name] = int(value)
            else:
                bad.append(name)
    try:
        spec["command"] = shlex.split(form.get("command", ""))
    except ValueError:
        bad.append("command")
    provinces = [p.strip() for p in form.get("provinces", "").split(",") if p.strip()]
    if provinces:
        spec["provinces"] = provinces
    spec.setdefault("name", "console-job")
    return spec, bad


def _form_page(request: Request, session: ConsoleSession, form: dict[str, str],
               **extra: Any) -> Response:
    return page(request, "job_new.html", {
        "form": form, "device_kinds": DEVICE_KINDS, "workload_classes": WORKLOAD_CLASSES,
        "quote": None, "error": "", "submit_token": form.get("submit_token")
        or secrets.token_urlsafe(16), **extra}, session=session,
        status=422 if extra.get("error") else 200)


@router.get("/jobs/new")
async def new_job(request: Request, session: Session) -> Response:
    return _form_page(request, session, {"name": "hello", "device_kind": "cpu", "devices": "1",
                                         "time_limit_s": "600", "workload_class": "general",
                                         "command": "python3 -c \"print('hello')\""})


@router.post("/jobs/quote")
async def quote(request: Request, session: Session) -> Response:
    """Step one: what it would cost and where, before anything is held."""
    form = await checked_form(request, session)
    spec, bad = _spec(form)
    if bad:
        return _form_page(request, session, form, error=", ".join(bad))
    try:
        found = await api(request, session).call("POST", "/v1/quotes", json=spec,
                                                 params={"limit": QUOTE_OPTIONS})
    except ApiError as error:
        return _form_page(request, session, form, error=error.detail)
    return _form_page(request, session, form, quote=found)


@router.post("/jobs")
async def submit(request: Request, session: Session) -> Response:
    """Step two: the same spec, submitted once (the form's token is the idempotency key)."""
    form = await checked_form(request, session)
    spec, bad = _spec(form)
    if bad:
        return _form_page(request, session, form, error=", ".join(bad))
    token = form.get("submit_token") or secrets.token_urlsafe(16)
    try:
        job = await api(request, session).post(
            "/v1/jobs", spec, headers={"Idempotency-Key": f"console-{token}"})
    except ApiError as error:
        return _form_page(request, session, form, error=error.detail)
    return RedirectResponse(f"/jobs/{job['id']}", status_code=303)


async def _job(request: Request, session: ConsoleSession, job_id: str) -> dict[str, Any]:
    client = api(request, session)
    job = await client.get(f"/v1/jobs/{job_id}")
    usage = await client.get_or_none(f"/v1/jobs/{job_id}/usage") or []
    logs = await client.raw("GET", f"/v1/jobs/{job_id}/logs")
    energy_wh = sum((record.get("energy_wh") or 0) for record in usage)
    return {"job": job, "usage": usage, "finished": job["state"] in FINISHED,
            "logs": logs.text if logs.status_code == 200 else "",
            "energy_wh": f"{energy_wh:.3f}", "placement": job.get("placement") or {}}


@router.get("/jobs/{job_id}")
async def job_page(request: Request, session: Session, job_id: str) -> Response:
    return page(request, "job.html", await _job(request, session, job_id), session=session)


@router.get("/jobs/{job_id}/live")
async def job_live(request: Request, session: Session, job_id: str) -> Response:
    """The changing part of a job page; it stops polling itself once the job has finished."""
    return page(request, "_job_live.html", await _job(request, session, job_id),
                session=session, fragment=True)


@router.post("/jobs/{job_id}/cancel")
async def cancel(request: Request, session: Session, job_id: str) -> Response:
    await checked_form(request, session)
    await api(request, session).post(f"/v1/jobs/{job_id}/cancel", {})
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)
