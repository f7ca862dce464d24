"""Turn a spec's `source` into something `from_pretrained` takes: a directory or a Hub repo id.

Builtin demo models are built once into the cache directory and then loaded like any directory,
so they exercise the same loader as production models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alloy.modelspec import Source
from alloy.runtime.errors import RuntimeFailure


@dataclass(frozen=True)
class Location:
    """Arguments for `from_pretrained`: the name or path, and the revision for Hub repos."""

    name_or_path: str
    revision: str | None = None

    def pretrained_kwargs(self) -> dict[str, str]:
        return {"revision": self.revision} if self.revision else {}


def locate(source: Source, *, cache_dir: Path) -> Location:
    """Resolve a source; builds a builtin model on first use (a few seconds on a CPU)."""
    if source.path is not None:
        path = Path(source.path).expanduser()
        if not path.exists():
            raise RuntimeFailure(f"source path {path} does not exist")
        return Location(str(path))
    if source.builtin is not None:
        return Location(str(build_builtin(source.builtin, cache_dir=cache_dir)))
    assert source.huggingface is not None  # Source validates that exactly one is set
    return Location(source.huggingface.repo, source.huggingface.revision)


def build_builtin(name: str, *, cache_dir: Path) -> Path:
    from alloy.runtime.tiny import BUILDERS  # only demo models need the builders

    builder = BUILDERS.get(name)
    if builder is None:
        raise RuntimeFailure(f"builtin model {name!r} is not one of {sorted(BUILDERS)}")
    return builder(cache_dir / "builtin" / name)
