"""Rendered Deployments and Services: golden files, and the real Kubernetes schemas.

Regenerate the golden files after an intended change with `ALLOY_UPDATE_GOLDEN=1 pytest tests/operator`,
then read the diff."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from alloy.modelspec import SecretKeyRef
from alloy.operator.config import OperatorConfig, load_operator_config
from alloy.operator.manifests import SPEC_HASH_ANNOTATION, deployment_for, service_for
from alloy.resource import AlloyModel

DATA = Path(__file__).resolve().parents[1] / "data" / "manifests"
CASES = sorted(p.name for p in DATA.iterdir() if p.is_dir())
KUBERNETES_VERSIONS = ("1.33", "1.37")


@pytest.fixture(scope="module")
def config() -> OperatorConfig:
    return load_operator_config(DATA / "operator-config.yaml")


def load_case(case: str) -> AlloyModel:
    return AlloyModel.model_validate(yaml.safe_load((DATA / case / "alloymodel.yaml").read_text()))


def rendered(case: str, config: OperatorConfig) -> dict[str, dict[str, Any]]:
    model = load_case(case)
    return {"deployment": deployment_for(model, config), "service": service_for(model, config)}


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, config: OperatorConfig) -> None:
    for kind, manifest in rendered(case, config).items():
        golden = DATA / case / f"{kind}.yaml"
        if os.environ.get("ALLOY_UPDATE_GOLDEN"):
            golden.write_text(yaml.safe_dump(manifest, sort_keys=False, width=110))
        assert manifest == yaml.safe_load(golden.read_text()), f"{case}/{kind}.yaml differs"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_objects_are_valid_kubernetes(case: str, version: str, config: OperatorConfig) -> None:
    for manifest in rendered(case, config).values():
        kubernetes_validate.validate(manifest, version, strict=True)


def test_pools_overrides_and_security(config: OperatorConfig) -> None:
    amd = rendered("amd-overrides", config)["deployment"]
    pod = amd["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "registry.example.com/alloy-runtime:rocm-custom", "the model's image wins"
    assert pod["nodeSelector"] == {
        "alloy.dev/pool": "amd-mi325x",
        "topology.kubernetes.io/zone": "eu-west-1a",
    }
    assert [t["key"] for t in pod["tolerations"]] == ["amd.com/gpu", "dedicated"]
    assert container["resources"]["limits"] == {"amd.com/gpu": 2, "memory": "128Gi"}
    assert container["resources"]["requests"]["cpu"] == "8"
    assert {"name": "PYTORCH_HIP_ALLOC_CONF", "value": "expandable_segments:True"} in container["env"]
    assert amd["spec"]["replicas"] == 1, "minReplicas when the router has not set replicas"
    assert amd["metadata"]["name"] == "alloy-qwen-image-large", "a DNS label, from a name with a dot"
    assert "priorityClassName" not in pod, "no rule matches priority -5"
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]


def test_nvidia_model_from_the_hub(config: OperatorConfig) -> None:
    objects = rendered("nvidia-hub", config)
    pod = objects["deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert pod["priorityClassName"] == "alloy-models-high"
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "hf-token", "key": "token"}}
    spec = yaml.safe_load(env["ALLOY_MODEL_SPEC"]["value"])
    assert spec["modelId"] == "z-image-turbo" and spec["defaults"] == {
        "num_inference_steps": 9,
        "guidance_scale": 0.0,
    }
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 1800
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "alloy-models"}} in pod["volumes"]
    assert objects["deployment"]["spec"]["progressDeadlineSeconds"] >= 3600
    owner = objects["service"]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("AlloyModel", "5c1d7d2e-0000-4000-8000-000000000001")


def test_hub_models_without_a_token_get_the_operators_default(config: OperatorConfig) -> None:
    model = load_case("nvidia-hub")
    own = model.spec.source.huggingface
    assert own is not None and own.token_secret_ref is not None
    with_default = config.model_copy(update={"huggingface_token": SecretKeyRef(name="team-token", key="hf")})

    def token(model: AlloyModel) -> object:
        [container] = deployment_for(model, with_default)["spec"]["template"]["spec"]["containers"]
        return next(e["valueFrom"] for e in container["env"] if e["name"] == "HF_TOKEN")

    assert token(model) == {"secretKeyRef": {"name": "hf-token", "key": "token"}}, "the model's own wins"
    anonymous = model.model_copy(deep=True)
    anonymous.spec.source.huggingface.token_secret_ref = None  # type: ignore[union-attr]
    assert token(anonymous) == {"secretKeyRef": {"name": "team-token", "key": "hf"}}


def test_cpu_model_has_no_accelerator_and_an_empty_dir_cache() -> None:
    deployment = deployment_for(load_case("cpu-builtin"), OperatorConfig())
    pod = deployment["spec"]["template"]["spec"]
    assert not any("gpu" in key for key in pod["containers"][0]["resources"].get("limits", {}))
    assert pod["volumes"][0] == {"name": "model-cache", "emptyDir": {"sizeLimit": "200Gi"}}
    assert deployment["spec"]["replicas"] == 0


def test_the_hash_changes_with_the_spec_and_only_then(config: OperatorConfig) -> None:
    model = load_case("nvidia-hub")
    same = deployment_for(model, config)["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    assert deployment_for(model, config)["metadata"]["annotations"][SPEC_HASH_ANNOTATION] == same
    scaled = model.model_copy(update={"spec": model.spec.model_copy(update={"replicas": 2})})
    assert deployment_for(scaled, config)["metadata"]["annotations"][SPEC_HASH_ANNOTATION] != same


def test_scaling_never_changes_the_pod_template(config: OperatorConfig) -> None:
    """A changed template is a rollout: scaling or a new keep-alive must not restart running pods."""
    model = load_case("nvidia-hub")
    template = deployment_for(model, config)["spec"]["template"]
    for change in (
        {"replicas": 2},
        {"scaling": model.spec.scaling.model_copy(update={"keep_alive": 5.0})},
        {"priority": 15},
    ):  # same PriorityClass as 10
        changed = model.model_copy(update={"spec": model.spec.model_copy(update=change)})
        assert deployment_for(changed, config)["spec"]["template"] == template, change
