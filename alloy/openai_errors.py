"""OpenAI's error shape, which the official client turns into its typed exceptions
(`NotFoundError`, `UnprocessableEntityError`, `RateLimitError`, ...). Runtime and router both answer
`/v1/*` errors in it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


def openai_error_body(status: int, message: str, *, param: str | None = None) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    info = ErrorInfo(message=message, type=kind, param=param, code=str(status))
    return ErrorResponse(error=info).model_dump()
