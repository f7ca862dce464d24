"""The router's configuration: `alloy.yaml`, overridden by `alloy serve` flags and ALLOY_* variables.

```yaml
catalog: true                 # also serve the default catalog (qwen-image, z-image-turbo, ...)
allocationTimeout: 300s       # longest a request waits for its model (a request may ask for less or more)
allocationPoll: 0.5s
memoryBudgetGiB: 16           # RAM the local backend may give CPU models (default: 80% of this machine's)
runtimeEnv: {ALLOY_MAX_QUEUE: "32"}   # environment of every runtime the local backend starts
models:                       # AlloyModel specs; an entry replaces a catalog model of the same id
  - modelId: my-sdxl
    task: text-to-image
    source: {path: /models/sdxl}
    accelerator: {vendor: nvidia, memoryGiB: 12}
    scaling: {keepAlive: 10m, maxReplicas: 2}
    priority: 5
```
API keys come from `--api-key`, `ALLOY_API_KEYS` (comma-separated) or `apiKeysFile` (one per line),
never from the YAML itself, so the file can be shared.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError

from alloy.catalog import default_catalog
from alloy.modelspec import CamelModel, Duration, ModelSpec, Vendor
from alloy.nodepools import NodePool, default_node_pools


class ConfigError(Exception):
    """The configuration file cannot be used; the message says where and why."""


class RouterConfig(CamelModel):
    """Everything `alloy serve` needs; also the shape of `alloy.yaml`."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    backend: Literal["local", "kubernetes"] = "local"
    catalog: bool = Field(default=True, description="Serve the default catalog besides `models`.")
    models: list[ModelSpec] = Field(default_factory=list)
    allocation_timeout: Duration = Field(default=300.0, gt=0)
    allocation_poll: Duration = Field(default=0.5, gt=0)
    memory_budget_gib: float | None = Field(default=None, gt=0, description="RAM for CPU models.")
    gpus: Literal["auto", "none"] = Field(
        default="auto", description="auto: find GPUs with torch; none: CPU only."
    )
    api_keys_file: Path | None = None
    api_keys: list[str] = Field(default_factory=list, exclude=True, repr=False)
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "alloy")
    reap_interval: Duration = Field(default=0.5, gt=0, description="How often idle models are checked.")
    namespace: str | None = Field(
        default=None, description="Kubernetes backend: watch one namespace (else all)."
    )
    node_pools: dict[Vendor, NodePool] = Field(
        default_factory=default_node_pools, description="Kubernetes backend: pools for is_supported."
    )
    watch_timeout: Duration = Field(
        default=300.0,
        gt=0,
        description="Kubernetes backend: how long one watch request lasts before renewal.",
    )
    activity_write_interval: Duration = Field(
        default=30.0, ge=0, description="Kubernetes backend: least time between writes of a model's activity."
    )
    runtime_env: dict[str, str] = Field(
        default_factory=dict,
        description="Local backend: environment for every runtime it starts, e.g. ALLOY_MAX_QUEUE or HF_HOME "
        "(the router's own ALLOY_* variables are not passed on).",
    )
    stop_grace: Duration = Field(default=10.0, ge=0, description="Time a runtime gets to exit on SIGTERM.")
    log_level: str = "info"

    def model_specs(self) -> dict[str, ModelSpec]:
        """The models to serve: the catalog (if on) with the configured ones over it. On Kubernetes the
        AlloyModels are the models, so there are none to start with."""
        if self.backend == "kubernetes":
            return {}
        specs = default_catalog() if self.catalog else {}
        specs.update({spec.model_id: spec for spec in self.models})
        return specs


def load_config(path: Path | None, **overrides: object) -> RouterConfig:
    """Read `alloy.yaml` (if given), apply flag overrides, then gather the API keys."""
    data: dict[str, object] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"{path}: {error}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        if "apiKeys" in loaded:
            raise ConfigError(f"{path}: keep API keys out of the file; use apiKeysFile or ALLOY_API_KEYS")
        data.update(loaded)
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        config = RouterConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{path or 'configuration'}: {error}") from None
    return config.model_copy(update={"api_keys": _api_keys(config)})


def _api_keys(config: RouterConfig) -> list[str]:
    keys = list(config.api_keys)
    keys += [key.strip() for key in os.environ.get("ALLOY_API_KEYS", "").split(",") if key.strip()]
    if config.api_keys_file is not None:
        keys += [line.strip() for line in config.api_keys_file.read_text().splitlines() if line.strip()]
    return keys
