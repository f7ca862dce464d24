"""The one place runtime errors become HTTP responses, in the shapes of `alloy.http_errors`.
A 429 carries `Retry-After`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from alloy.http_errors import is_openai, on_validation_error
from alloy.openai_errors import openai_error_body
from alloy.runtime.errors import InvalidRequest, QueueFull, RuntimeFailure


async def on_runtime_failure(request: Request, failure: Exception) -> JSONResponse:
    assert isinstance(failure, RuntimeFailure)
    headers = {"Retry-After": str(failure.retry_after_s)} if isinstance(failure, QueueFull) else None
    if is_openai(request):
        param = failure.field if isinstance(failure, InvalidRequest) else None
        body = openai_error_body(failure.status, failure.message, param=param)
        return JSONResponse(body, failure.status, headers)
    detail: Any = (
        jsonable_encoder(failure.details()) if isinstance(failure, InvalidRequest) else failure.message
    )
    return JSONResponse({"detail": detail}, failure.status, headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RuntimeFailure, on_runtime_failure)
    app.add_exception_handler(RequestValidationError, on_validation_error)
