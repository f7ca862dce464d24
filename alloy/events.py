"""Progress events of a request, and their Server-Sent Events encoding.

A streaming request yields, in order: `received`, `queued` (zero or more, each saying why it waits),
`allocated`, then `progress` (image) or `delta` (chat) events, then `completed` or `error`, and
always `done` last. Every frame is `event: <type>` plus `data: <json of the whole event>`, so a
client reading only `data:` lines still sees the type.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class EventType(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    ALLOCATED = "allocated"
    PROGRESS = "progress"
    DELTA = "delta"
    COMPLETED = "completed"
    ERROR = "error"
    DONE = "done"


class Event(BaseModel):
    """One event: its type and a JSON payload."""

    event: EventType
    payload: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def received(cls, *, request_id: str, model_id: str) -> Event:
        return cls(event=EventType.RECEIVED, payload={"request_id": request_id, "model_id": model_id})

    @classmethod
    def queued(cls, *, reason: str, position: int | None = None, **extra: Any) -> Event:
        return cls(event=EventType.QUEUED, payload={"reason": reason, "position": position, **extra})

    @classmethod
    def allocated(cls, *, model_id: str, gpu_id: str) -> Event:
        return cls(event=EventType.ALLOCATED, payload={"model_id": model_id, "gpu_id": gpu_id})

    @classmethod
    def progress(cls, *, step: int, total_steps: int, timestep: float | None) -> Event:
        fraction = round(step / total_steps, 4) if total_steps else 1.0
        return cls(
            event=EventType.PROGRESS,
            payload={"step": step, "total_steps": total_steps, "progress": fraction, "timestep": timestep},
        )

    @classmethod
    def delta(cls, *, content: str) -> Event:
        return cls(event=EventType.DELTA, payload={"content": content})

    @classmethod
    def completed(cls, payload: dict[str, Any]) -> Event:
        return cls(event=EventType.COMPLETED, payload=payload)

    @classmethod
    def error(cls, *, status: int, message: str, **extra: Any) -> Event:
        return cls(event=EventType.ERROR, payload={"status": status, "message": message, **extra})

    @classmethod
    def done(cls) -> Event:
        return cls(event=EventType.DONE)

    @property
    def is_terminal(self) -> bool:
        """True for the events after which only `done` follows."""
        return self.event in (EventType.COMPLETED, EventType.ERROR)


def encode_sse(event: Event) -> bytes:
    """One SSE frame; JSON never contains a raw newline, so one `data:` line suffices."""
    data = json.dumps(event.model_dump(mode="json"), separators=(",", ":"))
    return f"event: {event.event.value}\ndata: {data}\n\n".encode()


def decode_sse_data(data: str) -> Event:
    """The event carried by one frame's `data:` field."""
    return Event.model_validate_json(data)
