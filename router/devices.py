"""This machine's devices for the local backend: GPUs (as torch sees them) and a RAM budget for CPU models.

GPUs are found by asking torch in a child process: the router itself never imports torch (it stays
small and starts fast), and the answer is exactly what the runtimes will see.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import psutil

from alloy.status import Device

log = logging.getLogger(__name__)

GIB = 2**30
DEFAULT_RAM_SHARE = 0.8

_PROBE = """
import json
try:
    import torch
except ImportError:
    print("[]")
else:
    vendor = "amd" if getattr(torch.version, "hip", None) else "nvidia"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    print(json.dumps([{"index": i, "vendor": vendor, "name": torch.cuda.get_device_name(i),
                       "total": torch.cuda.get_device_properties(i).total_memory} for i in range(count)]))
"""


def probe_gpus(timeout_s: float = 120.0) -> list[Device]:
    """The GPUs torch can use here, or none (no torch, no driver, or the probe failed)."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout_s, check=True
        )
        found = json.loads(result.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as error:
        log.warning("no GPUs found: the torch probe failed (%s)", error)
        return []
    return [
        Device(
            id=f"cuda:{gpu['index']}",
            kind=gpu["vendor"],
            name=gpu["name"],
            memory_total_bytes=int(gpu["total"]),
            memory_reserved_bytes=0,
        )
        for gpu in found
    ]


def host_memory(budget_gib: float | None) -> Device:
    """The RAM CPU models may reserve: the configured budget, else a share of this machine's memory."""
    total = psutil.virtual_memory().total
    budget = int(budget_gib * GIB) if budget_gib is not None else int(total * DEFAULT_RAM_SHARE)
    return Device(
        id="cpu",
        kind="cpu",
        name=f"host memory ({total / GIB:.0f} GiB)",
        memory_total_bytes=budget,
        memory_reserved_bytes=0,
    )
