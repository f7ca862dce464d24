"""Stop strings: never streamed, not even in part; text before them is never lost."""

import pytest

from alloy.runtime.tasks.generation import StopFilter


def stream(stops: list[str], pieces: list[str]) -> tuple[list[str], bool]:
    stop = StopFilter(stops)
    out = [stop.feed(piece) for piece in pieces] + [stop.flush()]
    return [piece for piece in out if piece], stop.stopped


def test_without_stops_text_passes_through() -> None:
    assert stream([], ["Hello ", "world"]) == (["Hello ", "world"], False)


def test_stop_string_split_across_pieces_is_held_back_then_dropped() -> None:
    pieces, stopped = stream(["END"], ["one E", "N", "D two"])
    assert "".join(pieces) == "one "
    assert stopped


def test_a_false_start_is_released() -> None:
    pieces, stopped = stream(["END"], ["one E", "ND", "x"])
    assert "".join(pieces) == "one "
    pieces, stopped = stream(["END"], ["one E", "arly"])
    assert "".join(pieces) == "one Early" and not stopped


@pytest.mark.parametrize("stops", [["bb", "b"], ["b", "bb"]])
def test_earliest_stop_wins(stops: list[str]) -> None:
    pieces, _ = stream(stops, ["aab", "b"])
    assert "".join(pieces) == "aa"
