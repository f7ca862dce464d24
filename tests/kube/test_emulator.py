"""The emulator behaves like the API server where Kopf, the kubernetes client and our tests rely on it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import kopf
import kubernetes
import pytest

from kube.emulator import Call, Emulator, EmulatorThread, kube_client, start_emulator
from kube.kopf_harness import add_login, handled, running_operator, wait_for

# A tiny CRD whose scale paths are deliberately not the .spec.replicas/.status.replicas defaults.
WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.dev"},
    "spec": {
        "group": "example.dev",
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.size",
                        "statusReplicasPath": ".status.ready",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}
WIDGET = "example.dev/v1/widgets"
WIDGETS = "/apis/example.dev/v1/namespaces/ns1/widgets"
DEPLOYMENTS = "/apis/apps/v1/namespaces/ns1/deployments"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def widget(name: str, size: int = 1, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name, "labels": labels},
        "spec": {"size": size},
    }


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }


@pytest.fixture
async def kube() -> AsyncIterator[Emulator]:
    async with start_emulator([WIDGET_CRD]) as running:
        yield running


@pytest.fixture
async def http(kube: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=kube.url, trust_env=False) as client:
        yield client


async def test_create_fills_in_metadata_and_lists(kube: Emulator, http: httpx.AsyncClient) -> None:
    created = await http.post(WIDGETS, json={"metadata": {"name": "w1"}, "spec": {"size": 1}})
    assert created.status_code == 201
    meta = created.json()["metadata"]
    assert (
        meta["namespace"] == "ns1" and meta["uid"] and meta["generation"] == 1 and meta["creationTimestamp"]
    )
    assert created.json()["apiVersion"] == "example.dev/v1" and created.json()["kind"] == "Widget"
    assert (await http.get(f"{WIDGETS}/w1")).json() == created.json() == kube.get(WIDGET, "ns1", "w1")

    assert (await http.post(WIDGETS, json=widget("w1"))).status_code == 409
    generated = (await http.post(WIDGETS, json={"metadata": {"generateName": "w-"}})).json()
    assert generated["metadata"]["name"].startswith("w-") and len(generated["metadata"]["name"]) == 7

    listing = (await http.get(WIDGETS)).json()
    assert listing["kind"] == "WidgetList" and int(listing["metadata"]["resourceVersion"]) >= 2
    assert sorted(item["metadata"]["name"] for item in listing["items"]) == sorted(
        w["metadata"]["name"] for w in kube.list(WIDGET, "ns1")
    )
    assert kube.list(WIDGET, "other") == [] and kube.get(WIDGET, "ns1", "nope") is None
    crd = await http.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.dev")
    assert crd.json()["spec"]["names"]["kind"] == "Widget"
    discovery = (await http.get("/apis/example.dev/v1")).json()
    assert {r["name"] for r in discovery["resources"]} == {"widgets", "widgets/status", "widgets/scale"}


async def test_patches_bump_resource_version_and_generation(kube: Emulator, http: httpx.AsyncClient) -> None:
    rv0 = int((await http.post(WIDGETS, json=widget("w1"))).json()["metadata"]["resourceVersion"])

    spec_change = (await http.patch(f"{WIDGETS}/w1", json={"spec": {"size": 2}}, headers=MERGE)).json()
    assert (
        spec_change["metadata"]["generation"] == 2 and int(spec_change["metadata"]["resourceVersion"]) > rv0
    )

    label_change = await http.patch(f"{WIDGETS}/w1", json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE)
    meta = label_change.json()["metadata"]
    assert meta["generation"] == 2 and int(meta["resourceVersion"]) > int(
        spec_change["metadata"]["resourceVersion"]
    )

    ignored = await http.patch(f"{WIDGETS}/w1", json={"status": {"ready": 1}}, headers=MERGE)
    assert "status" not in ignored.json()  # with a status subresource, the main endpoint ignores .status

    stale = await http.patch(f"{WIDGETS}/w1", json={"metadata": {"resourceVersion": str(rv0)}}, headers=MERGE)
    assert stale.status_code == 409
    guarded = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": str(rv0)},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
    ]
    assert (await http.patch(f"{WIDGETS}/w1", json=guarded, headers=JSON_PATCH)).status_code == 422

    replaced = (await http.get(f"{WIDGETS}/w1")).json()
    replaced["spec"] = {"size": 3}
    put = (await http.put(f"{WIDGETS}/w1", json=replaced)).json()
    assert put["spec"] == {"size": 3} and put["metadata"]["generation"] == 3
    assert (await http.put(f"{WIDGETS}/w1", json=replaced)).status_code == 409  # its resourceVersion is old


async def test_status_subresource_writes_only_status(http: httpx.AsyncClient) -> None:
    await http.post(WIDGETS, json=widget("w1"))
    body = {"spec": {"size": 9}, "status": {"ready": 1}}
    patched = (await http.patch(f"{WIDGETS}/w1/status", json=body, headers=MERGE)).json()
    assert patched["status"] == {"ready": 1} and patched["spec"] == {"size": 1}
    assert patched["metadata"]["generation"] == 1


async def test_scale_follows_the_crd_paths(kube: Emulator, http: httpx.AsyncClient) -> None:
    await http.post(WIDGETS, json=widget("w1", size=2))
    status = {"status": {"ready": 1, "selector": "app=w1"}}
    await http.patch(f"{WIDGETS}/w1/status", json=status, headers=MERGE)

    scale = (await http.get(f"{WIDGETS}/w1/scale")).json()
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2} and scale["status"] == {"replicas": 1, "selector": "app=w1"}

    scaled = (await http.patch(f"{WIDGETS}/w1/scale", json={"spec": {"replicas": 5}}, headers=MERGE)).json()
    assert scaled["spec"]["replicas"] == 5
    stored = kube.get(WIDGET, "ns1", "w1") or {}
    assert stored["spec"] == {"size": 5} and stored["metadata"]["generation"] == 2
    bad = await http.patch(f"{WIDGETS}/w1/scale", json={"spec": {"replicas": -1}}, headers=MERGE)
    assert bad.status_code == 422

    # Builtin workloads: .spec.replicas and the serialised .spec.selector.
    await http.post(DEPLOYMENTS, json=deployment("d1", replicas=2))
    await http.patch(f"{DEPLOYMENTS}/d1/scale", json={"spec": {"replicas": 3}}, headers=MERGE)
    scale = (await http.get(f"{DEPLOYMENTS}/d1/scale")).json()
    assert scale["spec"] == {"replicas": 3} and scale["status"]["selector"] == "app=d1"


async def watch_events(http: httpx.AsyncClient, params: dict[str, str], count: int) -> list[tuple[str, str]]:
    """The first `count` events of a watch on ns1's widgets, as (type, name)."""
    events: list[tuple[str, str]] = []
    async with asyncio.timeout(5), http.stream("GET", WIDGETS, params={"watch": "true", **params}) as stream:
        async for line in stream.aiter_lines():
            if line.strip():
                event = json.loads(line)
                events.append((event["type"], event["object"]["metadata"]["name"]))
                if len(events) == count:
                    break
    return events


