"""The Kubernetes backend: AlloyModels are the registry, the scale subresource is the only lever.

It watches AlloyModels (in one namespace or all), wakes a model by writing `spec.replicas` through
`/scale` — never touching Deployments, which are the operator's — and reports the AlloyModel's phase
and message while a request waits ("Pending: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu").
It forwards to the Service URL the operator publishes in `status.endpoint`. When a request ends it
records `status.lastActiveTime`/`expiresAt` (throttled), and on start it restores them, so a restarted
router neither strands a model awake nor kills one still in its keep-alive.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import watch
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from alloy.modelspec import ModelSpec
from alloy.resource import GROUP, PLURAL, VERSION, AlloyModel, Phase
from alloy.router.backends.base import Availability, Endpoint
from alloy.router.config import RouterConfig
from alloy.router.errors import UpstreamUnavailable
from alloy.router.kube_capacity import Capacity, read_capacity
from alloy.router.metrics import RouterMetrics
from alloy.router.registry import ModelState, Registry
from alloy.router.scaling import FOREVER
from alloy.status import AllocationStatus, Device, ResidentModel

log = logging.getLogger(__name__)
GIB = 2**30


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class KubernetesBackend:
    def __init__(
        self,
        *,
        config: RouterConfig,
        registry: Registry,
        metrics: RouterMetrics,
        connect: Callable[[], ApiClient],
    ) -> None:
        self.config, self.registry, self.metrics = config, registry, metrics
        self._connect = connect
        self._client: ApiClient | None = None
        self._custom: CustomObjectsApi | None = None
        self._core: CoreV1Api | None = None
        self._models: dict[str, AlloyModel] = {}  # by model id
        self._in_flight: dict[str, int] = {}
        self._wanted: dict[str, int] = {}  # model id -> replicas this router last wrote
        self._written: dict[str, tuple[float, float]] = {}  # model id -> (when, expiry) last persisted
        self._capacity = Capacity(nodes=[], pools=config.node_pools)
        self._stop = threading.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._watcher: threading.Thread | None = None

    # Lifecycle.

    async def start(self) -> None:
        self._client = client = self._connect()
        self._custom, self._core = CustomObjectsApi(client), CoreV1Api(client)
        resource_version = await asyncio.to_thread(self._list_models)
        await self._refresh_capacity()
        loop = asyncio.get_running_loop()
        # A daemon thread, not the loop's executor: a watch blocks for minutes, and shutdown must not wait.
        self._watcher = threading.Thread(
            target=self._watch_models,
            args=(resource_version, loop),
            daemon=True,
            name="alloy-watch-alloymodels",
        )
        self._watcher.start()
        self._tasks = [asyncio.create_task(self._refresh_capacity_forever(), name="node-capacity")]

    async def close(self) -> None:
        self._stop.set()  # the watch thread ends at its next event or timeout
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # The registry, from the watch.

    def _list_models(self) -> str:
        listing = self._api_list(timeout_seconds=None)
        for item in listing.get("items", []):
            self._upsert(item, restoring=True)
        return str(listing.get("metadata", {}).get("resourceVersion", ""))

    def _api_list(self, **kwargs: Any) -> Any:
        assert self._custom is not None
        if self.config.namespace:
            return self._custom.list_namespaced_custom_object(
                GROUP, VERSION, self.config.namespace, PLURAL, **kwargs
            )
        return self._custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, **kwargs)

    def _watch_models(self, resource_version: str, loop: asyncio.AbstractEventLoop) -> None:
        """Runs in a thread: stream AlloyModel events into the event loop; relist when the stream is stale."""
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self._api_list,
                    resource_version=resource_version,
                    timeout_seconds=int(self.config.watch_timeout),
                ):
                    if self._stop.is_set():
                        stream.stop()
                        return
                    resource_version = event["object"]["metadata"].get("resourceVersion", resource_version)
                    loop.call_soon_threadsafe(self._apply_event, event["type"], event["object"])
            except ApiException as error:
                if error.status == 410:  # the resource version is too old: list again
                    resource_version = self._list_models()
                else:
                    log.warning("watching AlloyModels failed (%s); retrying", error.reason)
                    self._stop.wait(2)
            except Exception:  # a broken connection must not end the watch for good
                if self._stop.is_set():
                    return
                log.exception("the AlloyModel watch broke; retrying")
                self._stop.wait(2)

    def _apply_event(self, kind: str, body: dict[str, Any]) -> None:
        if kind == "DELETED":
            model_id = next(
                (
                    m
                    for m, obj in self._models.items()
                    if obj.metadata.name == body["metadata"]["name"]
                    and obj.metadata.namespace == body["metadata"].get("namespace")
                ),
                None,
            )
            if model_id is not None:
                self._models.pop(model_id, None)
                self.registry.remove(model_id)
        else:
            self._upsert(body, restoring=False)

    def _upsert(self, body: dict[str, Any], *, restoring: bool) -> None:
        try:
            model = AlloyModel.model_validate(body)
        except ValidationError as error:
            log.warning(
                "ignoring AlloyModel %s: %s", body.get("metadata", {}).get("name"), error.errors()[0]["msg"]
            )
            return
        spec = model.model_spec
        held = self._models.get(spec.model_id)
        if _older(model, held):
            return  # the watch caught up with a write we already applied locally
        self._models[spec.model_id] = model
        state = self.registry.upsert(spec)
        self.registry.notify_change()  # its status may say Ready (or Failed): waiting requests look now
        if restoring:
            self._restore_activity(state, model)
        elif self._woken_by_someone_else(model, held):
            # `kubectl scale` (or an HPA) woke it: keep it for its keep-alive, as if a request had.
            state.expires_at = max(state.expires_at, time.time() + state.spec.scaling.keep_alive)
            state.last_used = time.time()

    def _woken_by_someone_else(self, model: AlloyModel, held: AlloyModel | None) -> bool:
        before = (held.spec.replicas or 0) if held is not None else 0
        now = model.spec.replicas or 0
        return now > before and self._wanted.get(model.model_spec.model_id) != now

    def _restore_activity(self, state: ModelState, model: AlloyModel) -> None:
        """Pick up where the previous router left off (see the module docstring)."""
        status = model.status
        if status.expires_at:
            state.expires_at = parse_iso(status.expires_at)
        elif status.last_active_time:
            state.expires_at = FOREVER  # recorded without an expiry: it was kept
        elif (model.spec.replicas or 0) > 0:
            state.expires_at = time.time() + state.spec.scaling.keep_alive  # woken by someone else just now
        if status.last_active_time:
            state.last_used = parse_iso(status.last_active_time)

    # What the router asks.

    def support(self, spec: ModelSpec) -> str | None:
        return self._capacity.support(spec)

    def availability(self, model_id: str) -> Availability:
        model = self._models.get(model_id)
        if model is None:
            return Availability(AllocationStatus.DEALLOCATED)
        status, wanted = model.status, model.spec.replicas or 0
        if (status.ready_replicas or 0) > 0 and status.endpoint:
            replicas = max(wanted, status.replicas or 0)
            endpoints = [Endpoint(model_id, status.endpoint)]
            return Availability(
                AllocationStatus.ALLOCATED, replicas=replicas, running=wanted, endpoints=endpoints
            )
        if status.phase is Phase.FAILED:
            return Availability(AllocationStatus.FAILED, status.message, replicas=wanted)
        if wanted > 0:
            phase = (
                status.phase.value if status.phase and status.phase is not Phase.SCALED_TO_ZERO else "Pending"
            )
            # The cluster does the placing: a model asked for (by the router or kubectl) counts as running.
            message = f"{phase}: {status.message or 'scaling up'}"
            return Availability(AllocationStatus.ALLOCATING, message, replicas=wanted, running=wanted)
        return Availability(AllocationStatus.DEALLOCATED)

    def retry(self, model_id: str) -> None:
        """A Failed model is the operator's to fix (or the spec's); the router has nothing to retry."""

    async def scale(self, state: ModelState, replicas: int) -> None:
        model = self._models.get(state.model_id)
        if model is None:
            return
        observed = model.spec.replicas or 0
        # Compare with our own last write too: the observed value may lag behind it.
        if observed == replicas and self._wanted.get(state.model_id, replicas) == replicas:
            return
        self._wanted[state.model_id] = replicas
        log.info("scaling %s/%s to %d", model.metadata.namespace, model.metadata.name, replicas)
        if replicas > 0 and observed == 0:
            self.metrics.wakes.labels(model=state.model_id).inc()
        assert self._custom is not None
        scale = await asyncio.to_thread(
            self._custom.patch_namespaced_custom_object_scale,
            GROUP,
            VERSION,
            model.metadata.namespace,
            PLURAL,
            model.metadata.name,
            {"spec": {"replicas": replicas}},
        )
        # Our own write, seen now rather than when the watch brings it back.
        version = (scale.get("metadata") or {}).get("resourceVersion") if isinstance(scale, dict) else None
        metadata = model.metadata.model_copy(
            update={"resource_version": version or model.metadata.resource_version}
        )
        spec = model.spec.model_copy(update={"replicas": replicas})
        self._models[state.model_id] = model.model_copy(update={"spec": spec, "metadata": metadata})
        await self.record_activity(state, force=True)

    def acquire(self, model_id: str) -> Endpoint:
        availability = self.availability(model_id)
        if not availability.endpoints:
            raise UpstreamUnavailable(f"{model_id} has no ready endpoint")
        self._in_flight[model_id] = self._in_flight.get(model_id, 0) + 1
        return availability.endpoints[0]

    def release(self, endpoint: Endpoint) -> None:
        self._in_flight[endpoint.replica_id] = max(0, self._in_flight.get(endpoint.replica_id, 0) - 1)

    async def record_activity(self, state: ModelState, *, force: bool = False) -> None:
        """Persist when the model was last used and when it expires; at most every `activityWriteInterval`
        unless the expiry changed in kind (kept, timed, immediate)."""
        model = self._models.get(state.model_id)
        if model is None:
            return
        now, expiry = time.time(), state.expires_at
        last_write, last_expiry = self._written.get(state.model_id, (0.0, math.nan))
        changed_kind = math.isinf(expiry) != math.isinf(last_expiry) or (expiry <= now) != (
            last_expiry <= now
        )
        if not force and not changed_kind and now - last_write < self.config.activity_write_interval:
            return
        self._written[state.model_id] = (now, expiry)
        status = {
            "lastActiveTime": iso(state.last_used or now),
            "expiresAt": None if math.isinf(expiry) else iso(expiry),
        }
        assert self._custom is not None
        try:
            await asyncio.to_thread(
                self._custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                model.metadata.namespace,
                PLURAL,
                model.metadata.name,
                {"status": status},
            )
        except ApiException as error:
            log.warning("could not record activity of %s: %s", state.model_id, error.reason)

    async def residents(self) -> list[ResidentModel]:
        residents = []
        for model_id, model in self._models.items():
            status, wanted = model.status, model.spec.replicas or 0
            if max(wanted, status.replicas or 0) == 0:
                continue
            accelerator = model.spec.accelerator
            reserved = int((accelerator.memory_gib or 0) * GIB) * max(wanted, status.replicas or 0)
            residents.append(
                ResidentModel(
                    model_id=model_id,
                    replica=f"{model.metadata.namespace}/{model.metadata.name}",
                    state=(status.phase or Phase.PENDING).value,
                    devices=[f"{accelerator.vendor.value} x{accelerator.count}"],
                    memory_reserved_bytes=reserved,
                    active_requests=self._in_flight.get(model_id, 0),
                    endpoint=status.endpoint,
                )
            )
        return residents

    def devices(self) -> list[Device]:
        return self._capacity.devices()

    # Capacity.

    async def _refresh_capacity(self) -> None:
        assert self._core is not None
        try:
            nodes = await asyncio.to_thread(self._core.list_node)
        except ApiException as error:
            log.warning("cannot list nodes (%s): is_supported uses the configured pools only", error.reason)
            return
        assert self._client is not None
        as_json = self._client.sanitize_for_serialization(nodes)  # the API's camelCase JSON, as documented
        self._capacity = read_capacity(as_json.get("items") or [], self.config.node_pools)

    async def _refresh_capacity_forever(self) -> None:
        while True:
            await asyncio.sleep(60)
            await self._refresh_capacity()


def _older(incoming: AlloyModel, held: AlloyModel | None) -> bool:
    """Whether `incoming` predates the copy we hold. Resource versions are opaque by contract, but
    numeric (etcd revisions) in practice; anything else is taken as newer."""
    if held is None:
        return False
    new, old = incoming.metadata.resource_version, held.metadata.resource_version
    return bool(new and old and new.isdigit() and old.isdigit() and int(new) < int(old))
