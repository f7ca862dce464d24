"""Plain-text tables for `alloy list` and `alloy ps`."""

from __future__ import annotations

from collections.abc import Sequence

GIB = 2**30


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell; `None` prints as `-`."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def gib(value: int | None) -> str | None:
    return None if value is None else f"{value / GIB:.1f} GiB"
