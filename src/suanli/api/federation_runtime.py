"""Wires a node's federation runtime into its FastAPI app: built and started with the app's
lifespan, or made on first use where no lifespan ran (then without its loop).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from suanli.adapters.platform_key import PlatformIdentity
from suanli.federation_settings import FederationSettings
from suanli.services.federation.runtime import FederationRuntime

_lock = threading.Lock()


def _ephemeral(authority: str) -> PlatformIdentity:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return PlatformIdentity(authority, key, raw)


def build_runtime(app: FastAPI) -> FederationRuntime:
    """The runtime for an app. Without a key file configured (`suanli serve` always sets one)
    the key lives in memory only: an app in a test never writes key files where it runs."""
    ctx = app.state.ctx
    settings: FederationSettings = getattr(app.state, "federation_settings", None) or \
        FederationSettings()
    me = _ephemeral(ctx.authority.body) if settings.key_file is None else None
    public_url = settings.public_url or f"http://{ctx.settings.host}:{ctx.settings.port}"
    return FederationRuntime(ctx.db, ctx.clock, ctx.authority, name=ctx.settings.platform_name,
                             public_url=public_url, settings=settings,
                             claim_timeout_s=ctx.settings.claim_timeout_s, me=me,
                             transport=getattr(app.state, "federation_transport", None))


def runtime_of(app: FastAPI) -> FederationRuntime:
    runtime = getattr(app.state, "federation", None)
    if runtime is None:
        with _lock:
            runtime = getattr(app.state, "federation", None)
            if runtime is None:
                runtime = build_runtime(app)
                runtime.prepare()
                app.state.federation = runtime
    return runtime


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime = build_runtime(app)
    app.state.federation = runtime
    await run_in_threadpool(runtime.start)
    try:
        yield
    finally:
        await run_in_threadpool(runtime.stop)
