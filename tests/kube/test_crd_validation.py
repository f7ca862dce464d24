"""Offline validation finds every error the API server would report, and reports what it cannot check."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from kube.crd_validation import builtin_errors, cr_errors, crd_errors, with_defaults

SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["image"],
    "x-kubernetes-validations": [
        {
            "rule": "self.minReplicas <= self.maxReplicas",
            "message": "minReplicas must not exceed maxReplicas",
        },
    ],
    "properties": {
        "image": {
            "type": "string",
            "minLength": 1,
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "image is immutable"}],
        },
        "minReplicas": {"type": "integer", "minimum": 0, "default": 0},
        "maxReplicas": {"type": "integer", "minimum": 1, "default": 3},
        "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "gpu": {
            "type": "object",
            "nullable": True,
            "properties": {
                "type": {"type": "string", "enum": ["h100", "h200"]},
                "count": {"type": "integer"},
            },
        },
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "quota": {
            "type": "string",
            "x-kubernetes-validations": [{"rule": "quantity(self).isGreaterThan(quantity('0'))"}],
        },
    },
}
GADGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.dev"},
    "spec": {
        "group": "example.dev",
        "scope": "Namespaced",
        "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {"spec": SPEC_SCHEMA, "status": {"type": "object"}},
                    }
                },
            }
        ],
    },
}


def gadget(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.dev/v1",
        "kind": "Gadget",
        "metadata": {"name": "g1"},
        "spec": {"image": "server:1", **spec},
    }


def test_a_valid_gadget_gets_its_defaults() -> None:
    assert cr_errors(gadget(), GADGET_CRD) == []
    assert with_defaults(gadget(), GADGET_CRD)["spec"] == {
        "image": "server:1",
        "minReplicas": 0,
        "maxReplicas": 3,
    }


@pytest.mark.parametrize("port", [8080, "http"])
def test_int_or_string_takes_both(port: int | str) -> None:
    assert cr_errors(gadget(port=port), GADGET_CRD) == []


def test_nullable_allows_null_but_not_other_types() -> None:
    assert cr_errors(gadget(gpu=None), GADGET_CRD) == []
    assert cr_errors(gadget(gpu="h100"), GADGET_CRD) == ["spec.gpu: 'h100' is not of type 'object', 'null'"]


def test_every_error_is_reported_at_once() -> None:
    errors = cr_errors(
        gadget(image="", port=1.5, gpu={"type": "b200"}, colour="red", extra={"x": 1}), GADGET_CRD
    )
    assert sorted(errors) == [
        "spec.gpu.type: 'b200' is not one of ['h100', 'h200']",
        "spec.image: '' should be non-empty",
        "spec.port: 1.5 is not valid under any of the given schemas",
        "spec: Additional properties are not allowed ('colour' was unexpected)",
    ]


def test_cel_rules_see_the_defaults() -> None:
    assert cr_errors(gadget(minReplicas=5), GADGET_CRD) == [".spec: minReplicas must not exceed maxReplicas"]
    assert cr_errors(gadget(minReplicas=5, maxReplicas=5), GADGET_CRD) == []


def test_transition_rules_apply_to_updates_only() -> None:
    old = gadget()
    changed = copy.deepcopy(old)
    changed["spec"]["image"] = "server:2"
    assert cr_errors(changed, GADGET_CRD) == []
    assert cr_errors(changed, GADGET_CRD, old=old) == [".spec.image: image is immutable"]


def test_a_rule_it_cannot_evaluate_is_an_error_not_a_pass() -> None:
    [error] = cr_errors(gadget(quota="1Gi"), GADGET_CRD)
    assert error.startswith(".spec.quota: CEL rule could not be evaluated")


def test_an_object_of_another_kind_is_rejected() -> None:
    other = {**gadget(), "kind": "Widget"}
    assert cr_errors(other, GADGET_CRD) == [
        "<root>: example.dev/v1 Widget is not served by gadgets.example.dev"
    ]


def test_builtin_kinds_report_every_error() -> None:
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d1"},
        "spec": {
            "replicas": "2",
            "template": {"spec": {"containers": [{"name": "c", "imag": "i"}]}},
        },
    }
    assert builtin_errors(deployment) == [
        "spec: 'selector' is a required property",
        "spec.replicas: '2' is not of type 'integer', 'null'",
        "spec.template.spec.containers.0: Additional properties are not allowed ('imag' was unexpected)",
    ]
    assert builtin_errors(deployment, strict=False) == builtin_errors(deployment)[:2]
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        builtin_errors(gadget())


def test_crd_manifests_are_checked_for_structure() -> None:
    assert crd_errors(GADGET_CRD) == []
    broken = copy.deepcopy(GADGET_CRD)
    del broken["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["gpu"][
        "type"
    ]
    assert crd_errors(broken) == ["v1: .spec.gpu: type is required in a structural schema"]
