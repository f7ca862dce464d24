"""Build-once, crash-safe saving of tiny models.

Every builder writes its model into a fresh temporary sibling of the target directory, drops a marker file
in last, and renames the whole directory into place. A rename within one file system is atomic, so the
target either does not exist or holds a complete model: a crash (or a kill) mid-build leaves at most a
hidden temporary directory behind, never a half model that a later `from_pretrained` would choke on.
Two processes building the same target race harmlessly: the loser finds the winner's complete model and
discards its own copy.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import torch

# Written last into every finished model directory; its presence is what "complete" means.
MARKER_NAME: Final[str] = "alloy-tiny.json"


def read_marker(path: Path) -> dict[str, object] | None:
    """The marker of a finished tiny model at `path`, or None if `path` holds no finished tiny model."""
    try:
        data = json.loads((path / MARKER_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def build_once(path: Path, *, kind: str, version: int, seed: int, write: Callable[[Path], None]) -> Path:
    """Make `path` hold the finished model produced by `write`, building it only if needed.

    `kind` and `version` identify the recipe: bump `version` whenever a builder's output changes so that
    models cached by an older recipe are rebuilt instead of silently reused. A directory at `path` that is
    not a tiny model is never overwritten.
    """
    path = Path(path).absolute()
    wanted: dict[str, object] = {"kind": kind, "version": version, "seed": seed}
    existing = read_marker(path)
    if existing is not None and _matches(existing, wanted):
        return path
    if existing is None and path.exists() and not _is_empty_dir(path):
        raise FileExistsError(
            f"{path} exists and is not a tiny model built by alloy.runtime.tiny; refusing to replace it"
        )

    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.building-", dir=path.parent))
    # mkdtemp makes the directory private (0700); a published model must be readable like any other.
    staging.chmod(0o755)
    try:
        with seeded(seed):
            write(staging)
        # The marker goes in last: a staging directory without it is by definition unfinished.
        (staging / MARKER_NAME).write_text(
            json.dumps(wanted, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        _publish(staging, path, wanted)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _is_empty_dir(path: Path) -> bool:
    """Whether `path` is a directory with nothing in it (which a rename may replace, e.g. a fresh mkdir)."""
    return path.is_dir() and next(path.iterdir(), None) is None


def _matches(marker: dict[str, object], wanted: dict[str, object]) -> bool:
    """Whether a finished model was built by the same recipe and seed as requested."""
    return all(marker.get(key) == value for key, value in wanted.items())


def _publish(staging: Path, path: Path, wanted: dict[str, object]) -> None:
    """Move the finished `staging` directory to `path`, replacing an outdated tiny model if one is there."""
    try:
        staging.rename(path)  # fails if `path` is a non-empty directory
        return
    except OSError:
        existing = read_marker(path)
        if existing is not None and _matches(existing, wanted):
            return  # another process finished the same build first; ours is discarded by the caller
        if existing is None:
            raise
    # `path` holds a tiny model from another recipe or seed: move it aside, then move ours in. Between the
    # two renames `path` briefly does not exist, which readers treat as "not built" -- never as half-built.
    retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.retired-", dir=path.parent))
    path.rename(retired / "model")
    staging.rename(path)
    shutil.rmtree(retired, ignore_errors=True)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a build on the CPU under a fixed seed, without disturbing the caller's random state.

    Weights are always initialised on the CPU from the CPU generator, so the same seed gives the same bytes
    on every machine, even if the caller changed torch's default device.
    """
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        torch.default_generator.manual_seed(seed)
        yield


def reseed(seed: int, component: int) -> None:
    """Seed torch for one component so its weights do not depend on which components were built before it."""
    # Only the CPU generator: `torch.manual_seed` would also reseed the caller's CUDA generators.
    torch.default_generator.manual_seed(seed * 1009 + component)
