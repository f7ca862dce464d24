"""Render an AlloyModel into its Deployment and Service: pure functions, golden-file tested.

The vendor's node pool gives the accelerator resource, node selector, tolerations and image; the
model's own `image`, `nodeSelector`, `tolerations`, `resources` and `env` win over it. Pods run the
runtime non-root on a read-only root filesystem, with the model cache, a memory-backed /dev/shm and a
writable /tmp mounted; the startup probe gives a download and load up to `runtime.startupTimeout`.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from alloy.modelspec import Vendor
from alloy.nodepools import NodePool
from alloy.operator.config import OperatorConfig
from alloy.resource import API_VERSION, KIND, MODEL_LABEL, AlloyModel

Manifest = dict[str, Any]
SPEC_HASH_ANNOTATION = "alloy.dev/spec-hash"
CONTAINER = "runtime"


def labels(model: AlloyModel) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "alloy-runtime",
        "app.kubernetes.io/instance": model.metadata.name,
        "app.kubernetes.io/component": "model",
        "app.kubernetes.io/managed-by": "alloy-operator",
        MODEL_LABEL: model.metadata.name,
    }


def selector(model: AlloyModel) -> dict[str, str]:
    return {MODEL_LABEL: model.metadata.name}


def owner_reference(model: AlloyModel) -> dict[str, Any]:
    """Makes the objects children of the AlloyModel, so deleting it deletes them."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": model.metadata.name,
        "uid": model.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def desired_replicas(model: AlloyModel) -> int:
    """`spec.replicas` (the router's or `kubectl scale`'s), else the floor `minReplicas`."""
    replicas = model.spec.replicas
    return replicas if replicas is not None else model.spec.scaling.min_replicas


def endpoint(model: AlloyModel) -> str:
    """The model's URL inside the cluster, which the router forwards to."""
    return f"http://{model.runtime_name}.{model.metadata.namespace}.svc:80"


def deployment_for(model: AlloyModel, config: OperatorConfig) -> Manifest:
    pool = config.node_pools[model.spec.accelerator.vendor]
    deployment: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(model),
        "spec": {
            "replicas": desired_replicas(model),
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": int(config.runtime.progress_deadline),
            "selector": {"matchLabels": selector(model)},
            # No surge: a rollout must not need a second accelerator for the same model.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": {"metadata": {"labels": labels(model)}, "spec": _pod_spec(model, pool, config)},
        },
    }
    return with_spec_hash(deployment)


def service_for(model: AlloyModel, config: OperatorConfig) -> Manifest:
    service: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(model),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(model),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return with_spec_hash(service)


def with_spec_hash(manifest: Manifest) -> Manifest:
    """Stamp a hash of the rendered object, so re-applying an unchanged one can be skipped."""
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    manifest["metadata"].setdefault("annotations", {})[SPEC_HASH_ANNOTATION] = digest
    return manifest


def _metadata(model: AlloyModel) -> Manifest:
    return {
        "name": model.runtime_name,
        "namespace": model.metadata.namespace,
        "labels": labels(model),
        "ownerReferences": [owner_reference(model)],
    }


def _pod_spec(model: AlloyModel, pool: NodePool, config: OperatorConfig) -> Manifest:
    runtime = config.runtime
    pod: Manifest = {
        "nodeSelector": {**pool.node_selector, **(model.spec.node_selector or {})},
        "tolerations": [*pool.tolerations, *(model.spec.tolerations or [])],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": runtime.run_as_user,
            "runAsGroup": runtime.run_as_user,
            "fsGroup": runtime.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "automountServiceAccountToken": False,  # the runtime never talks to the Kubernetes API
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": int(runtime.termination_grace),
        "containers": [_container(model, pool, config)],
        "volumes": _volumes(config),
    }
    priority_class = config.priority_class(model.spec.priority)
    if priority_class:
        pod["priorityClassName"] = priority_class
    if runtime.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in runtime.image_pull_secrets]
    return {key: value for key, value in pod.items() if value not in ({}, [])}


def _container(model: AlloyModel, pool: NodePool, config: OperatorConfig) -> Manifest:
    runtime = config.runtime
    return {
        "name": CONTAINER,
        "image": model.spec.image or pool.image,
        "imagePullPolicy": runtime.image_pull_policy,
        "command": ["alloy", "runtime"],
        "ports": [{"name": "http", "containerPort": runtime.port, "protocol": "TCP"}],
        "env": _env(model, config),
        "resources": _resources(model, pool, config),
        "startupProbe": _probe("/ready", period=10, failures=math.ceil(runtime.startup_timeout / 10)),
        "readinessProbe": _probe("/ready", period=5, failures=3),
        "livenessProbe": _probe("/health", period=15, failures=4),
        "volumeMounts": [
            {"name": "model-cache", "mountPath": config.model_cache.mount_path},
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        # The runtime writes why a load failed to the termination log; logs are the fallback.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _env(model: AlloyModel, config: OperatorConfig) -> list[Manifest]:
    cache = config.model_cache.mount_path
    env: list[Manifest] = [
        {"name": "ALLOY_MODEL_SPEC", "value": runtime_spec(model)},
        {"name": "ALLOY_HOST", "value": "0.0.0.0"},
        {"name": "ALLOY_PORT", "value": str(config.runtime.port)},
        {"name": "ALLOY_CACHE_DIR", "value": f"{cache}/alloy"},
        {"name": "HF_HOME", "value": f"{cache}/huggingface"},
        {"name": "HOME", "value": "/tmp"},  # libraries' own caches, on the writable /tmp
    ]
    source = model.spec.source.huggingface
    token = (source.token_secret_ref or config.huggingface_token) if source is not None else None
    if token is not None:  # the model's own Secret wins over the operator's default
        secret = {"name": token.name, "key": token.key}
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": secret}})
    return env + list(model.spec.env or [])


def runtime_spec(model: AlloyModel) -> str:
    """The spec as the runtime needs it. Replicas, scaling and priority are left out: they are the router's
    and the scheduler's business, and a change to them must not change the pod template (a rollout)."""
    exclude = {"replicas", "scaling", "priority"}
    return model.model_spec.model_dump_json(by_alias=True, exclude_none=True, exclude=exclude)


def _resources(model: AlloyModel, pool: NodePool, config: OperatorConfig) -> Manifest:
    resources: Manifest = json.loads(json.dumps(config.runtime.resources))  # a copy to add to
    count = model.spec.accelerator.count
    if model.spec.accelerator.vendor is not Vendor.CPU and pool.resource_name and count > 0:
        for part in ("limits", "requests"):
            resources.setdefault(part, {})[pool.resource_name] = count
    for part, values in (model.spec.resources or {}).items():
        resources.setdefault(part, {}).update(values)
    return resources


def _probe(path: str, *, period: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _volumes(config: OperatorConfig) -> list[Manifest]:
    cache = config.model_cache
    model_cache: Manifest = (
        {"name": "model-cache", "persistentVolumeClaim": {"claimName": cache.existing_claim}}
        if cache.existing_claim
        else {"name": "model-cache", "emptyDir": _size({}, cache.empty_dir_size_limit)}
    )
    return [
        model_cache,
        {"name": "dshm", "emptyDir": _size({"medium": "Memory"}, config.runtime.shm_size)},
        {"name": "tmp", "emptyDir": _size({}, "8Gi")},
    ]


def _size(empty_dir: Manifest, limit: str | None) -> Manifest:
    return {**empty_dir, "sizeLimit": limit} if limit else empty_dir
