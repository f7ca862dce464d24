"""The rendered objects are valid Kubernetes, and agree with the code that reads them: the operator's and
router's config parsers, the CRD, the default catalog, and the pods the operator renders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube.crd_validation import builtin_errors, cr_errors

from alloy.catalog import default_catalog
from alloy.operator.config import load_operator_config
from alloy.operator.manifests import deployment_for, service_for
from alloy.resource import AlloyModel, AlloyModelSpec
from alloy.router.config import load_config

from .conftest import CHART, ROOT, Manifest, Render

Template = Callable[..., Render]
CRD_FILE = ROOT / "crds" / "alloymodel.yaml"
CRD = yaml.safe_load(CRD_FILE.read_text())
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest with shipped schemas.
KUBERNETES_VERSIONS = ("1.28", "1.37")
THIRD_PARTY = {"ServiceMonitor"}  # the Prometheus Operator's CRD: no schema here (see test_render.py)
# Value sets that between them render every template.
VARIANTS = {
    "default": (),
    "everything": (
        "--set", "router.ingress.enabled=true",
        "--set", "router.ingress.tls[0].secretName=alloy-tls",
        "--set", "router.ingress.tls[0].hosts[0]=alloy.example.com",
        "--set", "serviceMonitor.enabled=true",
        "--set", "modelCache.create=true",
        "--set", "router.apiKeys.existingSecret=alloy-api-keys",
        "--set", "huggingface.tokenSecret.name=hf",
        "--set", "imagePullSecrets[0]=registry",
        "--set", "priorityClasses.classes[0].name=alloy-high",
        "--set", "priorityClasses.classes[0].value=1000",
        "--set", "priorityClasses.classes[0].minPriority=10",
        "--set", "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring",
        "--set", "operator.tolerations[0].key=infra",
        "--set", "operator.tolerations[0].operator=Exists",
        "--set", "router.nodeSelector.pool=infra",
    ),
    "cluster-wide": ("--set", "watchAllNamespaces=true"),
    "upgrade": ("--api-versions", "alloy.dev/v1alpha1/AlloyModel"),
}  # fmt: skip


def objects(template: Template) -> Iterator[tuple[str, Manifest]]:
    for variant, flags in VARIANTS.items():
        for obj in template(*flags).objects:
            yield f"{variant}: {obj['kind']} {obj['metadata']['name']}", obj


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_kubernetes(template: Template, version: str) -> None:
    """Builtin kinds against the published OpenAPI schemas (strict: unknown fields are errors),
    AlloyModels against crds/alloymodel.yaml (schema, defaults and CEL rules)."""
    errors = []
    for where, obj in objects(template):
        if obj["kind"] in THIRD_PARTY:
            continue
        found = cr_errors(obj, CRD) if obj["kind"] == "AlloyModel" else builtin_errors(obj, version)
        errors += [f"{where}: {error}" for error in found]
    assert errors == []


def test_the_charts_crd_is_the_generated_one(default: Render) -> None:
    copy = CHART / "files" / "alloymodel.yaml"
    assert copy.read_bytes() == CRD_FILE.read_bytes(), (
        "charts/alloy/files/alloymodel.yaml is stale: cp crds/alloymodel.yaml charts/alloy/files/"
    )
    rendered = default.one("CustomResourceDefinition")
    labels = rendered["metadata"].pop("labels")
    rendered["metadata"].pop("annotations")
    assert labels["app.kubernetes.io/part-of"] == "alloy" and labels["app.kubernetes.io/instance"] == "alloy"
    CRD["metadata"].pop("labels")
    assert rendered == CRD, "the template changes nothing but labels and annotations"


def test_the_catalog_is_the_default_catalog(default: Render) -> None:
    """The chart's catalog mirrors alloy.catalog: same ids, sources, tasks and recommended defaults."""
    catalog = default_catalog()
    for model in default.all("AlloyModel"):
        name = model["metadata"]["name"]
        parsed = AlloyModelSpec.model_validate(model["spec"]).model_spec(name)
        expected = catalog[name]
        fields = ("task", "source", "pipeline_class", "adapters", "offload", "defaults", "accelerator")
        assert {f: getattr(parsed, f) for f in fields} == {f: getattr(expected, f) for f in fields}, name
        assert parsed.scaling == expected.scaling, "5m is the catalog's 300 s"


def test_the_operator_reads_its_config(default: Render, tmp_path: Path) -> None:
    path = tmp_path / "operator.yaml"
    path.write_text(default.config("operator"))
    config = load_operator_config(path)
    assert config.runtime.port == 8080 and config.runtime.startup_timeout == 3600
    assert config.model_cache.mount_path == "/models" and config.model_cache.existing_claim is None
    container = default.container("operator")
    [env] = [e for e in container["env"] if e["name"] == "ALLOY_OPERATOR_CONFIG"]
    assert (
        Path(env["value"]).name == "operator.yaml" and mounted(default, "operator", env["value"]) == "config"
    )
    assert container["args"] == ["operator", "--namespace=alloy"], "the release namespace only"


