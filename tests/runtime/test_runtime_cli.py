"""`alloy runtime` as a user runs it: a separate process, configured by flags and environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from helpers import decode_image

START_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def alloy(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "alloy.cli", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, as Kubernetes sends it; returns what the process logged."""
    process.terminate()
    output, _ = process.communicate(timeout=30)
    return output


def wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{url}/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("the runtime did not become ready")


def test_the_demo_model_serves_from_a_fresh_cache(tmp_path: Path) -> None:
    """The README's first command: `alloy runtime --model alloy-tiny` builds the demo model and serves it."""
    port = free_port()
    process = alloy(
        "runtime", "--model", "alloy-tiny", "--port", str(port), env={"ALLOY_CACHE_DIR": str(tmp_path)}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        body = httpx.post(
            f"{url}/image", json={"model_id": "alloy-tiny", "prompt": "a red fox"}, timeout=60
        ).json()
        assert decode_image(body["images"][0]).size == (64, 64), "the catalog's demo defaults apply"
        assert body["parameters"]["num_inference_steps"] == 4
        assert (tmp_path / "builtin" / "zimage" / "model_index.json").exists()
    finally:
        output = stop(process)
    assert "Application shutdown complete" in output, "SIGTERM shuts the server down gracefully"


def test_environment_configures_a_pod_style_runtime(tmp_path: Path, tiny_model: object) -> None:
    port = free_port()
    path = tiny_model("chat")  # type: ignore[operator]
    env = {
        "ALLOY_MODEL_ID": "pod-chat",
        "ALLOY_SOURCE": str(path),
        "ALLOY_TASK": "chat",
        "ALLOY_PORT": str(port),
        "ALLOY_DEFAULTS": '{"max_tokens": 2}',
        "ALLOY_CACHE_DIR": str(tmp_path),
    }
    process = alloy("runtime", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        body = httpx.post(
            f"{url}/chat",
            json={"model": "pod-chat", "messages": [{"role": "user", "content": "hi"}]},
            timeout=60,
        ).json()
        assert body["completion_tokens"] <= 2
    finally:
        stop(process)


def test_a_model_that_cannot_load_exits_nonzero_and_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text('{"_class_name": "NoSuchPipeline"}')
    process = alloy(
        "runtime",
        "--model",
        "broken",
        "--source",
        str(broken),
        "--task",
        "text-to-image",
        "--port",
        str(free_port()),
        env={"ALLOY_CACHE_DIR": str(tmp_path)},
    )
    output, _ = process.communicate(timeout=START_TIMEOUT_S)
    assert process.returncode == 1
    assert "loading broken failed" in output


def test_an_unknown_model_without_a_source_is_a_clear_error(tmp_path: Path) -> None:
    process = alloy("runtime", "--model", "not-in-catalog", env={"ALLOY_CACHE_DIR": str(tmp_path)})
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "not in the default catalog: give --source, --task" in output
