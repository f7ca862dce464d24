"""Shared fixtures: tiny random-weight models built once per session, and real runtimes over HTTP."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import uvicorn
from fastapi import FastAPI

from alloy.modelspec import Accelerator, ModelSpec, Source, Task, Vendor
from alloy.router.app import BackendFactory
from alloy.router.app import build_app as build_router_app
from alloy.router.config import RouterConfig
from alloy.router.core import Router
from alloy.runtime.app import build_app
from alloy.runtime.settings import RuntimeSettings
from alloy.runtime.state import RuntimeState

READY_TIMEOUT_S = 120.0

# Several runtimes share this process's torch; one intra-op thread each keeps a 2-core machine from
# oversubscribing (which makes tiny generations swing from milliseconds to seconds).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where tiny models are built; ALLOY_TEST_CACHE keeps them between local runs."""
    kept = os.environ.get("ALLOY_TEST_CACHE")
    return Path(kept) if kept else tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_model(model_cache: Path) -> Callable[[str], Path]:
    """Build (once) and return the directory of a tiny model: zimage, stable-diffusion, chat, vision-chat."""
    from alloy.runtime.tiny import BUILDERS

    def build(name: str) -> Path:
        return BUILDERS[name](model_cache / "builtin" / name)

    return build


class ServedApp:
    """An ASGI app served by uvicorn on a free loopback port, in a thread of the test process."""

    def __init__(self, app: FastAPI, *, name: str) -> None:
        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{name}", daemon=True)

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


class RuntimeServer(ServedApp):
    """A runtime for one model; `start` waits until its model is loaded."""

    def __init__(self, settings: RuntimeSettings, spec: ModelSpec) -> None:
        super().__init__(build_app(settings, spec), name=spec.model_id)
        self.model_id = spec.model_id

    @property
    def state(self) -> RuntimeState:
        state: RuntimeState = self.app.state.runtime
        return state

    def start(self, *, wait_ready: bool = True) -> RuntimeServer:  # type: ignore[override]
        super().start()
        if wait_ready:
            self.wait_ready(time.monotonic() + READY_TIMEOUT_S)
        return self

    def wait_ready(self, deadline: float) -> None:
        while (ready := httpx.get(f"{self.url}/ready")).status_code != 200:
            if ready.json()["status"] == "failed" or time.monotonic() > deadline:
                raise RuntimeError(f"{self.model_id} not ready: {httpx.get(f'{self.url}/info').json()}")
            time.sleep(0.05)


@contextlib.contextmanager
def running_runtime(spec: ModelSpec, cache_dir: Path, **settings: Any) -> Iterator[RuntimeServer]:
    server = RuntimeServer(RuntimeSettings(cache_dir=cache_dir, **settings), spec).start()
    try:
        yield server
    finally:
        server.stop()


def tiny_spec(model_id: str, task: Task, path: Path, **fields: Any) -> ModelSpec:
    return ModelSpec(model_id=model_id, task=task, source=Source(path=str(path)), **fields)


@pytest.fixture(scope="session")
def zimage_runtime(tiny_model: Callable[[str], Path], model_cache: Path) -> Iterator[RuntimeServer]:
    """A flow-matching DiT pipeline (Z-Image style) with per-model defaults."""
    spec = tiny_spec(
        "tiny-zimage",
        Task.TEXT_TO_IMAGE,
        tiny_model("zimage"),
        defaults={"num_inference_steps": 3, "guidance_scale": 0.0, "width": 32, "height": 32},
    )
    with running_runtime(spec, model_cache) as server:
        yield server


@pytest.fixture(scope="session")
def sd_runtime(tiny_model: Callable[[str], Path], model_cache: Path) -> Iterator[RuntimeServer]:
    """A Stable-Diffusion-style UNet pipeline with no defaults: the pipeline's own apply."""
    spec = tiny_spec("tiny-sd", Task.TEXT_TO_IMAGE, tiny_model("stable-diffusion"))
    with running_runtime(spec, model_cache) as server:
        yield server


@pytest.fixture(scope="session")
def chat_runtime(tiny_model: Callable[[str], Path], model_cache: Path) -> Iterator[RuntimeServer]:
    spec = tiny_spec("tiny-chat", Task.CHAT, tiny_model("chat"), defaults={"max_tokens": 16})
    with running_runtime(spec, model_cache) as server:
        yield server


@pytest.fixture(scope="session")
def vision_runtime(tiny_model: Callable[[str], Path], model_cache: Path) -> Iterator[RuntimeServer]:
    spec = tiny_spec("tiny-vision", Task.VISION_CHAT, tiny_model("vision-chat"), defaults={"max_tokens": 8})
    # "any": the tests serve images from 127.0.0.1, which the default ("public") refuses.
    with running_runtime(spec, model_cache, image_fetch="any") as server:
        yield server


class RouterServer(ServedApp):
    """A router with the local backend; its runtimes are real `alloy runtime` processes."""

    def __init__(self, config: RouterConfig, backend_factory: BackendFactory | None = None) -> None:
        super().__init__(build_router_app(config, backend_factory=backend_factory), name="router")
        self.config = config

    @property
    def core(self) -> Router:
        core: Router = self.app.state.router
        return core

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=30, **kwargs)

    def post(self, path: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, timeout=120, **kwargs)

    def resident(self) -> list[dict[str, Any]]:
        models: list[dict[str, Any]] = self.get("/ps").json()["models"]
        return models

    def model(self, model_id: str) -> dict[str, Any]:
        listing = self.get("/models").json()
        return next(m for group in listing.values() for m in group if m["model_id"] == model_id)


def cpu_model(model_id: str, task: Task, path: Path, *, memory_gib: float = 1.0, **fields: Any) -> ModelSpec:
    """A tiny model for the router: a CPU model that reserves `memory_gib` of the RAM budget."""
    return ModelSpec(
        model_id=model_id,
        task=task,
        source=Source(path=str(path)),
        accelerator=Accelerator(vendor=Vendor.CPU, count=0, memory_gib=memory_gib),
        **fields,
    )


def router_config(cache_dir: Path, models: list[ModelSpec], **settings: Any) -> RouterConfig:
    """A router config for tests: only `models`, no GPU probe, fast polling and reaping."""
    defaults: dict[str, Any] = {
        "catalog": False,
        "gpus": "none",
        "memory_budget_gib": 4,
        "allocation_poll": 0.1,
        "reap_interval": 0.2,
        "stop_grace": 10,
        "log_level": "warning",
        "cache_dir": cache_dir,
    }
    return RouterConfig(models=models, **{**defaults, **settings})


@contextlib.contextmanager
def running_router(config: RouterConfig) -> Iterator[RouterServer]:
    server = RouterServer(config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_until(condition: Callable[[], bool], *, timeout: float = 60.0, what: str = "condition") -> float:
    """Poll `condition` until true; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - started
