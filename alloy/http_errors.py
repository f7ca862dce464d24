"""HTTP error shapes both web apps (runtime and router) answer in, so a client sees one API.

Native routes answer FastAPI's shape (`{"detail": [{"loc", "msg", "type"}]}` for 422, else
`{"detail": "..."}`); `/v1/*` routes answer OpenAI's (`{"error": {"message", "type", "param", "code"}}`),
which the official client turns into its typed exceptions. Only the web extras import this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from alloy.openai_errors import openai_error_body

# Streams must reach the client as they are written: no caching, no buffering in nginx-like proxies.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def is_openai(request: Request) -> bool:
    return request.url.path.startswith("/v1/")


def field_name(loc: Sequence[Any]) -> str:
    """`messages.0.content` for FastAPI's `("body", "messages", 0, "content")`."""
    parts = [str(part) for part in loc]
    return ".".join(parts[1:] if parts and parts[0] == "body" else parts)


async def on_validation_error(request: Request, error: Exception) -> JSONResponse:
    """422 naming every field at fault and why; OpenAI's `param` is the first of them."""
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    if is_openai(request):
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        message = "; ".join(f"{field_name(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return JSONResponse(openai_error_body(422, message, param=field_name(first["loc"]) or None), 422)
    keep = ("loc", "msg", "type")
    return JSONResponse(
        {"detail": jsonable_encoder([{k: e[k] for k in keep if k in e} for e in errors])}, 422
    )
