"""Router errors as HTTP answers: FastAPI's `{"detail": ...}` on native routes, OpenAI's shape on `/v1/*`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from alloy.disconnect import ClientDisconnected
from alloy.http_errors import is_openai, on_validation_error
from alloy.openai_errors import openai_error_body
from alloy.router.errors import RouterError, Unauthorized


async def on_router_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RouterError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else None
    if is_openai(request):
        return JSONResponse(openai_error_body(error.status, error.message), error.status, headers)
    return JSONResponse({"detail": error.message}, error.status, headers)


async def on_client_disconnected(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": "the client disconnected"}, 499)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RouterError, on_router_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(ClientDisconnected, on_client_disconnected)
