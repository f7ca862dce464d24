"""Generate the AlloyModel CustomResourceDefinition from the pydantic models in `alloy.resource`.

    python -m alloy.operator.crd > crds/alloymodel.yaml     # a test fails if the file is stale

Pydantic's JSON Schema becomes a *structural* OpenAPI v3 schema, as the API server requires: refs are
inlined, `anyOf [X, null]` becomes `nullable`, `additionalProperties: false` is dropped (the server
prunes unknown fields instead), open mappings keep unknown fields, durations become int-or-string,
and the cross-field rules the models enforce become CEL `x-kubernetes-validations`.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import yaml

from alloy.resource import GROUP, KIND, PLURAL, VERSION, AlloyModelSpec, AlloyModelStatus

Schema = dict[str, Any]

# The cross-field rules of the pydantic models, for the API server to check before anything is stored.
CEL_RULES: dict[str, list[dict[str, str]]] = {
    "Source": [
        {
            "rule": "[has(self.huggingface), has(self.path), has(self.builtin)].filter(x, x).size() == 1",
            "message": "source needs exactly one of huggingface, path, builtin",
        }
    ],
    "Scaling": [
        {
            "rule": "!has(self.minReplicas) || !has(self.maxReplicas) "
            "|| self.minReplicas <= self.maxReplicas",
            "message": "minReplicas must not exceed maxReplicas",
        }
    ],
}
PRINTER_COLUMNS = [
    {"name": "Model", "type": "string", "jsonPath": ".status.modelId"},
    {"name": "Task", "type": "string", "jsonPath": ".spec.task"},
    {"name": "Accelerator", "type": "string", "jsonPath": ".spec.accelerator.vendor"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


# Pydantic emits these; a structural schema has no use for them (and forbids `additionalProperties: false`).
DROPPED_KEYWORDS = ("title", "additionalProperties", "$defs")


def structural(schema: Schema, defs: dict[str, Schema]) -> Schema:
    """One pydantic JSON Schema node as a structural OpenAPI v3 node."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        node = structural({**defs[name], **{k: v for k, v in schema.items() if k != "$ref"}}, defs)
        if name in CEL_RULES:
            node["x-kubernetes-validations"] = CEL_RULES[name]
        return node
    node = {k: copy.deepcopy(v) for k, v in schema.items() if k not in DROPPED_KEYWORDS}
    if "default" in node and node["default"] is None:
        del node["default"]  # "absent" is the default of an optional field; null is not a value to store
    if node.pop("x-alloy-duration", False):
        return _duration(node)
    variants = node.pop("anyOf", None)
    if variants is not None:  # `X | None`: the schema of X, marked nullable
        kept = [v for v in variants if v.get("type") != "null"]
        merged = {**structural(kept[0], defs), **node}
        if len(kept) < len(variants):
            merged["nullable"] = True
        return merged
    if "exclusiveMinimum" in node:  # JSON Schema's number form is OpenAPI 3.0's boolean plus minimum
        node["minimum"], node["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if "properties" in node:
        node["properties"] = {k: structural(v, defs) for k, v in node["properties"].items()}
        required = set(node.get("required", []))
        for name, child in node["properties"].items():
            # The API server defaults fields only inside objects that exist: an optional object whose own
            # fields all have defaults (scaling, accelerator) defaults to {} so those defaults apply too.
            if (
                name not in required
                and "properties" in child
                and not child.get("required")
                and not child.get("nullable")
                and "default" not in child
            ):
                child["default"] = {}
    if "items" in node:
        node["items"] = structural(node["items"], defs)
    if node.get("type") == "object" and "properties" not in node:
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict) and additional:
            node["additionalProperties"] = structural(additional, defs)  # a map of typed values
        else:
            node["x-kubernetes-preserve-unknown-fields"] = True  # free-form: defaults, tolerations, ...
    return node


def _duration(node: Schema) -> Schema:
    default = node.pop("default", None)
    out: Schema = {
        **node,
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h)?)+$"}],
    }
    if default is not None:
        out["default"] = int(default) if float(default).is_integer() else f"{default}s"
    return out


def openapi_schema(model: type[Any]) -> Schema:
    raw = model.model_json_schema(by_alias=True)
    return structural(raw, raw.get("$defs", {}))


def custom_resource_definition() -> dict[str, Any]:
    spec = openapi_schema(AlloyModelSpec)
    spec["required"] = [name for name in spec.get("required", []) if name != "modelId"]
    root = {
        "type": "object",
        "description": "A generative model served by Alloy: what to serve, where, and how it scales.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": openapi_schema(AlloyModelStatus),
        },
        "required": ["spec"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "alloy"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": PLURAL,
                "singular": KIND.lower(),
                "kind": KIND,
                "listKind": f"{KIND}List",
                "shortNames": ["am"],
                "categories": ["alloy"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated by `python -m alloy.operator.crd` from alloy/resource.py; do not edit by hand.\n"
    return header + yaml.safe_dump(custom_resource_definition(), sort_keys=False, width=110)


if __name__ == "__main__":
    sys.stdout.write(render())
