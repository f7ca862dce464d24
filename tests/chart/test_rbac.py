"""The chart grants the operator and the router exactly the Kubernetes API calls they make.

The calls are listed below with where each is made, and the list is checked twice: against the calls the
real components make (the operator run by Kopf, the router's Kubernetes backend, both against the API
emulator, their requests recorded), and against the rules the chart renders (no more, no less, no
wildcards). A new call in the code fails the first check until it is listed, and then the second until
the chart grants it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import kmock
import kopf
import pytest
import yaml
from kube.emulator import EmulatorThread, RealisticEmulator, kube_client
from kube.kopf_harness import add_login, fast_settings, handled, running_operator, wait_for

from alloy.operator.config import load_operator_config
from alloy.operator.handlers import register
from alloy.operator.manifests import SPEC_HASH_ANNOTATION
from alloy.operator.run import configure
from alloy.router.backends.kubernetes import KubernetesBackend
from alloy.router.config import RouterConfig, load_config
from conftest import RouterServer, wait_until

from .conftest import NAMESPACE, ROOT, Manifest, Render

Call = tuple[str, str, str]  # (API group, resource or resource/subresource, verb)
Template = Callable[..., Render]
CRD = yaml.safe_load((ROOT / "crds" / "alloymodel.yaml").read_text())
MODELS = f"/apis/alloy.dev/v1alpha1/namespaces/{NAMESPACE}/alloymodels"
MERGE = {"Content-Type": "application/merge-patch+json"}

# Every call the operator makes (`alloy operator`: Kopf with alloy.operator.handlers), and where.
OPERATOR_CALLS: dict[Call, str] = {
    ("alloy.dev", "alloymodels", "list"): "Kopf: the listing its watch starts from",
    ("alloy.dev", "alloymodels", "watch"): "Kopf: on.create/update/resume and the timer (handlers.register)",
    ("alloy.dev", "alloymodels", "patch"): "Kopf: its progress and last-handled annotations",
    ("alloy.dev", "alloymodels", "get"): "KubeApi.model, from handlers.child_changed",
    ("alloy.dev", "alloymodels/status", "patch"): "KubeApi.patch_model_status (handlers.refresh_status)",
    ("apps", "deployments", "get"): "KubeApi.apply, KubeApi.deployment",
    ("apps", "deployments", "create"): "KubeApi.apply",
    ("apps", "deployments", "update"): "KubeApi.apply: replaced when its spec hash differs",
    ("apps", "deployments", "list"): "Kopf: on.event for Deployments (handlers.child_changed)",
    ("apps", "deployments", "watch"): "Kopf: on.event for Deployments",
    ("", "services", "get"): "KubeApi.apply",
    ("", "services", "create"): "KubeApi.apply",
    ("", "services", "update"): "KubeApi.apply: replaced when its spec hash differs",
    ("", "pods", "list"): "KubeApi.pods; Kopf: on.event for pods",
    ("", "pods", "watch"): "Kopf: on.event for pods",
    ("", "events", "create"): "kopf.info / kopf.warn in handlers.reconcile",
}
# Every call the router makes (`alloy serve --backend kubernetes`), and where.
ROUTER_CALLS: dict[Call, str] = {
    ("alloy.dev", "alloymodels", "list"): "KubernetesBackend._list_models (at start and after a 410)",
    ("alloy.dev", "alloymodels", "watch"): "KubernetesBackend._watch_models",
    ("alloy.dev", "alloymodels/scale", "patch"): "KubernetesBackend.scale",
    ("alloy.dev", "alloymodels/status", "patch"): "KubernetesBackend.record_activity",
    ("", "nodes", "list"): "KubernetesBackend._refresh_capacity (is_supported)",
}
VERBS = {
    kmock.action.LIST: "list",
    kmock.action.WATCH: "watch",
    kmock.action.FETCH: "get",
    kmock.action.CREATE: "create",
    kmock.action.DELETE: "delete",
}


def recorded(emulator: RealisticEmulator) -> set[Call]:
    """The API calls among the emulator's requests, leaving out the test's own (made with httpx).

    kmock's request log says what each request did (list, watch, get...); the emulator's own log has the
    method and path as sent (it serves a PUT, /status and /scale by rewriting the request into a patch of
    the object). The two logs run in step."""
    calls = set()
    for request, sent in zip(list(emulator), emulator.calls(), strict=True):
        if request.resource is None or request.resource.plural is None:
            continue  # discovery: /version, /api, /apis/<group>/<version>
        if "python-httpx" in request.headers.get("User-Agent", ""):
            continue  # the test itself, playing the kubelet or a user
        verb = VERBS.get(request.action) or {"PATCH": "patch", "PUT": "update"}[sent.method]
        subresource = (
            sent.path.rsplit("/", 1)[1] if request.name and not sent.path.endswith(request.name) else ""
        )
        plural = request.resource.plural + (f"/{subresource}" if subresource else "")
        calls.add((request.resource.group or "", plural, verb))
    return calls


def alloymodel(name: str, **spec: Any) -> Manifest:
    return {
        "apiVersion": "alloy.dev/v1alpha1",
        "kind": "AlloyModel",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "task": "text-to-image",
            "source": {"huggingface": {"repo": "Tongyi-MAI/Z-Image-Turbo"}},
            "accelerator": {"vendor": "nvidia", "count": 1, "memoryGiB": 24},
            **spec,
        },
    }


async def test_the_operator_makes_exactly_the_listed_calls(default: Render, tmp_path: Path) -> None:
    """The operator as the chart runs it (its config, its settings, the release namespace) through a
    model's life: created, its pod seen, its spec and Service changed, and an invalid model refused.
    (Most of its five seconds are Kopf's exit, which waits that long for the model timers' tasks.)"""
    (tmp_path / "operator.yaml").write_text(default.config("operator"))
    config = load_operator_config(tmp_path / "operator.yaml")
    with EmulatorThread([CRD]) as kube:
        registry = kopf.OperatorRegistry()
        register(registry, config=config, connect=lambda: kube_client(kube.url))
        add_login(registry, kube.url)
        settings = fast_settings()
        configure(settings)  # production's settings (alloy.operator.run), then test-speed timings
        settings.watching.server_timeout, settings.networking.error_backoffs = 30, [0.1, 0.2, 0.5]

        def calls() -> set[Call]:
            return kube.call(lambda running: recorded(running.emulator))

        def phase(name: str) -> str | None:
            model = kube.get("alloy.dev/v1alpha1/alloymodels", NAMESPACE, name) or {}
            return (model.get("status") or {}).get("phase")

        async with (
            httpx.AsyncClient(base_url=kube.url) as api,
            running_operator(registry, namespaces=[NAMESPACE], settings=settings),
        ):
            assert (await api.post(MODELS, json=alloymodel("zit"))).status_code == 201
            await wait_for(lambda: handled(kube.get("alloy.dev/v1alpha1/alloymodels", NAMESPACE, "zit")))
            pod = {"metadata": {"name": "zit-0", "labels": {"alloy.dev/model": "zit"}}, "spec": {}}
            assert (await api.post(f"/api/v1/namespaces/{NAMESPACE}/pods", json=pod)).status_code == 201
            await wait_for(
                lambda: ("alloy.dev", "alloymodels", "get") in calls(), what="the pod's model read"
            )
            # Someone edits the Service, and the model's spec changes: both are replaced.
            stale = {"metadata": {"annotations": {SPEC_HASH_ANNOTATION: "stale"}}}
            await api.patch(f"/api/v1/namespaces/{NAMESPACE}/services/alloy-zit", json=stale, headers=MERGE)
            await api.patch(f"{MODELS}/zit", json={"spec": {"defaults": {"seed": 1}}}, headers=MERGE)
            await wait_for(lambda: ("", "services", "update") in calls(), what="the Service replaced")
            # An invalid model gets a Failed status and a Warning event.
            invalid = alloymodel("bad", source={"path": "/m", "builtin": "zimage"})
            assert (await api.post(MODELS, json=invalid)).status_code == 201
            await wait_for(lambda: phase("bad") == "Failed", what="the invalid model refused")
        assert calls() == set(OPERATOR_CALLS)


def test_the_router_makes_exactly_the_listed_calls(default: Render, tmp_path: Path) -> None:
    """The router with the chart's config: it lists nodes and models, watches them, scales a model whose
    keep-alive ended to zero through /scale and records its last activity in the status."""
    (tmp_path / "alloy.yaml").write_text(default.config("router"))
    chart_config = load_config(tmp_path / "alloy.yaml")
    fast = {"watch_timeout": 1, "allocation_poll": 0.1, "reap_interval": 0.2, "log_level": "warning"}
    config = RouterConfig.model_validate({**chart_config.model_dump(), **fast})
    with EmulatorThread([CRD]) as kube:
        ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
        assert httpx.post(f"{kube.url}{MODELS}", json=alloymodel("idle", replicas=1)).is_success
        status = {"phase": "Ready", "readyReplicas": 1, "replicas": 1, "endpoint": "http://127.0.0.1:9"}
        status |= {"lastActiveTime": ended, "expiresAt": ended}
        patched = httpx.patch(f"{kube.url}{MODELS}/idle/status", json={"status": status}, headers=MERGE)
        assert patched.is_success

        def backend(config: RouterConfig, registry: Any, metrics: Any) -> KubernetesBackend:
            return KubernetesBackend(
                config=config, registry=registry, metrics=metrics, connect=lambda: kube_client(kube.url)
            )

        def calls() -> set[Call]:
            return kube.call(lambda running: recorded(running.emulator))

        router = RouterServer(config, backend_factory=backend)
        router.start()
        try:
            wait_until(lambda: set(ROUTER_CALLS) <= calls(), timeout=10, what="every listed call")
        finally:
            router.stop()
        assert calls() == set(ROUTER_CALLS)


def granted(render: Render, service_account: str) -> dict[Call, str]:
    """What the rendered RBAC lets a service account do: each (group, resource, verb) and the kind of
    role that grants it."""
    roles = {(r["kind"], r["metadata"]["name"]): r for r in render.all("Role") + render.all("ClusterRole")}
    grants: dict[Call, str] = {}
    for binding in render.all("RoleBinding") + render.all("ClusterRoleBinding"):
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == service_account for s in binding["subjects"]
        ):
            continue
        role = roles[binding["roleRef"]["kind"], binding["roleRef"]["name"]]
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        grants[group, resource, verb] = role["kind"]
    return grants


@pytest.mark.parametrize("scope", ["namespace", "cluster"])
@pytest.mark.parametrize(("component", "needed"), [("operator", OPERATOR_CALLS), ("router", ROUTER_CALLS)])
def test_the_chart_grants_what_is_used_and_nothing_else(
    template: Template, scope: str, component: str, needed: dict[Call, str]
) -> None:
    render = template(*(["--set", "watchAllNamespaces=true"] if scope == "cluster" else []))
    grants = granted(render, f"alloy-{component}")
    assert set(grants) == set(needed), {
        "missing": set(needed) - set(grants),
        "unused": set(grants) - set(needed),
    }
    for (_, resource, _), kind in grants.items():
        # Nodes are cluster-scoped; everything else only in the release namespace unless asked for all.
        expected = "ClusterRole" if resource == "nodes" or scope == "cluster" else "Role"
        assert kind == expected, (resource, kind)


def test_no_rule_has_a_wildcard(template: Template) -> None:
    for render in (template(), template("--set", "watchAllNamespaces=true")):
        for role in render.all("Role") + render.all("ClusterRole"):
            for rule in copy.deepcopy(role["rules"]):
                values = rule["apiGroups"] + rule["resources"] + rule["verbs"]
                assert "*" not in values and "resourceNames" not in rule, role["metadata"]["name"]
