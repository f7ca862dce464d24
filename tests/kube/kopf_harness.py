"""Run a Kopf operator in-process against the emulator, with settings that make a test take a second.

    registry = kopf.OperatorRegistry()      # private: nothing leaks between tests
    ...register handlers on it (registry=registry, id=...)...
    add_login(registry, running.url)        # once per registry: a private registry has no login handler
    async with running_operator(registry, namespaces=["ns1"]):
        ...create objects, then `await wait_for(lambda: handled(running.get(...)))`...

The operator is a task on the test's own event loop, so blocking calls must stay off that loop: write
handlers that use the sync `kubernetes` client as sync functions (Kopf runs them in its thread pool) and
call the client from the test through `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import kopf

LAST_HANDLED = "kopf.zalando.org/last-handled-configuration"
KOPF_PREFIX = "kopf.zalando.org/"


def fast_settings() -> kopf.OperatorSettings:
    """Settings for tests: no peering, no CRD scanning, short backoffs and quick shutdown."""
    settings = kopf.OperatorSettings()
    settings.peering.standalone = True  # no peering objects, so no peering CRD is needed
    settings.scanning.disabled = True  # serve what discovery shows; no CRD/namespace watching
    settings.posting.loggers = False  # only kopf.info/warn/exception/event post Events (1.45's default)
    settings.networking.request_timeout = 10
    settings.networking.error_backoffs = [0.1, 0.2, 0.5]
    settings.watching.reconnect_backoff = 0.05
    settings.watching.server_timeout = 30  # ?timeoutSeconds, which the emulator honours
    settings.watching.client_timeout = 35
    settings.queueing.idle_timeout = 0.5  # per-object workers exit sooner, so shutdown is quick
    settings.queueing.exit_timeout = 0.5
    settings.background.instant_exit_timeout = 0.5
    settings.process.ultimate_exiting_timeout = 5
    return settings


def add_login(registry: kopf.OperatorRegistry, url: str) -> None:
    """Make operators of `registry` talk to the emulator at `url`; call it once per registry."""

    @kopf.on.login(registry=registry, id="kube-emulator")
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url, insecure=True, default_namespace="default")


@contextlib.asynccontextmanager
async def running_operator(
    registry: kopf.OperatorRegistry,
    *,
    namespaces: list[str] | None = None,
    settings: kopf.OperatorSettings | None = None,
    stop_timeout: float = 10.0,
) -> AsyncIterator[asyncio.Task[None]]:
    """Run `kopf.operator` as a task (cluster-wide unless `namespaces`), stopping it on exit.

    "Ready" means Kopf's tasks are spawned, not that its watches are up; objects created right away
    still arrive with the initial listing. An operator that crashed is re-raised on exit."""
    stop_flag, ready_flag = asyncio.Event(), asyncio.Event()
    operator = asyncio.create_task(
        kopf.operator(
            registry=registry,
            settings=settings or fast_settings(),
            standalone=True,
            clusterwide=namespaces is None,
            namespaces=namespaces or (),
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    )
    try:
        ready = asyncio.create_task(ready_flag.wait())
        await asyncio.wait({ready, operator}, timeout=stop_timeout, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if operator.done():
            operator.result()  # it failed to start: raise why
        yield operator
    finally:
        stop_flag.set()
        await asyncio.wait_for(operator, stop_timeout)


def handled(obj: Mapping[str, Any] | None) -> bool:
    """Whether Kopf finished its handling cycle for the object's current spec.

    Kopf stores the spec it last handled in an annotation at the end of a cycle and keeps per-handler
    progress (annotations, status.kopf) only while handlers are pending or retrying."""
    if obj is None:
        return False
    annotations = obj.get("metadata", {}).get("annotations") or {}
    if LAST_HANDLED not in annotations:
        return False
    pending = [key for key in annotations if key.startswith(KOPF_PREFIX) and key != LAST_HANDLED]
    progress = (obj.get("status") or {}).get("kopf", {}).get("progress")
    essence = json.loads(annotations[LAST_HANDLED])
    return not pending and not progress and essence.get("spec") == obj.get("spec")


async def wait_for(condition: Callable[[], bool], *, within: float = 5.0, what: str = "condition") -> float:
    """Poll `condition` on the event loop (so the emulator and Kopf keep running); returns the seconds."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            raise AssertionError(f"{what} not reached within {within}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started
