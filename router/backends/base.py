"""What the router needs from a backend: make replicas exist, say how they stand, hand out endpoints.

The router decides *how many* replicas a model should have (`scaling.desired_replicas`) and calls
`scale`; the backend decides *how*: the local backend starts runtime processes and accounts memory,
the Kubernetes backend writes the AlloyModel's scale subresource. Both report an `Availability`
whose message says, in words, why a model is not ready yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from alloy.modelspec import ModelSpec
from alloy.router.registry import ModelState
from alloy.status import AllocationStatus, Device, ResidentModel


@dataclass(frozen=True)
class Endpoint:
    """A ready replica's base URL; `replica_id` lets the backend count what runs on it."""

    replica_id: str
    url: str


@dataclass(frozen=True)
class Availability:
    status: AllocationStatus
    message: str | None = None
    replicas: int = 0  # wanted: running, starting or waiting for room
    running: int = 0  # placed on devices (starting, loading or ready): what keep-alive keeps warm
    endpoints: list[Endpoint] = field(default_factory=list)


class Backend(Protocol):
    async def start(self) -> None:
        """Begin managing models (probe devices, start watches)."""

    async def close(self) -> None:
        """Stop everything this backend started."""

    def support(self, spec: ModelSpec) -> str | None:
        """None if the model could ever run here, else the reason it cannot (usage ignored)."""

    def availability(self, model_id: str) -> Availability:
        """How the model stands now."""

    async def scale(self, state: ModelState, replicas: int) -> None:
        """Move toward `replicas`; never stops a replica that has a request in flight."""

    def retry(self, model_id: str) -> None:
        """A new request wants a model that failed: allow one more attempt (a failure is not retried
        on its own, so a model that cannot start does not restart in a loop)."""

    def acquire(self, model_id: str) -> Endpoint:
        """A ready endpoint for one request (the least busy); pair with `release`."""

    def release(self, endpoint: Endpoint) -> None:
        """The request on `endpoint` has finished."""

    async def record_activity(self, state: ModelState) -> None:
        """A request on the model ended: persist what must survive a router restart (if anything)."""

    async def residents(self) -> list[ResidentModel]:
        """What is resident now, for `GET /ps` (expiry filled in by the router)."""

    def devices(self) -> list[Device]:
        """The device inventory, with the memory resident models reserve."""
