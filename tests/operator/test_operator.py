"""The operator, run for real by Kopf against a Kubernetes API emulator that speaks HTTP.

The emulator stores objects and serves list/watch/patch and the status and scale subresources; it runs
no controllers, so these tests play the kubelet and the Deployment controller themselves (they create
pods and set Deployment status) and watch what the operator makes of it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import kopf
import pytest
import yaml
from kube.emulator import Emulator, kube_client, start_emulator
from kube.kopf_harness import add_login, fast_settings, handled, running_operator, wait_for

from alloy.operator.config import OperatorConfig
from alloy.operator.handlers import register
from alloy.operator.manifests import SPEC_HASH_ANNOTATION

CRD = yaml.safe_load((Path(__file__).resolve().parents[2] / "crds" / "alloymodel.yaml").read_text())
MODELS = "alloy.dev/v1alpha1/alloymodels"
NS = "models"
BASE = f"/apis/alloy.dev/v1alpha1/namespaces/{NS}/alloymodels"
GPU_SHORTAGE = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."


def alloymodel(name: str = "zit", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "alloy.dev/v1alpha1",
        "kind": "AlloyModel",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "task": "text-to-image",
            "source": {"huggingface": {"repo": "Tongyi-MAI/Z-Image-Turbo"}},
            "accelerator": {"vendor": "nvidia", "count": 1, "memoryGiB": 24},
            **spec,
        },
    }


@pytest.fixture
async def cluster() -> AsyncIterator[Emulator]:
    async with start_emulator([CRD]) as running:
        yield running


@pytest.fixture
async def api(cluster: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cluster.url, timeout=10) as client:
        yield client


def operator_registry(cluster: Emulator) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    register(registry, config=OperatorConfig(), connect=lambda: kube_client(cluster.url))
    add_login(registry, cluster.url)
    return registry


def operating(cluster: Emulator) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    """The operator, run inside a test's body: Kopf cancels, when it stops, every task started on its loop
    after it, and pytest-asyncio tears async fixtures down in such a task."""
    return running_operator(operator_registry(cluster), settings=fast_settings())


def status_of(cluster: Emulator, name: str = "zit") -> dict[str, Any]:
    status: dict[str, Any] = (cluster.get(MODELS, NS, name) or {}).get("status") or {}
    return status


def events(cluster: Emulator, reason: str) -> list[dict[str, Any]]:
    return [event for event in cluster.list("v1/events", NS) if event.get("reason") == reason]


async def create(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await api.post(BASE, json=body)
    assert response.status_code in (200, 201), response.text


async def put_pod(api: httpx.AsyncClient, name: str, status: dict[str, Any], model: str = "zit") -> None:
    """Play the kubelet: create or update one of the model's pods."""
    path = f"/api/v1/namespaces/{NS}/pods"
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"alloy.dev/model": model}},
        "spec": {"containers": [{"name": "runtime", "image": "x"}]},
        "status": status,
    }
    if (await api.get(f"{path}/{name}")).status_code == 404:
        assert (await api.post(path, json=body)).status_code in (200, 201)
    else:
        patch = await api.patch(
            f"{path}/{name}/status",
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert patch.status_code == 200, patch.text


async def set_ready_replicas(api: httpx.AsyncClient, ready: int) -> None:
    """Play the Deployment controller: report ready replicas."""
    response = await api.patch(
        f"/apis/apps/v1/namespaces/{NS}/deployments/alloy-zit/status",
        json={"status": {"readyReplicas": ready, "replicas": ready}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text


async def test_a_new_model_gets_its_deployment_service_and_status(
    cluster: Emulator, api: httpx.AsyncClient
) -> None:
    async with operating(cluster):
        await create(api, alloymodel())
        await wait_for(lambda: status_of(cluster).get("phase") == "ScaledToZero", what="status")
        deployment = cluster.get("apps/v1/deployments", NS, "alloy-zit")
        service = cluster.get("v1/services", NS, "alloy-zit")
        assert deployment is not None and service is not None
        owner = deployment["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            "AlloyModel",
            "zit",
            cluster.get(MODELS, NS, "zit")["metadata"]["uid"],
        )  # type: ignore[index]
        assert deployment["spec"]["replicas"] == 0
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"] == {"nvidia.com/gpu": 1}
        status = status_of(cluster)
        assert status["modelId"] == "zit" and status["endpoint"] == f"http://alloy-zit.{NS}.svc:80"
        assert status["selector"] == "alloy.dev/model=zit" and status["observedGeneration"] == 1
        await wait_for(
            lambda: bool(events(cluster, "Applied")), what="an Applied event"
        )  # posted asynchronously
        assert "alloy-zit" in events(cluster, "Applied")[0]["message"]


async def test_scale_subresource_sets_deployment_replicas_without_a_rollout(
    cluster: Emulator, api: httpx.AsyncClient
) -> None:
    async with operating(cluster):
        await create(api, alloymodel())
        await wait_for(lambda: cluster.get("apps/v1/deployments", NS, "alloy-zit") is not None)
        template = cluster.get("apps/v1/deployments", NS, "alloy-zit")["spec"]["template"]  # type: ignore[index]
        scaled = await api.patch(
            f"{BASE}/zit/scale",
            json={"spec": {"replicas": 1}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert scaled.status_code == 200, scaled.text
        await wait_for(
            lambda: cluster.get("apps/v1/deployments", NS, "alloy-zit")["spec"]["replicas"] == 1,  # type: ignore[index]
            what="replicas",
        )
        assert cluster.get("apps/v1/deployments", NS, "alloy-zit")["spec"]["template"] == template  # type: ignore[index]
        await wait_for(lambda: status_of(cluster).get("phase") == "Pending", what="pending")
        assert status_of(cluster)["message"] == "creating pods"


async def test_a_spec_change_rolls_the_deployment(cluster: Emulator, api: httpx.AsyncClient) -> None:
    async with operating(cluster):
        await create(api, alloymodel())
        await wait_for(lambda: cluster.get("apps/v1/deployments", NS, "alloy-zit") is not None)
        before = cluster.get("apps/v1/deployments", NS, "alloy-zit")["metadata"]["annotations"][
            SPEC_HASH_ANNOTATION
        ]  # type: ignore[index]
        response = await api.patch(
            f"{BASE}/zit",
            json={"spec": {"image": "registry.example.com/runtime:v2"}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200

        def rolled() -> bool:
            deployment = cluster.get("apps/v1/deployments", NS, "alloy-zit") or {}
            return (
                deployment["spec"]["template"]["spec"]["containers"][0]["image"]
                == "registry.example.com/runtime:v2"
            )

        await wait_for(rolled, what="the new image")
        after = cluster.get("apps/v1/deployments", NS, "alloy-zit")["metadata"]["annotations"][
            SPEC_HASH_ANNOTATION
        ]  # type: ignore[index]
        assert after != before
        await wait_for(lambda: status_of(cluster).get("observedGeneration") == 2, what="observed generation")


async def test_status_follows_pods_from_pending_to_ready_to_failed(
    cluster: Emulator, api: httpx.AsyncClient
) -> None:
    async with operating(cluster):
        await create(api, alloymodel(replicas=1))
        await wait_for(lambda: status_of(cluster).get("phase") == "Pending")
        unschedulable = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": GPU_SHORTAGE,
                }
            ],
        }
        await put_pod(api, "zit-1", unschedulable)
        await wait_for(
            lambda: status_of(cluster).get("message") == GPU_SHORTAGE, what="the scheduler's message"
        )
        scheduled = next(c for c in status_of(cluster)["conditions"] if c["type"] == "Scheduled")
        assert scheduled["status"] == "False" and scheduled["reason"] == "Unschedulable"

        running = {
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "runtime", "ready": False, "state": {"running": {}}}],
        }
        await put_pod(api, "zit-1", running)
        await wait_for(lambda: status_of(cluster).get("phase") == "Loading", what="loading")

        await set_ready_replicas(api, 1)
        await wait_for(lambda: status_of(cluster).get("phase") == "Ready", what="ready")
        assert status_of(cluster)["readyReplicas"] == 1

        await set_ready_replicas(api, 0)
        crashing = {
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "runtime",
                    "ready": False,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {
                        "terminated": {"exitCode": 1, "message": "model failed to load: OSError: gated repo"}
                    },
                }
            ],
        }
        await put_pod(api, "zit-1", crashing)
        await wait_for(lambda: status_of(cluster).get("phase") == "Failed", what="failed")
        assert (
            status_of(cluster)["message"]
            == "CrashLoopBackOff (exit code 1): model failed to load: OSError: gated repo"
        )


