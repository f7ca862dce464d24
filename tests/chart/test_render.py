"""What `helm install alloy charts/alloy` creates, and how the values change it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from alloy.modelspec import Vendor
from alloy.nodepools import NodePool
from alloy.operator.config import load_operator_config
from alloy.router.config import load_config

from .conftest import CHART, Helm, Render

Template = Callable[..., Render]
CATALOG = {"qwen-image", "z-image-turbo", "flux2-dev", "flux2-dev-turbo", "qwen3-8b"}
SERVED = ("--api-versions", "alloy.dev/v1alpha1/AlloyModel")  # as on an upgrade: the CRD is there


def test_helm_lint_passes(helm: Helm) -> None:
    result = helm.run("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_the_default_install_has_the_whole_system(default: Render) -> None:
    assert Counter(default.kinds()) == {
        "CustomResourceDefinition": 1,
        "ServiceAccount": 2,  # operator, router
        "Role": 2,  # operator's, router's (AlloyModels of the release namespace)
        "RoleBinding": 2,
        "ClusterRole": 1,  # router: nodes
        "ClusterRoleBinding": 1,
        "ConfigMap": 2,  # operator.yaml, alloy.yaml
        "Deployment": 2,
        "Service": 1,  # the router's
        "NetworkPolicy": 1,
        "AlloyModel": 5,
    }
    assert {d["metadata"]["name"] for d in default.all("Deployment")} == {"alloy-operator", "alloy-router"}
    assert default.one("Service")["metadata"]["name"] == "alloy-router"


def test_the_catalog_starts_at_zero_replicas(default: Render) -> None:
    models = {m["metadata"]["name"]: m for m in default.all("AlloyModel")}
    assert set(models) == CATALOG
    for model in models.values():
        spec = model["spec"]
        # No spec.replicas at all: the operator starts at minReplicas (0), and helm upgrades never
        # take the field back from the router, which wakes models by writing it through /scale.
        assert "replicas" not in spec
        assert spec.get("scaling", {}).get("minReplicas", 0) == 0
        assert spec["scaling"]["keepAlive"] == "5m"


def test_catalog_models_wait_for_the_crd_on_the_first_install(template: Template) -> None:
    first = template().all("AlloyModel")
    assert all(m["metadata"]["annotations"]["helm.sh/hook"] == "post-install" for m in first)
    ownership = first[0]["metadata"]
    assert ownership["annotations"]["meta.helm.sh/release-name"] == "alloy"
    assert ownership["labels"]["app.kubernetes.io/managed-by"] == "Helm", "adoptable by the next upgrade"
    upgrade = template(*SERVED).all("AlloyModel")
    assert {m["metadata"]["name"] for m in upgrade} == CATALOG
    assert not any("annotations" in m["metadata"] for m in upgrade), "ordinary objects once served"


def test_the_catalog_can_be_left_out_whole_or_per_model(template: Template) -> None:
    assert template("--set", "catalog.enabled=false").all("AlloyModel") == []
    fewer = template("--set", "catalog.models.flux2-dev.enabled=false")
    assert {m["metadata"]["name"] for m in fewer.all("AlloyModel")} == CATALOG - {"flux2-dev"}


def test_a_custom_model_can_join_the_catalog(template: Template, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    spec = {
        "task": "text-to-image",
        "source": {"builtin": "zimage"},
        "accelerator": {"vendor": "cpu", "count": 0},
    }
    values.write_text(
        yaml.safe_dump({"catalog": {"models": {"alloy-tiny": {"enabled": True, "spec": spec}}}})
    )
    [tiny] = [
        m for m in template("-f", str(values)).all("AlloyModel") if m["metadata"]["name"] == "alloy-tiny"
    ]
    assert tiny["spec"]["source"] == {"builtin": "zimage"}


def test_the_token_secret_and_keep_alive_reach_the_catalog(template: Template) -> None:
    rendered = template(
        "--set", "huggingface.tokenSecret.name=hf", "--set", "router.defaultKeepAlive=15m"
    ).all("AlloyModel")
    for model in rendered:
        assert model["spec"]["source"]["huggingface"]["tokenSecretRef"] == {"name": "hf", "key": "token"}
        assert model["spec"]["scaling"]["keepAlive"] == "15m"


POOLS = {
    Vendor.NVIDIA: [
        "--set", "nodePools.nvidia.nodeSelector.cloud\\.google\\.com/gke-accelerator=nvidia-h100-80gb",
        "--set", "nodePools.nvidia.image.tag=v9-cuda",
        "--set", "nodePools.nvidia.maxNodes=4",
        "--set", "nodePools.nvidia.acceleratorsPerNode=8",
        "--set", "nodePools.nvidia.acceleratorMemoryGiB=80",
    ],
    Vendor.AMD: [
        "--set", "nodePools.amd.nodeSelector.alloy\\.dev/pool=mi300x",
        "--set", "nodePools.amd.image.repository=registry.example.com/alloy-runtime",
        "--set", "nodePools.amd.resourceName=amd.com/gpu-partition",
        "--set", "nodePools.amd.tolerations[0].key=dedicated",
        "--set", "nodePools.amd.tolerations[0].operator=Exists",
    ],
    Vendor.CPU: [
        "--set", "nodePools.cpu.nodeSelector.kubernetes\\.io/arch=amd64",
        "--set", "nodePools.cpu.image.tag=edge-cpu",
    ],
}  # fmt: skip
EXPECTED = {
    Vendor.NVIDIA: NodePool(
        resource_name="nvidia.com/gpu",
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        image="ghcr.io/alloy-dev/alloy-runtime:v9-cuda",
        max_nodes=4,
        accelerators_per_node=8,
        accelerator_memory_gib=80,
    ),
    Vendor.AMD: NodePool(
        resource_name="amd.com/gpu-partition",
        node_selector={"alloy.dev/pool": "mi300x"},
        tolerations=[{"key": "dedicated", "operator": "Exists"}],
        image="registry.example.com/alloy-runtime:0.1.0-rocm",
    ),
    Vendor.CPU: NodePool(
        node_selector={"kubernetes.io/arch": "amd64"}, image="ghcr.io/alloy-dev/alloy-runtime:edge-cpu"
    ),
}


@pytest.mark.parametrize("vendor", list(Vendor))
def test_each_pool_reaches_the_operator_and_the_router(
    vendor: Vendor, template: Template, default: Render, tmp_path: Path
) -> None:
    rendered = template(*POOLS[vendor])
    operator_file, router_file = tmp_path / "operator.yaml", tmp_path / "alloy.yaml"
    operator_file.write_text(rendered.config("operator"))
    router_file.write_text(rendered.config("router"))
    operator, router = load_operator_config(operator_file), load_config(router_file)
    assert operator.node_pools[vendor] == EXPECTED[vendor]
    assert router.node_pools == operator.node_pools, "is_supported sees the pools the operator places on"
    # Only that pool changed.
    (tmp_path / "default.yaml").write_text(default.config("operator"))
    before = load_operator_config(tmp_path / "default.yaml").node_pools
    assert {v for v in Vendor if operator.node_pools[v] != before[v]} == {vendor}


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (["--set", "routr.allocationTimeout=60"], "additional properties 'routr' not allowed"),
        (["--set", "nodePools.nvidia.imagee.tag=x"], "additional properties 'imagee' not allowed"),
        (["--set", "catalog.models.qwen-image.enabeld=false"], "additional properties 'enabeld' not allowed"),
        (["--set", "router.allocationTimeout=five minutes"], "/router/allocationTimeout"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "nodePools.intel.image.repository=x"], "additional properties 'intel' not allowed"),
        (["--set", "nodePools.nvidia.maxNodes=4"], "/nodePools/nvidia/acceleratorsPerNode"),
    ],
)
def test_a_wrong_value_fails_on_the_schema(helm: Helm, flags: list[str], complaint: str) -> None:
    result = helm.run("template", "alloy", str(CHART), *flags)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr


def test_the_crd_can_be_left_out_or_let_go(template: Template, default: Render) -> None:
    crd = default.one("CustomResourceDefinition")
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}, "kept by default"
    assert template("--set", "crds.enabled=false").all("CustomResourceDefinition") == []
    let_go = template("--set", "crds.keep=false").one("CustomResourceDefinition")
    assert "annotations" not in let_go["metadata"]


def test_ingress_is_optional_and_points_at_the_router(template: Template, default: Render) -> None:
    assert default.all("Ingress") == []
    rendered = template(
        "--set", "router.ingress.enabled=true",
        "--set", "router.ingress.className=nginx",
        "--set", "router.ingress.hosts[0].host=models.example.com",
        "--set", "router.ingress.hosts[0].paths[0].path=/",
        "--set", "router.ingress.hosts[0].paths[0].pathType=Prefix",
    )  # fmt: skip
    ingress = rendered.one("Ingress")
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "models.example.com" and ingress["spec"]["ingressClassName"] == "nginx"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = rendered.one("Service")
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_service_monitors_are_optional(template: Template, default: Render) -> None:
    """ServiceMonitor is the Prometheus Operator's kind: checked here by hand, not by a schema."""
    assert default.all("ServiceMonitor") == []
    rendered = template("--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=prom")
    monitors = {m["metadata"]["name"]: m for m in rendered.all("ServiceMonitor")}
    assert set(monitors) == {"alloy-router", "alloy-models"}
    router_service = rendered.one("Service")
    selector = monitors["alloy-router"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= router_service["metadata"]["labels"].items()
    assert (
        monitors["alloy-router"]["spec"]["endpoints"][0]["port"] == router_service["spec"]["ports"][0]["name"]
    )
    # The operator's Services for models carry these labels and a port named http.
    assert (
        monitors["alloy-models"]["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        == "alloy-runtime"
    )
    assert all(m["metadata"]["labels"]["release"] == "prom" for m in monitors.values())


def test_all_namespaces_makes_the_rbac_and_the_watch_cluster_wide(template: Template, tmp_path: Path) -> None:
    rendered = template("--set", "watchAllNamespaces=true")
    assert rendered.all("Role") == [] and rendered.all("RoleBinding") == []
    assert {r["metadata"]["name"] for r in rendered.all("ClusterRole")} == {
        "alloy-alloy-operator",
        "alloy-alloy-router",
    }
    assert rendered.container("operator")["args"] == ["operator"]
    (tmp_path / "alloy.yaml").write_text(rendered.config("router"))
    assert load_config(tmp_path / "alloy.yaml").namespace is None


def test_the_model_cache_claim(template: Template, default: Render, tmp_path: Path) -> None:
    def cache(render: Render) -> str | None:
        (tmp_path / "operator.yaml").write_text(render.config("operator"))
        return load_operator_config(tmp_path / "operator.yaml").model_cache.existing_claim

    assert default.all("PersistentVolumeClaim") == [] and cache(default) is None, "an emptyDir per pod"
    created = template("--set", "modelCache.create=true", "--set", "modelCache.storageClassName=filestore")
    claim = created.one("PersistentVolumeClaim")
    assert claim["spec"]["storageClassName"] == "filestore"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert cache(created) == claim["metadata"]["name"]
    existing = template("--set", "modelCache.existingClaim=weights", "--set", "modelCache.create=true")
    assert existing.all("PersistentVolumeClaim") == [] and cache(existing) == "weights"


def test_the_hub_token_secret_is_the_operators_default(template: Template, tmp_path: Path) -> None:
    rendered = template("--set", "huggingface.tokenSecret.name=hf-token")
    (tmp_path / "operator.yaml").write_text(rendered.config("operator"))
    token = load_operator_config(tmp_path / "operator.yaml").huggingface_token
    assert token is not None and (token.name, token.key) == ("hf-token", "token")


def test_priority_classes_and_their_rules(template: Template, tmp_path: Path) -> None:
    rendered = template(
        "--set", "priorityClasses.classes[0].name=alloy-high",
        "--set", "priorityClasses.classes[0].value=1000",
        "--set", "priorityClasses.classes[0].minPriority=10",
        "--set", "priorityClasses.classes[1].name=alloy-normal",
        "--set", "priorityClasses.classes[1].value=0",
        "--set", "priorityClasses.classes[1].minPriority=0",
        "--set", "priorityClasses.classes[1].preemptionPolicy=Never",
    )  # fmt: skip
    classes = {c["metadata"]["name"]: c for c in rendered.all("PriorityClass")}
    assert classes["alloy-high"]["value"] == 1000 and classes["alloy-normal"]["preemptionPolicy"] == "Never"
    (tmp_path / "operator.yaml").write_text(rendered.config("operator"))
    config = load_operator_config(tmp_path / "operator.yaml")
    assert [config.priority_class(p) for p in (-1, 0, 9, 10, 50)] == [
        None,
        "alloy-normal",
        "alloy-normal",
        "alloy-high",
        "alloy-high",
    ]


def test_the_install_notes_say_how_to_reach_the_router(helm: Helm) -> None:
    result = helm.run("install", "alloy", str(CHART), "--namespace", "alloy", "--dry-run=client")
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "kubectl port-forward -n alloy svc/alloy-router 8000:80" in notes
    assert "No API keys are configured" in notes
