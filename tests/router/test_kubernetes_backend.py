"""The router's Kubernetes backend against the API emulator: AlloyModels are the registry, the scale
subresource wakes a model, status tells the waiting client what is happening, keep-alive scales to zero.

No operator or kubelet runs here: `StandIn` plays both for one model. It watches `spec.replicas`, says
the pod waits for a GPU node, then starts a real runtime and publishes its address as the endpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kube.emulator import EmulatorThread, kube_client

from alloy.modelspec import Source
from alloy.resource import AlloyModel
from alloy.router.backends.kubernetes import KubernetesBackend
from alloy.router.config import RouterConfig
from conftest import RouterServer, RuntimeServer, running_runtime, wait_until
from helpers import kinds, post_events

CRD = yaml.safe_load((Path(__file__).resolve().parents[2] / "crds" / "alloymodel.yaml").read_text())
NS = "models"
MODEL_PATH = f"/apis/alloy.dev/v1alpha1/namespaces/{NS}/alloymodels"
MERGE = {"Content-Type": "application/merge-patch+json"}
WAITING_FOR_NODE = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."


class StandIn:
    """Operator and pod for one AlloyModel: follows `spec.replicas` with a real runtime."""

    def __init__(self, kube: EmulatorThread, name: str, model_path: Path, cache: Path) -> None:
        self.kube, self.name, self.model_path, self.cache = kube, name, model_path, cache
        self.runtime: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self.wakes = 0

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.runtime is not None:
            self.runtime.__exit__(None, None, None)

    def _status(self, **status: Any) -> None:
        httpx.patch(f"{self.kube.url}{MODEL_PATH}/{self.name}/status", json={"status": status}, headers=MERGE)

    def _follow(self) -> None:
        while not self._stop.wait(0.1):
            wanted = (
                (self.kube.get("alloy.dev/v1alpha1/alloymodels", NS, self.name) or {}).get("spec") or {}
            ).get("replicas") or 0
            if wanted and self.runtime is None:
                self.wakes += 1
                self._status(phase="Pending", message=WAITING_FOR_NODE, replicas=1, readyReplicas=0)
                time.sleep(0.6)  # the cluster autoscaler adds a node
                self._status(phase="Loading", message="loading the model")
                # As the operator does: the runtime serves the AlloyModel's spec (here from a local path).
                body = self.kube.get("alloy.dev/v1alpha1/alloymodels", NS, self.name) or {}
                spec = AlloyModel.model_validate(body).model_spec
                local = spec.model_copy(update={"source": Source(path=str(self.model_path))})
                self.runtime = running_runtime(local, self.cache)
                server: RuntimeServer = self.runtime.__enter__()
                self._status(
                    phase="Ready", message="1/1 replicas ready", readyReplicas=1, endpoint=server.url
                )
            elif not wanted and self.runtime is not None:
                self.runtime.__exit__(None, None, None)
                self.runtime = None
                self._status(phase="ScaledToZero", message="scaled to zero", replicas=0, readyReplicas=0)


@pytest.fixture
def kube() -> Iterator[EmulatorThread]:
    with EmulatorThread([CRD]) as emulator:
        yield emulator


def create_model(kube: EmulatorThread, name: str, **spec: Any) -> None:
    body = {
        "apiVersion": "alloy.dev/v1alpha1",
        "kind": "AlloyModel",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "task": "text-to-image",
            "source": {"path": "/models/tiny"},
            "accelerator": {"vendor": "nvidia", "count": 1, "memoryGiB": 24},
            "defaults": {"num_inference_steps": 2, "width": 32, "height": 32},
            **spec,
        },
    }
    assert httpx.post(f"{kube.url}{MODEL_PATH}", json=body).status_code in (200, 201)


def add_node(kube: EmulatorThread, name: str, gpus: int, memory_mib: int) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.memory": str(memory_mib)}},
        "status": {"allocatable": {"nvidia.com/gpu": str(gpus), "cpu": "32"}},
    }
    assert httpx.post(f"{kube.url}/api/v1/nodes", json=node).status_code in (200, 201)


def router_for(kube: EmulatorThread, **settings: Any) -> RouterServer:
    config = RouterConfig(
        backend="kubernetes",
        namespace=NS,
        allocation_poll=0.1,
        reap_interval=0.2,
        watch_timeout=1,  # watches renew quickly, so the emulator is not kept waiting at teardown
        activity_write_interval=0,
        log_level="warning",
        **settings,
    )

    def backend(config: RouterConfig, registry: Any, metrics: Any) -> KubernetesBackend:
        return KubernetesBackend(
            config=config, registry=registry, metrics=metrics, connect=lambda: kube_client(kube.url)
        )

    server = RouterServer(config, backend_factory=backend)
    server.start()
    return server


def replicas(kube: EmulatorThread, name: str) -> int:
    spec = (kube.get("alloy.dev/v1alpha1/alloymodels", NS, name) or {}).get("spec") or {}
    return int(spec.get("replicas") or 0)


def test_a_cold_request_wakes_the_model_through_the_scale_subresource(
    kube: EmulatorThread, tiny_model: Callable[[str], Path], model_cache: Path
) -> None:
    add_node(kube, "gpu-a", gpus=1, memory_mib=81559)
    create_model(kube, "tiny")
    mark = kube.mark()
    router = router_for(kube)
    try:
        wait_until(
            lambda: any(m["model_id"] == "tiny" for m in router.get("/models").json()["image"]),
            what="the AlloyModel in the registry",
        )
        assert router.model("tiny")["is_supported"] is True
        with StandIn(kube, "tiny", tiny_model("zimage"), model_cache) as stand_in:
            events = post_events(
                f"{router.url}/image", {"model_id": "tiny", "prompt": "a fox", "keep_alive": 2}, timeout=120
            )
            sequence = kinds(events)
            assert sequence[0] == "received" and sequence[-2:] == ["completed", "done"]
            reasons = [e.payload["reason"] for e in events if e.event.value == "queued"]
            assert f"Pending: {WAITING_FOR_NODE}" in reasons, reasons
            assert "Loading: loading the model" in reasons
            assert replicas(kube, "tiny") == 1
            writes = kube.writes(mark)
            assert ("PATCH", f"{MODEL_PATH}/tiny/scale") in writes, "woken through /scale"
            assert not [w for w in writes if "/deployments" in w.path], "never touches Deployments"

            status = (kube.get("alloy.dev/v1alpha1/alloymodels", NS, "tiny") or {})["status"]
            assert status.get("lastActiveTime") and status.get("expiresAt"), "activity is persisted"
            wait_until(
                lambda: replicas(kube, "tiny") == 0, timeout=8, what="scale to zero after keep_alive 2 s"
            )
            wait_until(lambda: stand_in.runtime is None, timeout=10)
            assert stand_in.wakes == 1
    finally:
        router.stop()


def test_a_restarted_router_neither_strands_nor_kills_a_model(kube: EmulatorThread) -> None:
    future, past = time.time() + 600, time.time() - 5
    for name, expires in (("kept", future), ("expired", past)):
        create_model(kube, name, replicas=1)
        status = {
            "phase": "Ready",
            "readyReplicas": 1,
            "replicas": 1,
            "endpoint": "http://127.0.0.1:9",
            "lastActiveTime": iso(expires - 300),
            "expiresAt": iso(expires),
        }
        assert httpx.patch(
            f"{kube.url}{MODEL_PATH}/{name}/status", json={"status": status}, headers=MERGE
        ).is_success
    router = router_for(kube)
    try:
        wait_until(lambda: replicas(kube, "expired") == 0, timeout=5, what="the expired model scaled to zero")
        time.sleep(1)  # several reaps
        assert replicas(kube, "kept") == 1, "a model within its keep-alive stays up"
    finally:
        router.stop()


def test_kubectl_scale_wakes_a_model_until_its_keep_alive_ends(kube: EmulatorThread) -> None:
    create_model(kube, "manual", scaling={"keepAlive": 2})
    router = router_for(kube)
    try:
        wait_until(lambda: any(m["model_id"] == "manual" for m in router.get("/models").json()["image"]))
        scaled = httpx.patch(
            f"{kube.url}{MODEL_PATH}/manual/scale", json={"spec": {"replicas": 1}}, headers=MERGE
        )
        assert scaled.is_success
        time.sleep(1)
        assert replicas(kube, "manual") == 1, "the router keeps a model someone else woke"
        wait_until(lambda: replicas(kube, "manual") == 0, timeout=5, what="back to zero after keepAlive")
    finally:
        router.stop()


def test_support_comes_from_nodes_and_autoscaled_pools(kube: EmulatorThread) -> None:
    add_node(kube, "gpu-small", gpus=1, memory_mib=24576)
    create_model(kube, "fits")
    create_model(kube, "too-big", accelerator={"vendor": "nvidia", "count": 1, "memoryGiB": 80})
    create_model(kube, "two-gpus", accelerator={"vendor": "nvidia", "count": 2, "memoryGiB": 48})
    create_model(kube, "amd", accelerator={"vendor": "amd", "count": 1, "memoryGiB": 64})
    pools = {
        "amd": {
            "resourceName": "amd.com/gpu",
            "image": "x",
            "maxNodes": 4,
            "acceleratorsPerNode": 8,
            "acceleratorMemoryGiB": 192,
        }
    }
    router = router_for(kube, node_pools=pools)
    try:
        wait_until(lambda: len(router.get("/models").json()["image"]) == 4)
        supported = {m["model_id"]: m["is_supported"] for m in router.get("/models").json()["image"]}
        assert supported == {"fits": True, "too-big": False, "two-gpus": False, "amd": True}
        assert "24 GiB" in router.model("too-big")["message"]
        unsupported = router.post("/image", {"model_id": "too-big", "prompt": "x"})
        assert unsupported.status_code == 503 and "needs 1 nvidia accelerator" in unsupported.json()["detail"]
        devices = {d["id"] for d in router.get("/ps").json()["devices"]}
        assert devices == {"node/gpu-small", "pool/amd"}
    finally:
        router.stop()


def iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
