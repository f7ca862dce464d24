"""HTTP overhead of the runtime: the same generation called directly on the pipeline and through HTTP.

Builds the tiny Z-Image-style pipeline, loads it here with `DiffusionPipeline.from_pretrained`, starts
`alloy runtime` on the same files in a separate process, then alternates direct calls and HTTP calls
(so drift in the machine's speed hits both alike) and prints both medians and their ratio.

    python bench/runtime_overhead.py                  # 256x256, 8 steps, 15 runs each
    python bench/runtime_overhead.py --size 512 --steps 4 --runs 20

The direct side does what a script would do: call the pipeline and take PIL images. The HTTP side adds
everything the server does: validation, the queue and worker thread, progress events, PNG encoding,
base64, JSON and the loopback round trip.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import torch
from diffusers import DiffusionPipeline
from prometheus_client.parser import text_string_to_metric_families

from alloy.runtime.tasks.text_to_image import encode_image
from alloy.runtime.tiny import BUILDERS
from alloy.schemas import OutputFormat


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def runtime_process(model: Path, port: int) -> Iterator[str]:
    command = [
        sys.executable,
        "-m",
        "alloy.cli",
        "runtime",
        "--model",
        "bench",
        "--source",
        str(model),
        "--task",
        "text-to-image",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the runtime did not become ready")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def generation_seconds(client: httpx.Client, url: str) -> float:
    """The runtime's own total of time spent generating (its Prometheus histogram's sum)."""
    for family in text_string_to_metric_families(client.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == "alloy_runtime_generation_seconds_sum":
                return float(sample.value)
    return 0.0


def png_seconds(pipe: DiffusionPipeline, params: dict[str, object]) -> float:
    image = pipe(**params, generator=torch.Generator("cpu").manual_seed(0), output_type="pil").images[0]
    return timed(lambda: encode_image(image, OutputFormat.PNG))


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    cache = Path(os.environ.get("ALLOY_BENCH_CACHE", Path(tempfile.gettempdir()) / "alloy-bench"))
    model = BUILDERS["zimage"](cache / "zimage")
    pipe = DiffusionPipeline.from_pretrained(str(model), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    params = {
        "prompt": "a red fox in the snow",
        "width": args.size,
        "height": args.size,
        "num_inference_steps": args.steps,
        "guidance_scale": 0.0,
    }

    def direct() -> None:
        pipe(**params, generator=torch.Generator("cpu").manual_seed(0), output_type="pil")

    with runtime_process(model, free_port()) as url, httpx.Client(timeout=600) as client:
        in_worker_s: list[float] = []

        def over_http() -> None:
            before = generation_seconds(client, url)
            response = client.post(f"{url}/image", json={"model_id": "bench", "seed": 0, **params})
            response.raise_for_status()
            in_worker_s.append(generation_seconds(client, url) - before)

        for warm_up in (direct, over_http, direct, over_http):
            warm_up()
        direct_s, http_s = [], []
        for _ in range(args.runs):
            direct_s.append(timed(direct))
            http_s.append(timed(over_http))

    direct_median, http_median = statistics.median(direct_s), statistics.median(http_s)
    print(
        f"generation: {args.size}x{args.size}, {args.steps} steps, {args.runs} runs each, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"direct pipeline call  median {direct_median * 1000:8.1f} ms")
    print(f"HTTP /image           median {http_median * 1000:8.1f} ms")
    print(
        f"  of which the pipeline call in the runtime's worker {statistics.median(in_worker_s) * 1000:.1f} ms"
    )
    print(f"PNG encoding of one such image here: {png_seconds(pipe, params) * 1000:.1f} ms")
    ratio = http_median / direct_median
    print(f"ratio {ratio:.3f}  (overhead {(ratio - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()
