"""The runtime's errors; each carries its HTTP status and is mapped to a response in one place (`app.py`).

RuntimeFailure                    500  generation failed inside the pipeline
├── InvalidRequest                422  a field is wrong; names the field and the reason
├── ModelNotFound                 404  another model id, or a route this model does not serve
├── QueueFull                     429  the bounded queue is full; carries Retry-After
├── NotReady                      503  the model is still loading (or failed to load)
└── Cancelled                     499  the client went away; raised between steps, never answered
"""

from __future__ import annotations

from collections.abc import Sequence

from alloy.schemas import ErrorDetail


class RuntimeFailure(Exception):
    status = 500
    kind = "generation_failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(RuntimeFailure):
    status = 422
    kind = "invalid_request"

    def __init__(self, field: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.loc: list[str | int] = ["body", *field]

    @property
    def field(self) -> str:
        """The field path as a dotted name, e.g. `messages.0.content`."""
        return ".".join(str(part) for part in self.loc[1:])

    def details(self) -> list[ErrorDetail]:
        return [ErrorDetail(loc=self.loc, msg=self.message, type="value_error")]


class ModelNotFound(RuntimeFailure):
    status = 404
    kind = "model_not_found"


class QueueFull(RuntimeFailure):
    status = 429
    kind = "queue_full"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotReady(RuntimeFailure):
    status = 503
    kind = "not_ready"


class Cancelled(RuntimeFailure):
    """Raised inside the worker when the client disconnected; stops the pipeline between steps."""

    status = 499
    kind = "cancelled"

    def __init__(self, message: str = "the client disconnected") -> None:
        super().__init__(message)