async def test_watch_from_a_resource_version_does_not_replay(http: httpx.AsyncClient) -> None:
    await http.post(WIDGETS, json=widget("old", tier="a"))
    since = (await http.get(WIDGETS)).json()["metadata"]["resourceVersion"]
    resumed = asyncio.create_task(watch_events(http, {"resourceVersion": since}, count=3))
    selected = asyncio.create_task(watch_events(http, {"labelSelector": "tier=b"}, count=2))
    await asyncio.sleep(0.1)  # both streams are open

    await http.post(WIDGETS, json=widget("new", tier="b"))
    await http.patch(f"{WIDGETS}/old", json={"spec": {"size": 2}}, headers=MERGE)
    await http.delete(f"{WIDGETS}/new")

    assert await resumed == [("ADDED", "new"), ("MODIFIED", "old"), ("DELETED", "new")]
    assert await selected == [("ADDED", "new"), ("DELETED", "new")]


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("tier=a", ["w1"]),
        ("tier!=a", ["w2", "w3"]),
        ("tier", ["w1", "w2"]),
        ("!tier", ["w3"]),
        ("tier in (a,b),zone=x", ["w2"]),
        ("tier notin (a)", ["w2", "w3"]),
    ],
)
async def test_label_selectors(http: httpx.AsyncClient, selector: str, names: list[str]) -> None:
    await http.post(WIDGETS, json=widget("w1", tier="a"))
    await http.post(WIDGETS, json=widget("w2", tier="b", zone="x"))
    await http.post(WIDGETS, json=widget("w3"))
    listing = (await http.get(WIDGETS, params={"labelSelector": selector})).json()
    assert sorted(item["metadata"]["name"] for item in listing["items"]) == names


