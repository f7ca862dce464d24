"""crds/alloymodel.yaml: generated from the pydantic models, valid as a CRD, and agreeing with them on
what an AlloyModel may say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kube.crd_validation import cr_errors, crd_errors

from alloy.catalog import default_catalog
from alloy.operator.crd import render
from alloy.resource import AlloyModelSpec

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "alloymodel.yaml"
CRD = yaml.safe_load(CRD_FILE.read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
CASES = sorted((ROOT / "tests" / "data" / "manifests").glob("*/alloymodel.yaml"))


def test_the_file_is_what_the_models_generate() -> None:
    assert CRD_FILE.read_text() == render(), (
        "stale CRD: run `python -m alloy.operator.crd > crds/alloymodel.yaml`"
    )


@pytest.mark.parametrize("version", ["1.33", "1.37"])
def test_it_is_a_valid_custom_resource_definition(version: str) -> None:
    kubernetes_validate.validate(CRD, version, strict=True)
    assert crd_errors(CRD) == []


def test_every_spec_field_of_the_model_is_in_the_schema_and_no_other() -> None:
    def fields(model: type[Any]) -> set[str]:
        return {info.alias or name for name, info in model.model_fields.items()}

    assert set(SCHEMA["properties"]["spec"]["properties"]) == fields(AlloyModelSpec)


def test_explain_has_a_description_for_every_field() -> None:
    """`kubectl explain alloymodel.spec...` prints these."""

    def undocumented(node: dict[str, Any], path: str) -> list[str]:
        missing = [] if node.get("description") or path.count(".") < 2 else [path]
        for name, child in (node.get("properties") or {}).items():
            missing += undocumented(child, f"{path}.{name}")
        return missing

    assert undocumented(SCHEMA["properties"]["spec"], "alloymodel.spec") == []
    scaling = SCHEMA["properties"]["spec"]["properties"]["scaling"]["properties"]
    assert set(scaling) == {"minReplicas", "maxReplicas", "keepAlive", "targetActiveRequests"}


def test_subresources_and_columns() -> None:
    version = CRD["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Model", "Task", "Accelerator", "Phase", "Ready", "Desired", "Age"]


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.parent.name)
def test_the_golden_inputs_are_valid_alloymodels(case: Path) -> None:
    assert cr_errors(yaml.safe_load(case.read_text()), CRD) == []


@pytest.mark.parametrize("model_id", sorted(default_catalog()))
def test_every_catalog_model_is_a_valid_alloymodel_spec(model_id: str) -> None:
    spec = default_catalog()[model_id].model_dump(by_alias=True, exclude_none=True, mode="json")
    body = {
        "apiVersion": "alloy.dev/v1alpha1",
        "kind": "AlloyModel",
        "metadata": {"name": model_id},
        "spec": spec,
    }
    assert cr_errors(body, CRD) == []


def model(**spec: Any) -> dict[str, Any]:
    base = {"task": "chat", "source": {"huggingface": {"repo": "Qwen/Qwen3-8B"}}}
    return {
        "apiVersion": "alloy.dev/v1alpha1",
        "kind": "AlloyModel",
        "metadata": {"name": "m"},
        "spec": {**base, **spec},
    }


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ({"accelerator": {"vendor": "intel"}}, "intel"),
        ({"accelerator": {"count": -1}}, "-1"),
        ({"scaling": {"minReplicas": 3, "maxReplicas": 1}}, "minReplicas must not exceed maxReplicas"),
        ({"source": {"path": "/m", "builtin": "zimage"}}, "exactly one of huggingface, path, builtin"),
        ({"scaling": {"keepAlive": "five minutes"}}, "keepAlive"),
        ({"task": "painting"}, "painting"),
        ({"replicas": -2}, "-2"),
    ],
)
def test_the_api_server_refuses_what_the_models_refuse(spec: dict[str, Any], complaint: str) -> None:
    errors = cr_errors(model(**spec), CRD)
    assert errors and any(complaint in error for error in errors), errors


def test_defaults_are_applied_as_the_models_default() -> None:
    from kube.crd_validation import with_defaults

    defaulted = with_defaults(model(), CRD)["spec"]
    parsed = AlloyModelSpec.model_validate(model()["spec"])
    assert defaulted["scaling"]["keepAlive"] == parsed.scaling.keep_alive == 300
    assert defaulted["accelerator"]["vendor"] == parsed.accelerator.vendor.value
    assert defaulted["priority"] == parsed.priority
