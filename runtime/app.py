"""The runtime's FastAPI app: one model per process, native and OpenAI endpoints.

`build_app` creates nothing heavy: the worker starts and the model loads in the lifespan, so the
app can be built in tests and served by uvicorn alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from functools import partial

from fastapi import FastAPI

import alloy
from alloy.asgi import CountRequests
from alloy.modelspec import ModelSpec
from alloy.runtime.api import native, system
from alloy.runtime.api.errors import install_error_handlers
from alloy.runtime.openai import routes as openai_routes
from alloy.runtime.settings import RuntimeSettings, resolve_spec
from alloy.runtime.state import RuntimeState

COUNTED_PATHS = {"/image", "/chat", "/v1/images/generations", "/v1/chat/completions", "/v1/models"}


def build_app(
    settings: RuntimeSettings,
    spec: ModelSpec | None = None,
    *,
    on_load_failure: Callable[[str], None] | None = None,
) -> FastAPI:
    """The app for one model; `on_load_failure` lets the server exit when the model cannot load."""
    model_spec = spec or resolve_spec(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = RuntimeState(settings, model_spec, on_load_failure=on_load_failure)
        app.state.runtime = state
        await state.worker.start()
        loading = asyncio.create_task(state.load(), name="alloy-load")
        try:
            yield
        finally:
            loading.cancel()
            await state.worker.stop()

    app = FastAPI(title=f"Alloy runtime: {model_spec.model_id}", version=alloy.__version__, lifespan=lifespan)
    app.include_router(system.router)
    app.include_router(native.router)
    app.include_router(openai_routes.router)
    install_error_handlers(app)
    app.add_middleware(CountRequests, paths=COUNTED_PATHS, count=partial(_count, app))
    return app


def _count(app: FastAPI, path: str, status: int) -> None:
    state: RuntimeState | None = getattr(app.state, "runtime", None)
    if state is not None:  # the lifespan has run
        state.metrics.count_request(path, status)
