"""The operator's configuration: node pools and pod defaults, from a YAML file the chart renders into a
ConfigMap (mounted at ALLOY_OPERATOR_CONFIG).

```yaml
nodePools:                      # per vendor: resourceName, nodeSelector, tolerations, image, maxNodes, ...
  nvidia: {resourceName: nvidia.com/gpu, image: ghcr.io/alloy-dev/alloy-runtime:cuda,
           nodeSelector: {cloud.google.com/gke-accelerator: nvidia-h100-80gb}}
modelCache: {existingClaim: alloy-models}      # else an emptyDir per pod
runtime: {startupTimeout: 45m, shmSize: 16Gi}
priorityClasses: [{name: alloy-high, minPriority: 10}, {name: alloy-normal, minPriority: 0}]
huggingfaceToken: {name: hf-token, key: token}  # for Hub models without their own tokenSecretRef
```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from alloy.modelspec import CamelModel, Duration, SecretKeyRef, Vendor
from alloy.nodepools import NodePool, default_node_pools

CONFIG_ENV = "ALLOY_OPERATOR_CONFIG"


class ModelCache(CamelModel):
    """Where downloaded weights live: a shared PVC (ReadWriteMany where available) or a per-pod emptyDir."""

    existing_claim: str | None = Field(default=None, description="PVC to mount; none: an emptyDir per pod.")
    mount_path: str = Field(default="/models", description="Where the cache is mounted in the runtime.")
    empty_dir_size_limit: str | None = Field(default="200Gi", description="Bound of the emptyDir fallback.")


class RuntimePod(CamelModel):
    """Pod settings every model's runtime gets (a model's spec may override resources and env)."""

    port: int = Field(default=8080, ge=1, le=65535)
    startup_timeout: Duration = Field(default=3600.0, gt=0, description="Download and load time allowed.")
    progress_deadline: Duration = Field(
        default=7200.0,
        gt=0,
        description="Deployment progress deadline: long, so a GPU node being added is not a failure.",
    )
    termination_grace: Duration = Field(default=300.0, ge=0, description="Time to finish in-flight requests.")
    shm_size: str = Field(default="16Gi", description="Size of /dev/shm (a memory emptyDir).")
    resources: dict[str, Any] = Field(
        default_factory=lambda: {"requests": {"cpu": "2", "memory": "16Gi"}},
        description="Container resources; the accelerator limit is added per model.",
    )
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: list[str] = Field(default_factory=list)
    run_as_user: int = Field(default=1000, ge=1, description="Non-root user the runtime runs as.")


class PriorityClassRule(CamelModel):
    """Models with `priority` ≥ `minPriority` get this PriorityClass (the highest matching rule wins)."""

    name: str
    min_priority: int


class OperatorConfig(CamelModel):
    node_pools: dict[Vendor, NodePool] = Field(default_factory=default_node_pools)
    model_cache: ModelCache = Field(default_factory=ModelCache)
    runtime: RuntimePod = Field(default_factory=RuntimePod)
    priority_classes: list[PriorityClassRule] = Field(default_factory=list)
    huggingface_token: SecretKeyRef | None = Field(
        default=None,
        description="Secret with a Hub token for models from the Hub that name none (gated repositories).",
    )

    def priority_class(self, priority: int) -> str | None:
        matching = [rule for rule in self.priority_classes if priority >= rule.min_priority]
        return max(matching, key=lambda rule: rule.min_priority).name if matching else None


class OperatorConfigError(Exception):
    """The configuration file cannot be used; the message says where and why."""


def load_operator_config(path: Path | None = None) -> OperatorConfig:
    """The file at `path` (or $ALLOY_OPERATOR_CONFIG); the defaults when there is none."""
    source = path or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if source is None:
        return OperatorConfig()
    try:
        data = yaml.safe_load(source.read_text()) or {}
        return OperatorConfig.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise OperatorConfigError(f"{source}: {error}") from None