async def test_an_invalid_spec_is_failed_with_an_event(cluster: Emulator, api: httpx.AsyncClient) -> None:
    async with operating(cluster):
        # The API server's CEL rule refuses this; the emulator does not run CEL, so the operator must.
        await create(api, alloymodel("broken", scaling={"minReplicas": 3, "maxReplicas": 1}))
        await wait_for(lambda: status_of(cluster, "broken").get("phase") == "Failed", what="failed")
        assert "minReplicas (3) exceeds maxReplicas (1)" in status_of(cluster, "broken")["message"]
        assert cluster.get("apps/v1/deployments", NS, "alloy-broken") is None
        await wait_for(lambda: bool(events(cluster, "InvalidSpec")), what="an InvalidSpec event")
        [warning] = events(cluster, "InvalidSpec")
        assert warning["type"] == "Warning" and "maxReplicas" in warning["message"]


async def test_deleting_the_model_deletes_its_objects(cluster: Emulator, api: httpx.AsyncClient) -> None:
    async with operating(cluster):
        await create(api, alloymodel())
        await wait_for(lambda: cluster.get("v1/services", NS, "alloy-zit") is not None)
        assert (await api.delete(f"{BASE}/zit")).status_code == 200
        await wait_for(
            lambda: cluster.get(MODELS, NS, "zit") is None, what="the model gone (no finalizer holds it)"
        )
        assert cluster.get("apps/v1/deployments", NS, "alloy-zit") is None
        assert cluster.get("v1/services", NS, "alloy-zit") is None


