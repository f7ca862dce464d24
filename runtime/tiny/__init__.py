"""Tiny random-weight models, built in code and saved in the real on-disk formats.

They let the runtime run its production loading path (`DiffusionPipeline.from_pretrained`,
`AutoModelForCausalLM` / `AutoTokenizer`, `AutoProcessor` / `AutoModelForImageTextToText`) on a CPU with
no model hub: as offline demo models for new users, and as fixtures for the test suite. Every builder is
deterministic for a given seed, returns at once if its target already holds the finished model, and
publishes atomically, so a crashed build never leaves a half model behind.

Minimum size / size multiple of the image pipelines (pass `height` and `width` explicitly):

================  ========  ==============================================
builder           multiple  why
================  ========  ==============================================
zimage            16        VAE scale factor 8 x DiT patch size 2
stable-diffusion  8         the pipeline's own check (= VAE scale factor 8)
qwen-image        16        VAE scale factor 8 x 2x2 latent packing
flux2-klein       16        VAE scale factor 8 x 2x2 latent packing
================  ========  ==============================================
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

if TYPE_CHECKING:
    from .chat import build_tiny_chat, build_tiny_vision_chat
    from .diffusion import (
        build_tiny_flux2_klein,
        build_tiny_qwen_image,
        build_tiny_stable_diffusion,
        build_tiny_zimage,
    )

# Where each builder lives. They are imported on first use (PEP 562) because importing diffusers and
# transformers takes seconds, and a process that only serves chat never needs diffusers.
_HOMES: Final[dict[str, str]] = {
    "build_tiny_zimage": ".diffusion",
    "build_tiny_stable_diffusion": ".diffusion",
    "build_tiny_qwen_image": ".diffusion",
    "build_tiny_flux2_klein": ".diffusion",
    "build_tiny_chat": ".chat",
    "build_tiny_vision_chat": ".chat",
}


def __getattr__(name: str) -> Callable[..., Path]:
    """Import a builder from its submodule on first access."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return cast("Callable[..., Path]", getattr(importlib.import_module(home, __name__), name))


def _deferred(name: str) -> Callable[..., Path]:
    """A stand-in for builder `name` that imports the real one only when called."""

    def build(path: Path, *, seed: int = 0) -> Path:
        return __getattr__(name)(path, seed=seed)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"Build (once) a tiny model at `path`; see `alloy.runtime.tiny.{name}`."
    return build


# Name -> builder; every builder has the signature `(path: Path, *, seed: int = 0) -> Path`.
BUILDERS: Final[dict[str, Callable[..., Path]]] = {
    "zimage": _deferred("build_tiny_zimage"),
    "stable-diffusion": _deferred("build_tiny_stable_diffusion"),
    "qwen-image": _deferred("build_tiny_qwen_image"),
    "flux2-klein": _deferred("build_tiny_flux2_klein"),
    "chat": _deferred("build_tiny_chat"),
    "vision-chat": _deferred("build_tiny_vision_chat"),
}

# The size multiple each image builder's pipeline requires of `height` and `width` (see the table above).
SIZE_MULTIPLES: Final[dict[str, int]] = {
    "zimage": 16,
    "stable-diffusion": 8,
    "qwen-image": 16,
    "flux2-klein": 16,
}

__all__ = [
    "BUILDERS",
    "SIZE_MULTIPLES",
    "build_tiny_chat",
    "build_tiny_flux2_klein",
    "build_tiny_qwen_image",
    "build_tiny_stable_diffusion",
    "build_tiny_vision_chat",
    "build_tiny_zimage",
]