def test_the_router_reads_its_config(default: Render, tmp_path: Path) -> None:
    path = tmp_path / "alloy.yaml"
    path.write_text(default.config("router"))
    config = load_config(path)
    assert config.backend == "kubernetes" and config.namespace == "alloy"
    assert config.model_specs() == {}, "AlloyModels are the registry"
    assert (config.host, config.port) == ("0.0.0.0", 8000)
    assert config.allocation_timeout == 300 and config.api_keys == []
    container = default.container("router")
    assert container["args"][:2] == ["serve", "--config"]
    assert mounted(default, "router", container["args"][2]) == "config"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": config.port}


def test_api_keys_come_from_the_secret(template: Template, tmp_path: Path) -> None:
    rendered = template(
        "--set", "router.apiKeys.existingSecret=alloy-api-keys", "--set", "router.apiKeys.key=k"
    )
    raw = yaml.safe_load(rendered.config("router"))
    volume = volume_at(rendered, "router", raw["apiKeysFile"])
    assert volume["secret"]["secretName"] == "alloy-api-keys"
    assert volume["secret"]["items"] == [{"key": "k", "path": Path(raw["apiKeysFile"]).name}]
    # The router reads the mounted file: here, the same file under a temporary directory.
    keys = tmp_path / "k"
    keys.write_text("first-key\nsecond-key\n")
    path = tmp_path / "alloy.yaml"
    path.write_text(yaml.safe_dump({**raw, "apiKeysFile": str(keys)}))
    assert load_config(path).api_keys == ["first-key", "second-key"]


def test_pods_run_locked_down(template: Template) -> None:
    rendered = template(*VARIANTS["everything"])
    for component in ("operator", "router"):
        pod, container = rendered.pod(component), rendered.container(component)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"].keys() >= {"cpu", "memory"}
        assert mounted(rendered, component, "/tmp") == "tmp", "a writable /tmp on the read-only root"
        assert pod["imagePullSecrets"] == [{"name": "registry"}]
        assert pod["serviceAccountName"] == f"alloy-{component}"


def test_model_pods_accept_only_the_router(template: Template, tmp_path: Path) -> None:
    """The NetworkPolicy selects the pods the operator renders from the chart's own config, lets the
    router's pods in on the runtime's port, and nothing else."""
    rendered = template(*VARIANTS["everything"])
    path = tmp_path / "operator.yaml"
    path.write_text(rendered.config("operator"))
    config = load_operator_config(path)
    model = rendered.all("AlloyModel")[0]
    alloymodel = AlloyModel.model_validate({**model, "metadata": {**model["metadata"], "uid": "u1"}})
    deployment, service = deployment_for(alloymodel, config), service_for(alloymodel, config)
    pod = deployment["spec"]["template"]
    policy = rendered.one("NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    [port] = pod["spec"]["containers"][0]["ports"]
    assert rule["ports"] == [{"port": port["containerPort"], "protocol": "TCP"}]
    router_peer, metrics_peer = rule["from"]
    router_labels = rendered.one("Deployment", "alloy-router")["spec"]["template"]["metadata"]["labels"]
    assert router_peer["podSelector"]["matchLabels"].items() <= router_labels.items()
    assert router_peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "alloy"}
    assert metrics_peer == {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    # What the operator renders uses the chart's pools, cache claim and pull secrets.
    assert pod["spec"]["containers"][0]["image"] == "ghcr.io/alloy-dev/alloy-runtime:0.1.0-cuda"
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "alloy-models"}} in pod["spec"][
        "volumes"
    ]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    assert "priorityClassName" not in pod["spec"], "priority 0 is below alloy-high's minPriority"
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


def test_the_router_service_reaches_the_router(default: Render) -> None:
    service = default.one("Service")
    pod = default.one("Deployment", "alloy-router")["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"] and "http" in ports


def mounted(render: Render, component: str, path: str) -> str:
    """The volume that holds `path` in the component's container."""
    mounts = render.container(component)["volumeMounts"]
    holding = [
        m for m in mounts if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    assert holding, f"{path} is on no volume of the {component}"
    return str(max(holding, key=lambda m: len(m["mountPath"]))["name"])


def volume_at(render: Render, component: str, path: str) -> dict[str, Any]:
    name = mounted(render, component, path)
    [volume] = [v for v in render.pod(component)["volumes"] if v["name"] == name]
    return dict(volume)
