"""SSE frames: one tested encoder, JSON data that decodes back to the same event."""

import json

from alloy.events import Event, EventType, decode_sse_data, encode_sse


def test_frame_names_the_event_and_carries_json() -> None:
    frame = encode_sse(Event.progress(step=2, total_steps=4, timestep=500.0)).decode()
    lines = frame.split("\n")
    assert lines[0] == "event: progress"
    assert lines[1].startswith("data: ")
    assert frame.endswith("\n\n")
    data = json.loads(lines[1].removeprefix("data: "))
    assert data == {
        "event": "progress",
        "payload": {"step": 2, "total_steps": 4, "progress": 0.5, "timestep": 500.0},
    }


def test_text_with_newlines_stays_one_data_line() -> None:
    frame = encode_sse(Event.delta(content="line one\nline two\n\n")).decode()
    assert frame.count("\n") == 3
    data_line = frame.split("\n")[1]
    assert decode_sse_data(data_line.removeprefix("data: ")).payload["content"] == "line one\nline two\n\n"


def test_terminal_events() -> None:
    assert Event.completed({}).is_terminal
    assert Event.error(status=500, message="x").is_terminal
    assert not Event.done().is_terminal
    assert Event.queued(reason="r").event is EventType.QUEUED
