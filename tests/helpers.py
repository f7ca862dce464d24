"""Small client-side helpers for tests: read an SSE stream into events, decode images."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import httpx
from httpx_sse import connect_sse
from PIL import Image

from alloy.events import Event, decode_sse_data


def post_events(
    url: str,
    body: dict[str, Any],
    *,
    timeout: float = 60.0,
    arrivals: dict[str, float] | None = None,
    headers: dict[str, str] | None = None,
) -> list[Event]:
    """POST with `stream: true` and collect every SSE event, checking that frame type and data agree.

    `arrivals`, if given, receives the monotonic time at which each kind of event first arrived."""
    events = []
    with (
        httpx.Client(timeout=timeout) as client,
        connect_sse(client, "POST", url, json={**body, "stream": True}, headers=headers or {}) as source,
    ):
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for sse in source.iter_sse():
            event = decode_sse_data(sse.data)
            assert sse.event == event.event.value
            events.append(event)
            if arrivals is not None:
                arrivals.setdefault(event.event.value, time.monotonic())
    return events


def kinds(events: list[Event]) -> list[str]:
    return [event.event.value for event in events]


def decode_image(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))
