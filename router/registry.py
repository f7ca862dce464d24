"""What the router knows about each model: its spec, its active requests, and when it may sleep.

The registry holds no processes and no connections; backends do. Its state changes only on the event
loop, so a check-then-act (is the model idle? then stop it) is never interleaved with a new request.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from alloy.modelspec import ModelSpec
from alloy.router.errors import UnknownModel
from alloy.router.scaling import expires_at, keep_alive_seconds


@dataclass
class ModelState:
    """One model's request bookkeeping."""

    spec: ModelSpec
    active_requests: int = 0
    keep_alive_s: float = 0.0
    expires_at: float = 0.0  # a model nobody used is already expired: it stays asleep
    last_used: float = 0.0
    waiting_priorities: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keep_alive_s = self.spec.scaling.keep_alive

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    def expired(self, now: float) -> bool:
        return self.active_requests == 0 and now >= self.expires_at

    def begin(self, *, keep_alive: bool | float | None, now: float) -> None:
        """A request arrived; the latest request's keep_alive is the one that counts."""
        self.active_requests += 1
        self.keep_alive_s = keep_alive_seconds(keep_alive, self.spec.scaling.keep_alive)
        self.last_used = now

    def end(self, *, now: float) -> None:
        """A request finished (or its client left); the expiry runs from now."""
        self.active_requests -= 1
        self.last_used = now
        self.expires_at = expires_at(now, self.keep_alive_s)

    @property
    def waiting_priority(self) -> int | None:
        """The highest priority among requests waiting for this model to wake."""
        return max(self.waiting_priorities, default=None)

    def expires_at_or_none(self) -> float | None:
        return None if math.isinf(self.expires_at) else self.expires_at


class Registry:
    """Every model the router serves, by id."""

    def __init__(self, specs: dict[str, ModelSpec]) -> None:
        self._models = {model_id: ModelState(spec) for model_id, spec in specs.items()}
        self._change = asyncio.Event()

    def notify_change(self) -> None:
        """A backend saw a replica become ready or fail: wake the requests waiting on a model now,
        rather than at their next poll."""
        self._change.set()
        self._change = asyncio.Event()

    async def wait_for_change(self, timeout_s: float) -> None:
        """Return on the next change, or after `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._change.wait(), timeout_s)

    def get(self, model_id: str) -> ModelState:
        try:
            return self._models[model_id]
        except KeyError:
            raise UnknownModel(
                f"model {model_id!r} is not served here; GET /models lists the models"
            ) from None

    def __iter__(self) -> Iterator[ModelState]:
        return iter(list(self._models.values()))

    def __contains__(self, model_id: str) -> bool:
        return model_id in self._models

    def upsert(self, spec: ModelSpec) -> ModelState:
        """Add a model, or update its spec and keep its bookkeeping (a watched AlloyModel changed)."""
        state = self._models.get(spec.model_id)
        if state is None:
            state = self._models[spec.model_id] = ModelState(spec)
        else:
            state.spec = spec
        return state

    def remove(self, model_id: str) -> None:
        self._models.pop(model_id, None)
