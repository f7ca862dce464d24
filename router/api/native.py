"""Native routes, forwarded by model: `POST /image` (`model_id`) and `POST /chat` (`model`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from alloy.router.api.auth import require_api_key
from alloy.router.api.dispatch import dispatch
from alloy.schemas import ChatRequest, ChatResponse, ImageRequest, ImageResponse

router = APIRouter(tags=["native"], dependencies=[Depends(require_api_key)])
STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE events with stream"}
}


@router.post("/image", response_model=ImageResponse, responses=STREAM_DOC)
async def image(body: ImageRequest, request: Request) -> Response:
    return await dispatch(request, model_id=body.model_id, fields=body, surface="native")


@router.post("/chat", response_model=ChatResponse, responses=STREAM_DOC)
async def chat(body: ChatRequest, request: Request) -> Response:
    return await dispatch(request, model_id=body.model, fields=body, surface="native")