async def test_restarting_the_operator_changes_nothing_that_is_right(
    cluster: Emulator, api: httpx.AsyncClient
) -> None:
    async with running_operator(operator_registry(cluster), settings=fast_settings()):
        await create(api, alloymodel(replicas=1))
        await wait_for(
            lambda: handled(cluster.get(MODELS, NS, "zit")) and status_of(cluster).get("phase") == "Pending",
            what="first reconcile",
        )
    before = {
        kind: cluster.get(kind, NS, name)
        for kind, name in (
            ("apps/v1/deployments", "alloy-zit"),
            ("v1/services", "alloy-zit"),
            (MODELS, "zit"),
        )
    }
    mark = cluster.mark()
    async with running_operator(operator_registry(cluster), settings=fast_settings()):
        await asyncio.sleep(2)  # time to resume every object and act, if it were going to
    assert cluster.writes(mark, prefix="/apis/apps/v1") == []
    assert cluster.writes(mark, prefix="/api/v1/namespaces/models/services") == []
    after_model = cluster.get(MODELS, NS, "zit")
    assert after_model["spec"] == before[MODELS]["spec"]  # type: ignore[index]
    assert after_model["status"] == before[MODELS]["status"]  # type: ignore[index]
    for kind in ("apps/v1/deployments", "v1/services"):
        assert cluster.get(kind, NS, "alloy-zit") == before[kind]
