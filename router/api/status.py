"""What the router knows: `GET /models` (grouped by output), `GET /ps` (resident now), `/health`,
`/metrics`."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from alloy.router.api.auth import require_api_key
from alloy.router.api.dispatch import router_of
from alloy.status import TASK_CAPABILITIES, ModelEntry, ModelsListing, PsResponse, output_modality

protected = APIRouter(tags=["status"], dependencies=[Depends(require_api_key)])
public = APIRouter(tags=["status"])


@protected.get("/models", response_model=ModelsListing)
async def models(request: Request) -> ModelsListing:
    core = router_of(request)
    listing = ModelsListing()
    for state in core.registry:
        availability = core.backend.availability(state.model_id)
        reason = core.backend.support(state.spec)
        entry = ModelEntry(
            model_id=state.model_id,
            task=state.spec.task,
            active_requests=state.active_requests,
            is_supported=reason is None,
            capabilities=[TASK_CAPABILITIES[state.spec.task]],
            allocation_status=availability.status,
            replicas=availability.replicas,
            message=availability.message or reason,
        )
        getattr(listing, output_modality(state.spec.task).value).append(entry)
    return listing


@protected.get("/ps", response_model=PsResponse)
async def ps(request: Request) -> PsResponse:
    core = router_of(request)
    residents = await core.backend.residents()
    for resident in residents:
        if resident.model_id not in core.registry:
            continue
        state = core.registry.get(resident.model_id)
        expiry = state.expires_at_or_none()
        if expiry is not None and state.active_requests == 0:  # busy models do not expire
            resident.expires_at = datetime.fromtimestamp(expiry, UTC).isoformat().replace("+00:00", "Z")
    return PsResponse(models=residents, devices=core.backend.devices())


@public.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@public.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(router_of(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
