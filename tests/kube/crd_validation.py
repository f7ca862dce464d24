"""Validate Kubernetes manifests offline, reporting every error at once.

* `builtin_errors(obj)`: a builtin kind (Deployment, Service, CustomResourceDefinition, ...) against the
  OpenAPI-derived JSON schemas that kubernetes-validate ships (1.25 ... 1.37). `kubernetes_validate.validate`
  raises on the first error only; this walks the same schema files with `iter_errors`.
* `cr_errors(obj, crd)`: a custom resource against its CRD's `openAPIV3Schema`, as the API server would on
  create/update: defaults applied first, then the structural schema, then the CEL `x-kubernetes-validations`.
* `crd_errors(crd)`: the CRD manifest itself: builtin schema plus the structural-schema rules that
  kubernetes-validate does not check.

Approximations (honest list; each errs towards reporting, never towards silently passing):

* The Kubernetes schema dialect is converted to JSON Schema draft 4 (OpenAPI 3.0's boolean exclusiveMinimum):
  `nullable` widens the type with null; `x-kubernetes-int-or-string` becomes integer-or-string;
  `x-kubernetes-preserve-unknown-fields` opens an object; `x-kubernetes-embedded-resource` and the root get
  implicit apiVersion/kind/metadata. `format` is not checked, and neither are list-type/map-keys uniqueness.
* Unknown fields are errors (strict). The API server prunes them silently (or warns, or rejects with
  fieldValidation=Strict): an error here means "this field would not survive a round trip".
* Defaulting covers `default` on properties, list items and additionalProperties values; a null value is
  left as is (the API server would drop it for non-nullable fields and then default it).
* CEL runs on the `cel` module (Rust cel-interpreter) with its extended standard library (strings, lists,
  math, sets) plus `isSorted`. Missing Kubernetes libraries (quantity, url, ip/cidr, format, regex find,
  optional `.?` syntax) and runtime errors (a rule reading an absent field: the API server rejects those too)
  are reported as "CEL rule could not be evaluated", never as a pass. Null-valued keys are dropped before
  evaluation. Transition rules (`oldSelf`) run only when `old` is given and the field exists in it.
  No cost budget, no compile-time type checks of rules.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.resources
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import cel
import cel.stdlib
import jsonschema  # type: ignore[import-untyped]  # no stubs installed; used through two calls
import kubernetes_validate
from referencing import Registry, Resource

JSON = dict[str, Any]
OBJECT_META = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}

# Kubernetes CEL list library functions the `cel` stdlib does not provide.
EXTRA_CEL_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "isSorted": lambda items: list(items) == sorted(items),
}


def error_path(path: Iterable[Any]) -> str:
    return ".".join(map(str, path)) or "<root>"


# ----------------------------------------------------------------------------------------------------------
# Builtin kinds
# ----------------------------------------------------------------------------------------------------------


def minor(version: str) -> tuple[int, int]:
    """'v1.33.4' -> (1, 33); kubernetes-validate compares versions as strings, this does not."""
    major, minor_, *_ = version.lstrip("v").split(".")
    return int(major), int(minor_)


def schema_dir(version: str, strict: bool) -> Any:
    """The newest shipped schema folder not newer than `version` (kubernetes-validate's own choice)."""
    shipped = sorted(kubernetes_validate.utils.all_versions(), key=minor)
    usable = [v for v in shipped if minor(v) <= minor(version)]
    if not usable:
        raise ValueError(f"no schemas for Kubernetes {version}; shipped: {', '.join(shipped)}")
    name = f"v{usable[-1]}-local" + ("-strict" if strict else "")
    return importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema" / name


def builtin_errors(obj: Mapping[str, Any], version: str = "1.33", strict: bool = True) -> list[str]:
    """Every schema error of a builtin-kind manifest, as 'path: message'; [] if valid.

    `strict` rejects unknown fields. Raises kubernetes_validate.SchemaNotFoundError for kinds it has no
    schema for (custom resources: use `cr_errors`)."""
    base = schema_dir(version, strict)
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", obj["apiVersion"])  # apps/v1 -> apps-v1
    schema_file = base / f"{obj['kind'].lower()}-{group_version}.json"
    if not schema_file.is_file():
        raise kubernetes_validate.SchemaNotFoundError(
            kind=obj["kind"], version=version, api_version=obj["apiVersion"]
        )
    schema = json.loads(schema_file.read_text())
    definitions = json.loads((base / "_definitions.json").read_text())
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{error_path(e.absolute_path)}: {e.message}" for e in errors]


# ----------------------------------------------------------------------------------------------------------
# The CRD's schema as JSON Schema
# ----------------------------------------------------------------------------------------------------------


def version_schema(crd: Mapping[str, Any], version: str) -> JSON:
    """The openAPIV3Schema of one version of a CRD."""
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema: JSON = served["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"CRD {crd['metadata']['name']} has no version {version}")


def to_jsonschema(node: Mapping[str, Any], *, root: bool = False, strict: bool = True) -> JSON:
    """Convert a structural-schema node (OpenAPI 3.0 + x-kubernetes-*) to JSON Schema draft 4."""
    schema = {key: value for key, value in node.items() if key != "x-kubernetes-validations"}
    if "properties" in schema:
        schema["properties"] = {
            name: to_jsonschema(sub, strict=strict) for name, sub in schema["properties"].items()
        }
    for key in ("additionalProperties", "items"):
        if isinstance(schema.get(key), dict):
            schema[key] = to_jsonschema(schema[key], strict=strict)
    for key in ("allOf", "anyOf", "oneOf"):  # value validations only: no fields of their own
        if key in schema:
            schema[key] = [to_jsonschema(sub, strict=False) for sub in schema[key]]
    if "not" in schema:
        schema["not"] = to_jsonschema(schema["not"], strict=False)
    if root or schema.get("x-kubernetes-embedded-resource"):
        schema["properties"] = {**OBJECT_META, **schema.get("properties", {})}
    if schema.get("x-kubernetes-int-or-string"):
        schema.pop("type", None)
        schema.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    closed = (
        schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema
    )
    if strict and closed and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema["additionalProperties"] = False
    if schema.pop("nullable", False):
        schema = with_null(schema)
    return schema


def with_null(schema: JSON) -> JSON:
    """Allow null, widening the type rather than wrapping in anyOf (which would blur the errors)."""
    if isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        return schema
    if "anyOf" in schema:
        schema["anyOf"] = [*schema["anyOf"], {"type": "null"}]
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def structural_problems(node: Mapping[str, Any], path: str = "") -> list[str]:
    """Some of the API server's structural-schema rules that the CRD's own JSON schema does not express."""
    where = path or "<root>"
    problems = []
    if not ({"type", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields"} & set(node)):
        problems.append(f"{where}: type is required in a structural schema")
    if "properties" in node and isinstance(node.get("additionalProperties"), dict):
        problems.append(f"{where}: properties and additionalProperties are mutually exclusive")
    for name, sub in (node.get("properties") or {}).items():
        problems += structural_problems(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        problems += structural_problems(node["items"], f"{path}[*]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += structural_problems(node["additionalProperties"], f"{path}{{*}}")
    return problems


def crd_errors(crd: Mapping[str, Any], version: str = "1.33") -> list[str]:
    """Errors of a CustomResourceDefinition manifest: its builtin schema, then each version's structure."""
    errors = builtin_errors(crd, version)
    for served in crd.get("spec", {}).get("versions", []):
        schema = (served.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            errors.append(f"spec.versions[{served.get('name')}]: no openAPIV3Schema")
        else:
            errors += [f"{served['name']}: {problem}" for problem in structural_problems(schema)]
    return errors


# ----------------------------------------------------------------------------------------------------------
# Defaults and CEL rules
# ----------------------------------------------------------------------------------------------------------


def apply_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """Structural defaulting as the API server does it: fill absent properties from `default`, deeply."""
    if isinstance(value, dict):
        value = dict(value)
        for name, sub in (schema.get("properties") or {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            known = set(schema.get("properties") or ())
            value = {k: v if k in known else apply_defaults(extra, v) for k, v in value.items()}
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [apply_defaults(schema["items"], item) for item in value]
    return value


def with_defaults(obj: Mapping[str, Any], crd: Mapping[str, Any]) -> JSON:
    """The object as the API server would store it after defaulting (version from apiVersion)."""
    defaulted: JSON = apply_defaults(version_schema(crd, obj["apiVersion"].rpartition("/")[2]), obj)
    return defaulted


def drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: drop_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [drop_nulls(item) for item in value]
    return value


def cel_context(value: Any, old: Any) -> cel.Context:
    variables = {"self": drop_nulls(value)}
    if old is not None:
        variables["oldSelf"] = drop_nulls(old)
    context = cel.Context(variables)
    cel.stdlib.add_stdlib_to_context(context)
    for name, function in EXTRA_CEL_FUNCTIONS.items():
        context.add_function(name, function)
    return context


def check_rule(rule: Mapping[str, Any], value: Any, old: Any, where: str) -> str | None:
    """The error of one x-kubernetes-validations rule on `value`, or None if it holds (or does not apply)."""
    expression = rule["rule"]
    if "oldSelf" in expression and old is None:
        return None  # a transition rule: only on updates of an existing value
    context = cel_context(value, old)
    try:
        result = cel.evaluate(expression, context)
    except Exception as error:  # noqa: BLE001 -- any failure is the rule's verdict, reported below
        return f"{where}: CEL rule could not be evaluated ({type(error).__name__}: {error}): {expression}"
    if result is True:
        return None
    message = rule.get("message") or f"failed rule: {expression}"
    if rule.get("messageExpression"):
        with contextlib.suppress(Exception):  # the API server also falls back to `message`
            message = str(cel.evaluate(rule["messageExpression"], context))
    return f"{where}{rule.get('fieldPath', '')}: {message}"


def cel_errors(schema: Mapping[str, Any], value: Any, old: Any = None, path: str = "") -> Iterator[str]:
    """Evaluate every x-kubernetes-validations rule on the node it is declared on, depth first."""
    if value is None:
        return
    for rule in schema.get("x-kubernetes-validations") or []:
        error = check_rule(rule, value, old, path or "<root>")
        if error is not None:
            yield error
    if isinstance(value, dict):
        old_map = old if isinstance(old, dict) else {}
        properties = schema.get("properties") or {}
        for name, sub in properties.items():
            if name in value:
                yield from cel_errors(sub, value[name], old_map.get(name), f"{path}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                if key not in properties:
                    yield from cel_errors(extra, item, old_map.get(key), f"{path}[{key!r}]")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):  # list items are not correlated with old ones here
            yield from cel_errors(schema["items"], item, None, f"{path}[{index}]")


# ----------------------------------------------------------------------------------------------------------
# Custom resources
# ----------------------------------------------------------------------------------------------------------


def cr_errors(
    obj: Mapping[str, Any],
    crd: Mapping[str, Any],
    old: Mapping[str, Any] | None = None,
    *,
    strict: bool = True,
    defaults: bool = True,
) -> list[str]:
    """Every error of a custom resource against its CRD (version from apiVersion), as 'path: message'.

    Defaults are applied first (as the API server does before validating); `old` is the stored object
    for an update, which enables transition rules. `strict` reports unknown fields."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    if group != crd["spec"]["group"] or obj.get("kind") != crd["spec"]["names"]["kind"]:
        return [
            f"<root>: {obj.get('apiVersion')} {obj.get('kind')} is not served by {crd['metadata']['name']}"
        ]
    schema = version_schema(crd, version)
    value = apply_defaults(schema, obj) if defaults else dict(obj)
    validator = jsonschema.Draft4Validator(to_jsonschema(schema, root=True, strict=strict))
    errors = [f"{error_path(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]
    old_value = apply_defaults(schema, old) if old is not None and defaults else old
    return errors + list(cel_errors(schema, value, old_value))
