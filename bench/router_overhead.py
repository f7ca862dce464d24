"""Router overhead: the same small requests sent straight to a runtime and through the router.

Starts `alloy serve` (local backend) with one tiny CPU model kept resident, wakes it, then sends the
same small `POST /image` (1 step, 16x16: the generation is a few ms, so the proxy's cost shows) to the
runtime's own port and to the router, at each concurrency, in alternating rounds so that drift in the
machine's speed hits every target alike. If an `nginx` binary is found, it is added as a reference
proxy in front of the same runtime. Prints p50/p99 latency and requests/s per target, and the router's
added p50 and throughput ratio against direct.

    python bench/router_overhead.py                          # 1 and 64 concurrent, 600 requests each
    python bench/router_overhead.py --concurrency 1 8 64 --requests 1200

Everything shares this machine's cores: the load generator, the router and the runtime. The runtime
runs one generation at a time, so at high concurrency requests queue in the runtime for every target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import yaml

MODEL = "bench-tiny"
BODY = {"model_id": MODEL, "prompt": "x", "num_inference_steps": 1, "width": 16, "height": 16, "seed": 1}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited with {process.returncode}")
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout_s}s")


@contextlib.contextmanager
def router(workdir: Path, cache_dir: Path) -> Iterator[tuple[str, int]]:
    """`alloy serve` with the benchmark model; yields its URL and process id."""
    config = {
        "catalog": False,
        "gpus": "none",
        "memoryBudgetGiB": 4,
        "cacheDir": str(cache_dir),
        "logLevel": "warning",
        "runtimeEnv": {"ALLOY_MAX_QUEUE": "4096", "ALLOY_LOG_LEVEL": "warning"},
        "models": [
            {
                "modelId": MODEL,
                "task": "text-to-image",
                "source": {"builtin": "zimage"},
                "accelerator": {"vendor": "cpu", "count": 0, "memoryGiB": 1},
                "scaling": {"keepAlive": "1h"},
            }
        ],
    }
    (workdir / "alloy.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    command = [sys.executable, "-m", "alloy.cli", "serve", "--config", str(workdir / "alloy.yaml")]
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


@contextlib.contextmanager
def nginx(workdir: Path, upstream: str) -> Iterator[tuple[str, int] | None]:
    """nginx proxying to `upstream` with kept-alive upstream connections, if nginx is installed."""
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")  # not on a user PATH
    if binary is None:
        yield None
        return
    port = free_port()
    host_port = upstream.removeprefix("http://")
    (workdir / "nginx.conf").write_text(f"""
worker_processes 1;
error_log {workdir}/nginx-error.log warn;
pid {workdir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/nginx-body;
    proxy_temp_path {workdir}/nginx-proxy;
    upstream runtime {{ server {host_port}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://runtime;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
""")
    process = subprocess.Popen([binary, "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"])
    try:
        time.sleep(0.5)
        if process.poll() is not None:
            print(f"nginx did not start (see {workdir}/nginx-error.log)", file=sys.stderr)
            yield None
            return
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0
    proxy_cpu_s: float = 0.0  # CPU the proxy process (router or nginx) spent on these requests

    def line(self, name: str) -> str:
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        cpu = f"  proxy CPU {self.proxy_cpu_s / len(ordered) * 1000:5.2f} ms/req" if self.proxy_cpu_s else ""
        latency = f"p50 {p50:7.2f} ms  p99 {p99:7.2f} ms"
        return f"{name:>8}  {latency}  {self.rps:7.1f} req/s  errors {self.errors}{cpu}"

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)


async def load(url: str, *, requests: int, concurrency: int, into: Results) -> None:
    """`requests` POSTs to `url`, `concurrency` at a time; latencies of the successful ones."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        remaining = iter(range(requests))

        async def worker() -> None:
            for _ in remaining:
                started = time.perf_counter()
                response = await client.post(f"{url}/image", json=BODY)
                if response.status_code == 200:
                    into.latencies.append(time.perf_counter() - started)
                else:
                    into.errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        into.seconds += time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--requests", type=int, default=600, help="per target and concurrency")
    parser.add_argument("--rounds", type=int, default=3, help="alternations between targets")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "alloy")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, router(Path(tmp), args.cache_dir) as (router_url, router_pid):
        httpx.post(f"{router_url}/image", json=BODY, timeout=300).raise_for_status()  # wake it
        (resident,) = httpx.get(f"{router_url}/ps").json()["models"]
        direct_url = resident["endpoint"]
        with nginx(Path(tmp), direct_url) as reference:
            targets: dict[str, tuple[str, int | None]] = {
                "direct": (direct_url, None),
                "router": (router_url, router_pid),
            }
            if reference is not None:
                targets["nginx"] = reference
            for url, _ in targets.values():  # warm every connection path
                asyncio.run(load(url, requests=20, concurrency=4, into=Results()))
            for concurrency in args.concurrency:
                results = {name: Results() for name in targets}
                per_round = max(1, args.requests // args.rounds)
                for _ in range(args.rounds):
                    for name, (url, pid) in targets.items():
                        before = cpu_seconds(pid)
                        asyncio.run(
                            load(url, requests=per_round, concurrency=concurrency, into=results[name])
                        )
                        results[name].proxy_cpu_s += cpu_seconds(pid) - before
                print(f"\n{concurrency} concurrent, {per_round * args.rounds} requests per target")
                for name, result in results.items():
                    print(result.line(name))
                direct, routed = results["direct"], results["router"]
                added = (routed.p50 - direct.p50) * 1000
                print(f"router: {added:+.2f} ms at p50, throughput {routed.rps / direct.rps:.0%} of direct")


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


if __name__ == "__main__":
    main()
