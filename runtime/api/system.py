"""Process endpoints: `/health` (alive), `/ready` (model loaded), `/info`, `/metrics` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from alloy.runtime.api.native import runtime_state
from alloy.runtime.state import Phase

router = APIRouter(tags=["system"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """200 while the process can serve; 500 once loading failed, so a liveness probe restarts it."""
    state = runtime_state(request)
    if state.phase is Phase.FAILED:
        return JSONResponse({"status": "failed", "error": state.error}, status_code=500)
    return JSONResponse({"status": "ok", "phase": state.phase.value})


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """200 once the model is in memory; 503 while loading or after a failed load."""
    state = runtime_state(request)
    body: dict[str, Any] = {"status": state.phase.value, "model_id": state.spec.model_id}
    if state.phase is Phase.READY:
        return JSONResponse(body)
    return JSONResponse({**body, "error": state.error}, status_code=503)


@router.get("/info")
async def info(request: Request) -> dict[str, Any]:
    return runtime_state(request).info()


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(runtime_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