async def test_owner_deletion_cascades_after_finalizers(kube: Emulator, http: httpx.AsyncClient) -> None:
    owner = await http.post(WIDGETS, json={**widget("w1"), "metadata": {"name": "w1", "finalizers": ["x/y"]}})
    reference = {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "name": "w1",
        "uid": owner.json()["metadata"]["uid"],
    }
    child = {"metadata": {"name": "c1", "ownerReferences": [reference]}, "data": {}}
    await http.post("/api/v1/namespaces/ns1/configmaps", json=child)

    deleting = (await http.delete(f"{WIDGETS}/w1")).json()
    assert deleting["metadata"]["deletionTimestamp"]
    assert kube.get("v1/configmaps", "ns1", "c1") is not None  # the owner waits for its finalizer

    await http.patch(f"{WIDGETS}/w1", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert kube.get(WIDGET, "ns1", "w1") is None
    assert kube.get("v1/configmaps", "ns1", "c1") is None


async def test_writes_lists_requests_as_sent(kube: Emulator, http: httpx.AsyncClient) -> None:
    await http.post(WIDGETS, json=widget("w1"))
    mark = kube.mark()
    await http.get(WIDGETS)
    await http.get(f"{WIDGETS}/w1/scale")
    assert kube.writes(mark) == []

    body = (await http.get(f"{WIDGETS}/w1")).json()
    await http.put(f"{WIDGETS}/w1", json=body)
    await http.patch(f"{WIDGETS}/w1/scale", json={"spec": {"replicas": 2}}, headers=MERGE)
    await http.post("/api/v1/namespaces/ns1/events", json={"metadata": {"generateName": "e-"}})
    assert kube.writes(mark) == [
        ("PUT", f"{WIDGETS}/w1"),
        ("PATCH", f"{WIDGETS}/w1/scale"),
        ("POST", "/api/v1/namespaces/ns1/events"),
    ]
    assert kube.writes(mark, prefix="/apis/example.dev/") == kube.writes(mark)[:2]


def test_emulator_thread_serves_the_sync_client() -> None:
    with EmulatorThread([WIDGET_CRD]) as kube, kube_client(kube.url) as api:
        apps = kubernetes.client.AppsV1Api(api)
        custom = kubernetes.client.CustomObjectsApi(api)
        body: Any = deployment("d1")  # the client takes plain dicts as well as its models
        apps.create_namespaced_deployment("ns1", body)
        apps.patch_namespaced_deployment_scale("d1", "ns1", {"spec": {"replicas": 3}})
        custom.create_namespaced_custom_object("example.dev", "v1", "ns1", "widgets", widget("w1"))
        custom.patch_namespaced_custom_object_status(
            "example.dev", "v1", "ns1", "widgets", "w1", {"status": {"ready": 1}}
        )
        with pytest.raises(kubernetes.client.ApiException) as missing:
            apps.read_namespaced_deployment("nope", "ns1")
        assert missing.value.status == 404

        watched = kubernetes.watch.Watch().stream(apps.list_namespaced_deployment, "ns1", timeout_seconds=1)
        assert [(event["type"], event["object"].metadata.name) for event in watched] == [("ADDED", "d1")]

        assert (kube.get("apps/v1/deployments", "ns1", "d1") or {})["spec"]["replicas"] == 3
        assert [w["status"] for w in kube.list(WIDGET)] == [{"ready": 1}]
        assert ("PATCH", "/apis/apps/v1/namespaces/ns1/deployments/d1/scale") in kube.writes()
        with pytest.raises(RuntimeError):
            kube.call(lambda running: kube.call(lambda again: None))  # on its own loop it would deadlock


async def test_kopf_operator_handles_a_widget(kube: Emulator, http: httpx.AsyncClient) -> None:
    registry = kopf.OperatorRegistry()
    add_login(registry, kube.url)

    # Sync, so Kopf runs it in its thread pool: the blocking client stays off the emulator's loop.
    @kopf.on.create("example.dev", "v1", "widgets", id="create_widget", registry=registry)
    def create_widget(
        name: str, namespace: str | None, spec: kopf.Spec, body: kopf.Body, patch: kopf.Patch, **_: Any
    ) -> Any:
        config_map: Any = {"metadata": {"name": name}, "data": {"size": str(spec["size"])}}
        kopf.adopt(config_map, owner=body)
        with kube_client(kube.url) as api:
            kubernetes.client.CoreV1Api(api).create_namespaced_config_map(namespace or "default", config_map)
        patch.status["phase"] = "Ready"
        return {"configMap": name}

    @kopf.on.delete("example.dev", "v1", "widgets", id="delete_widget", registry=registry)
    def delete_widget(**_: Any) -> None:
        """Any delete handler makes Kopf add its finalizer (a JSON patch guarded by resourceVersion)."""

    async with running_operator(registry, namespaces=["ns1"]):
        await http.post(WIDGETS, json=widget("w1"))
        await wait_for(lambda: handled(kube.get(WIDGET, "ns1", "w1")), what="w1 handled")
    handled_widget = kube.get(WIDGET, "ns1", "w1") or {}
    assert handled_widget["status"]["phase"] == "Ready"
    assert handled_widget["status"]["create_widget"] == {"configMap": "w1"}
    assert handled_widget["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
    config_map = kube.get("v1/configmaps", "ns1", "w1") or {}
    assert config_map["metadata"]["ownerReferences"][0]["uid"] == handled_widget["metadata"]["uid"]

    # A restarted operator finds everything handled and writes nothing.
    mark = kube.mark()
    async with running_operator(registry, namespaces=["ns1"]):
        await wait_for(
            lambda: kube.emulator.calls(mark).count(Call("GET", WIDGETS)) >= 2, what="list and watch"
        )
        await asyncio.sleep(0.3)  # time for the listed widget to go through Kopf's worker
        assert kube.writes(mark) == []

        await http.delete(f"{WIDGETS}/w1")
        await wait_for(lambda: kube.get(WIDGET, "ns1", "w1") is None, what="w1 deleted")
    assert kube.get("v1/configmaps", "ns1", "w1") is None  # garbage-collected with its owner
