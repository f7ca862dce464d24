"""`alloy serve`, `alloy list` and `alloy ps` as a user runs them, in separate processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def alloy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alloy.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def start_serve(tmp_path: Path, config: dict[str, object]) -> tuple[subprocess.Popen[str], str]:
    """`alloy serve --config` in its own process, once it answers /health."""
    (tmp_path / "alloy.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    command = [sys.executable, "-m", "alloy.cli", "serve", "--config", str(tmp_path / "alloy.yaml")]
    server = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return server, url
        except httpx.TransportError:
            assert time.monotonic() < deadline and server.poll() is None, "alloy serve did not come up"
            time.sleep(0.2)


def test_serve_with_a_config_then_list_and_ps(tmp_path: Path, tiny_model: Callable[[str], Path]) -> None:
    config = {
        "catalog": True,
        "gpus": "none",
        "memoryBudgetGiB": 4,
        "allocationPoll": "100ms",
        "cacheDir": str(tmp_path),
        "models": [
            {
                "modelId": "my-chat",
                "task": "chat",
                "source": {"path": str(tiny_model("chat"))},
                "accelerator": {"vendor": "cpu", "count": 0, "memoryGiB": 1},
                "scaling": {"keepAlive": "10m"},
                "priority": 3,
            }
        ],
    }
    server, url = start_serve(tmp_path, config)
    try:
        listed = alloy("list", "--url", url)
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert lines[0].split() == ["MODEL", "TASK", "STATUS", "ACTIVE", "REPLICAS", "SUPPORTED", "MESSAGE"]
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        assert {
            "qwen-image",
            "z-image-turbo",
            "flux2-dev",
            "flux2-dev-turbo",
            "qwen3-8b",
            "alloy-tiny",
            "alloy-tiny-chat",
            "my-chat",
        } <= set(rows), "the catalog and the configured model"
        assert rows["my-chat"][2:6] == ["deallocated", "0", "0", "yes"]
        assert rows["z-image-turbo"][5] == "no", "no GPU here"

        reply = httpx.post(
            f"{url}/chat",
            json={"model": "my-chat", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]},
            timeout=120,
        )
        assert reply.status_code == 200, reply.text
        ps = alloy("ps", env={"ALLOY_URL": url})
        assert ps.returncode == 0, ps.stderr
        header, row = ps.stdout.splitlines()[:2]
        assert header.split()[:4] == ["MODEL", "REPLICA", "STATE", "DEVICES"]
        assert row.split()[:4] == ["my-chat", "my-chat-1", "ready", "cpu"]
        assert "DEVICE" in ps.stdout and "host memory" in ps.stdout
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    assert "stopping my-chat-1" in output, "stopping the router stops the runtimes it started"


def test_list_without_a_router_says_so() -> None:
    result = alloy("list", "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "ConnectError" in result.stderr or "connect" in result.stderr.lower()


def test_a_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "alloy.yaml").write_text("models:\n  - modelId: x\n    task: painting\n")
    result = alloy("serve", "--config", str(tmp_path / "alloy.yaml"))
    assert result.returncode == 2
    assert "task" in result.stderr and "painting" in result.stderr


def test_runtimes_exit_when_the_router_is_killed(tmp_path: Path, tiny_model: Callable[[str], Path]) -> None:
    model = {
        "modelId": "orphan",
        "task": "text-to-image",
        "source": {"path": str(tiny_model("zimage"))},
        "accelerator": {"vendor": "cpu", "count": 0, "memoryGiB": 1},
    }
    server, url = start_serve(
        tmp_path, {"catalog": False, "gpus": "none", "cacheDir": str(tmp_path), "models": [model]}
    )
    try:
        body = {"model_id": "orphan", "prompt": "x", "num_inference_steps": 1, "width": 32, "height": 32}
        assert httpx.post(f"{url}/image", json=body, timeout=120).status_code == 200
        runtimes = psutil.Process(server.pid).children(recursive=True)
        assert runtimes, "the router started a runtime"
        server.kill()  # no chance to clean up, as with an OOM kill
        _, alive = psutil.wait_procs(runtimes, timeout=15)
        assert not alive, "a runtime outlived its router"
    finally:
        server.kill()
        server.communicate(timeout=30)
