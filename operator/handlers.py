"""Kopf handlers, thin: parse the AlloyModel, render, apply, report.

- create / update / resume of an AlloyModel: apply its Service and Deployment (idempotently) and
  refresh its status; an invalid spec gets a Failed status and a Warning event instead.
- events of its Deployment or pods: refresh the owning AlloyModel's status.
- a slow timer refreshes every status too, in case an event was missed.
Deletion needs no handler: the objects are owned by the AlloyModel and garbage-collected with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client import ApiClient
from pydantic import ValidationError

from alloy.operator.config import OperatorConfig
from alloy.operator.kube import KubeApi
from alloy.operator.manifests import deployment_for, desired_replicas, service_for
from alloy.operator.status import invalid_status, model_status
from alloy.resource import GROUP, MODEL_LABEL, PLURAL, VERSION, AlloyModel

log = logging.getLogger(__name__)
STATUS_REFRESH_S = 60.0
ROUTER_FIELDS = {"last_active_time", "expires_at"}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_errors(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in error.errors())


def register(
    registry: kopf.OperatorRegistry, *, config: OperatorConfig, connect: Callable[[], ApiClient]
) -> None:
    """Add Alloy's handlers to `registry`; `connect` gives the Kubernetes client the handlers use."""
    resource = (GROUP, VERSION, PLURAL)

    @kopf.on.startup(registry=registry)
    def start(memo: kopf.Memo, **_: Any) -> None:
        memo.kube = KubeApi(connect())

    @kopf.on.resume(*resource, id="reconcile", registry=registry)
    @kopf.on.create(*resource, id="reconcile", registry=registry)
    @kopf.on.update(*resource, id="reconcile", field="spec", registry=registry)
    def reconcile(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        kube: KubeApi = memo.kube
        try:
            model = AlloyModel.model_validate(dict(body))
        except ValidationError as error:
            reason = describe_errors(error)
            namespace, name = body.metadata.namespace or "default", body.metadata.name or ""
            kube.patch_model_status(namespace, name, invalid_status(dict(body), reason, now=now()))
            kopf.warn(body, reason="InvalidSpec", message=reason)
            return  # not retried: the next change to the spec is the next chance
        written = [
            kube.apply(manifest) for manifest in (service_for(model, config), deployment_for(model, config))
        ]
        if any(written):
            kopf.info(
                body,
                reason="Applied",
                message=f"Deployment and Service {model.runtime_name}, {desired_replicas(model)} replicas",
            )
        refresh_status(kube, model)

    @kopf.on.event(
        "apps",
        "v1",
        "deployments",
        labels={"app.kubernetes.io/managed-by": "alloy-operator"},
        registry=registry,
    )
    @kopf.on.event("", "v1", "pods", labels={MODEL_LABEL: kopf.PRESENT}, registry=registry)
    def child_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        name = body.metadata.labels.get(MODEL_LABEL)
        raw = memo.kube.model(body.metadata.namespace, name) if name else None
        if raw is not None:
            refresh_raw(memo.kube, raw)

    @kopf.timer(
        *resource, id="refresh", interval=STATUS_REFRESH_S, initial_delay=STATUS_REFRESH_S, registry=registry
    )
    def refresh(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        refresh_raw(memo.kube, dict(body))


def refresh_raw(kube: KubeApi, raw: dict[str, Any]) -> None:
    try:
        model = AlloyModel.model_validate(raw)
    except ValidationError:
        return  # its Failed status was written when the spec was rejected
    refresh_status(kube, model)


def refresh_status(kube: KubeApi, model: AlloyModel) -> None:
    """Write the status the Deployment and pods imply, if it differs from what is there."""
    namespace, name = model.metadata.namespace, model.metadata.name
    status = model_status(
        model, kube.deployment(namespace, model.runtime_name), kube.pods(namespace, name), now=now()
    )
    if status != model.status:
        # The router's activity fields are the router's: never write back a value read earlier.
        patch = status.model_dump(by_alias=True, exclude_none=True, exclude=ROUTER_FIELDS)
        kube.patch_model_status(namespace, name, patch)
