"""Router errors as HTTP answers: FastAPI's `{"detail": ...}` on native routes, OpenAI's shape on `/v1/*`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from alloy.disconnect import ClientDisconnected
from alloy.openai_errors import openai_error_body
from alloy.router.errors import RouterError, Unauthorized


def _is_openai(request: Request) -> bool:
    return request.url.path.startswith("/v1/")


async def on_router_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RouterError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else None
    if _is_openai(request):
        return JSONResponse(openai_error_body(error.status, error.message), error.status, headers)
    return JSONResponse({"detail": error.message}, error.status, headers)


async def on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in error.errors()]
    if _is_openai(request):
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        param = ".".join(str(part) for part in first["loc"][1:]) or None
        return JSONResponse(openai_error_body(422, f"{param}: {first['msg']}", param=param), 422)
    return JSONResponse({"detail": jsonable_encoder(errors)}, 422)


async def on_client_disconnected(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": "the client disconnected"}, 499)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RouterError, on_router_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(ClientDisconnected, on_client_disconnected)
