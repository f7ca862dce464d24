"""The router's own errors, each with its HTTP status; errors of a runtime pass through untouched.

RouterError                 500
├── UnknownModel            404  no such model id
├── Unauthorized            401  API keys are configured and the request has none of them
├── NotSupported            503  this machine or cluster can never run the model
├── AllocationFailed        503  the model's runtime failed while starting (carries its last log lines)
├── AllocationTimeout       503  the model did not become ready in time (says what it waited for)
└── UpstreamUnavailable     502  the runtime could not be reached
"""

from __future__ import annotations


class RouterError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownModel(RouterError):
    status = 404


class Unauthorized(RouterError):
    status = 401


class NotSupported(RouterError):
    status = 503


class AllocationFailed(RouterError):
    status = 503


class AllocationTimeout(RouterError):
    status = 503


class UpstreamUnavailable(RouterError):
    status = 502
