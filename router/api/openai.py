"""OpenAI routes, forwarded by `model`; `keep_alive`, `priority` and `allocation_*` ride as extra body fields
(the SDK's `extra_body`). `GET /v1/models` lists every model the router serves."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ConfigDict, Field

from alloy.router.api.auth import require_api_key
from alloy.router.api.dispatch import dispatch, router_of
from alloy.schemas import RoutingFields

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(require_api_key)])


class OpenAIBody(RoutingFields):
    """The fields the router reads; the rest goes to the runtime untouched, which validates it."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)


class OpenAIImageBody(OpenAIBody):
    stream: Literal[False] = Field(  # narrowed: images are never streamed
        default=False, description="Partial images are not streamed; use POST /image for progress events."
    )


@router.get("/models")
async def list_models(request: Request) -> dict[str, object]:
    core = router_of(request)
    cards = [
        {"id": state.model_id, "object": "model", "created": core.started_at, "owned_by": "alloy"}
        for state in core.registry
    ]
    return {"object": "list", "data": cards}


@router.post("/images/generations")
async def images_generations(body: OpenAIImageBody, request: Request) -> Response:
    return await dispatch(request, model_id=body.model, fields=body, surface="openai")


@router.post("/chat/completions")
async def chat_completions(body: OpenAIBody, request: Request) -> Response:
    return await dispatch(request, model_id=body.model, fields=body, surface="openai")
