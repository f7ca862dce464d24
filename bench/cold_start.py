"""Cold start: how long a request for a sleeping model waits, and how much of that is the router's.

Starts `alloy serve` (local backend) with one tiny CPU model that goes back to sleep right after each
request (keep_alive false), then, per run, streams one request and records when `received`,
`allocated` and `completed` arrive. The runtime reports its own side: when its process started (the
OS's clock), how long loading the model took in-process (`load_seconds`) and when it became ready
(`ready_at`). So a wake splits into:

    spawn      request sent -> runtime process created (the router deciding and forking; /proc, ~10 ms)
    boot       process created -> model load begins (interpreter, torch, diffusers imports)
    load       the model's from_pretrained and move to the device, measured in the runtime
    notice     runtime ready -> client hears `allocated` (the router noticing and forwarding)

"Wake overhead" is spawn + notice: what the router adds to the runtime's own start and load.

    python bench/cold_start.py                 # 5 runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from httpx_sse import connect_sse

sys.path.insert(0, str(Path(__file__).parent))
from router_overhead import MODEL, router  # a sibling script, not a package

BODY = {"model_id": MODEL, "prompt": "x", "num_inference_steps": 2, "width": 32, "height": 32}


def one_wake(url: str, router_pid: int) -> dict[str, float]:
    """One cold request; the phases of its wake, in seconds."""
    arrivals: dict[str, float] = {}
    info: dict[str, float] = {}
    sent = time.time()
    with httpx.Client(timeout=300) as client:
        body = {**BODY, "stream": True, "keep_alive": False}
        with connect_sse(client, "POST", f"{url}/image", json=body) as events:
            for event in events.iter_sse():
                arrivals.setdefault(event.event, time.time())
                if event.event == "allocated":
                    endpoint = httpx.get(f"{url}/ps").json()["models"][0]["endpoint"]
                    runtime = httpx.get(f"{endpoint}/info").json()
                    (child,) = psutil.Process(router_pid).children()
                    info = {
                        "created": created_at(child.pid),
                        "load": runtime["load_seconds"],
                        "ready_at": runtime["ready_at"],
                    }
    assert "completed" in arrivals, f"the request failed: {sorted(arrivals)}"
    return {
        "wake": arrivals["allocated"] - sent,
        "spawn": info["created"] - sent,
        "boot": info["ready_at"] - info["load"] - info["created"],
        "load": info["load"],
        "notice": arrivals["allocated"] - info["ready_at"],
        "generate": arrivals["completed"] - arrivals["allocated"],
    }


def created_at(pid: int) -> float:
    """When process `pid` started, on the wall clock, to about 10 ms (psutil rounds boot time to whole
    seconds): its start in clock ticks since boot, against the uptime now."""
    start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - (uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


def wait_asleep(url: str) -> None:
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/ps").json()["models"]:
        if time.monotonic() > deadline:
            raise SystemExit("the model did not go back to sleep")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "alloy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, router(Path(tmp), args.cache_dir) as (url, pid):
        httpx.post(
            f"{url}/image", json={**BODY, "keep_alive": False}, timeout=300
        ).raise_for_status()  # builds it
        runs = []
        for _ in range(args.runs):
            wait_asleep(url)
            runs.append(one_wake(url, pid))
        print(f"{args.runs} cold requests (seconds, median [min-max])")
        for phase in ("wake", "spawn", "boot", "load", "notice", "generate"):
            values = [run[phase] for run in runs]
            print(f"{phase:>9}  {statistics.median(values):7.3f}  [{min(values):.3f}-{max(values):.3f}]")
        overhead = [run["spawn"] + run["notice"] for run in runs]
        print(f"wake overhead (spawn + notice): median {statistics.median(overhead):.3f} s")


if __name__ == "__main__":
    main()
