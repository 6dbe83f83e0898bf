"""The node's federation runtime as request handlers reach it."""

from __future__ import annotations

from fastapi import FastAPI

from suanli.services.peering.runtime import FederationRuntime


def runtime_of(app: FastAPI) -> FederationRuntime:
    return app.state.ctx.federation_runtime()
