"""The router's FastAPI app: one entrypoint for every model, on the local or the Kubernetes backend."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from functools import partial

import httpx
from fastapi import FastAPI

import alloy
from alloy.asgi import CountRequests
from alloy.router.api import native, openai, status
from alloy.router.api.errors import install_error_handlers
from alloy.router.backends.base import Backend
from alloy.router.config import RouterConfig
from alloy.router.core import Router
from alloy.router.metrics import RouterMetrics
from alloy.router.registry import Registry

FORWARDED_PATHS = {"/image", "/chat", "/v1/images/generations", "/v1/chat/completions"}
BackendFactory = Callable[[RouterConfig, Registry, RouterMetrics], Backend]


def local_backend(config: RouterConfig, registry: Registry, metrics: RouterMetrics) -> Backend:
    from alloy.router.backends.local import LocalBackend

    return LocalBackend(config=config, registry=registry, metrics=metrics)


def kubernetes_backend(config: RouterConfig, registry: Registry, metrics: RouterMetrics) -> Backend:
    from alloy.kubeconfig import connect_from_environment
    from alloy.router.backends.kubernetes import KubernetesBackend

    return KubernetesBackend(
        config=config, registry=registry, metrics=metrics, connect=connect_from_environment
    )


BACKENDS: dict[str, BackendFactory] = {"local": local_backend, "kubernetes": kubernetes_backend}


def build_app(config: RouterConfig, *, backend_factory: BackendFactory | None = None) -> FastAPI:
    metrics = RouterMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = Registry(config.model_specs())
        factory = backend_factory or BACKENDS[config.backend]
        router = Router(
            config=config, registry=registry, backend=factory(config, registry, metrics), metrics=metrics
        )
        # Generations take minutes: no read timeout toward runtimes, only a connect timeout.
        # No pool bound: each forwarded request holds its connection for its whole (maybe long) stream,
        # and httpx's default of 100 would make the 101st wait silently.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
        async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0), limits=limits) as upstream:
            app.state.router, app.state.upstream, app.state.api_keys = router, upstream, config.api_keys
            await router.start()
            try:
                yield
            finally:
                await router.close()

    app = FastAPI(title="Alloy router", version=alloy.__version__, lifespan=lifespan)
    for routes in (native.router, openai.router, status.protected, status.public):
        app.include_router(routes)
    install_error_handlers(app)
    app.add_middleware(CountRequests, paths=FORWARDED_PATHS, count=partial(_count, metrics))
    return app


def _count(metrics: RouterMetrics, path: str, status_code: int) -> None:
    metrics.requests.labels(route=path, status=str(status_code)).inc()
