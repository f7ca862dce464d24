"""The one place errors become HTTP responses.

Native routes answer FastAPI's shape (`{"detail": [{"loc", "msg", "type"}]}` for 422, else
`{"detail": "..."}`); `/v1/*` routes answer OpenAI's (`{"error": {"message", "type", "param", "code"}}`),
which the official client turns into its typed exceptions. A 429 carries `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from alloy.openai_errors import openai_error_body
from alloy.runtime.errors import InvalidRequest, QueueFull, RuntimeFailure


def _is_openai(request: Request) -> bool:
    return request.url.path.startswith("/v1/")


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc]
    return ".".join(parts[1:] if parts and parts[0] == "body" else parts)


async def on_runtime_failure(request: Request, failure: Exception) -> JSONResponse:
    assert isinstance(failure, RuntimeFailure)
    headers = {"Retry-After": str(failure.retry_after_s)} if isinstance(failure, QueueFull) else None
    if _is_openai(request):
        param = failure.field if isinstance(failure, InvalidRequest) else None
        body = openai_error_body(failure.status, failure.message, param=param)
        return JSONResponse(body, failure.status, headers)
    detail: Any = (
        jsonable_encoder(failure.details()) if isinstance(failure, InvalidRequest) else failure.message
    )
    return JSONResponse({"detail": detail}, failure.status, headers)


async def on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    if _is_openai(request):
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = _field_name(first["loc"])
        message = "; ".join(f"{_field_name(e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse(openai_error_body(422, message, param=field or None), 422)
    keep = ("loc", "msg", "type")
    return JSONResponse(
        {"detail": jsonable_encoder([{k: e[k] for k in keep if k in e} for e in errors])}, 422
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RuntimeFailure, on_runtime_failure)
    app.add_exception_handler(RequestValidationError, on_validation_error)
