"""Which device and dtype a model runs on, and how much memory it holds there."""

from __future__ import annotations

import psutil
import torch

from alloy.runtime.errors import RuntimeFailure

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_device(setting: str) -> torch.device:
    """`auto` picks the first GPU (CUDA, which is also ROCm's torch API), else the CPU."""
    if setting == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeFailure(f"device {setting!r} was asked for, but torch sees no GPU")
    return device


def resolve_dtype(setting: str | None, device: torch.device) -> torch.dtype:
    """bfloat16 on a GPU and float32 on a CPU unless the spec says otherwise."""
    if setting is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return _DTYPES[setting.lower()]
    except KeyError:
        raise RuntimeFailure(f"dtype {setting!r} is not one of {sorted(set(_DTYPES))}") from None


def device_label(device: torch.device) -> str:
    """`cuda:0` or `cpu`, as responses report it in `gpu_id`."""
    if device.type == "cuda":
        return f"cuda:{device.index or 0}"
    return device.type


def memory_report(device: torch.device) -> dict[str, int]:
    """Bytes in use: the process's resident memory, plus the GPU's allocator when on one."""
    report = {"rss_bytes": psutil.Process().memory_info().rss}
    if device.type == "cuda":
        report["gpu_allocated_bytes"] = torch.cuda.memory_allocated(device)
        report["gpu_reserved_bytes"] = torch.cuda.memory_reserved(device)
        report["gpu_peak_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
        report["gpu_total_bytes"] = torch.cuda.get_device_properties(device).total_memory
    return report
