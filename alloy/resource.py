"""The AlloyModel custom resource (`alloy.dev/v1alpha1`): its spec and status as typed models.

The operator reads the spec and writes the status; the router's Kubernetes backend reads both and
writes `spec.replicas` (through the scale subresource) and `status.lastActiveTime`/`status.expiresAt`.
`crds/alloymodel.yaml` is generated from these classes (`python -m alloy.operator.crd`), so the schema
the API server enforces and the models the code parses cannot drift apart.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from alloy.modelspec import CamelModel, ModelSpec

GROUP = "alloy.dev"
VERSION = "v1alpha1"
PLURAL = "alloymodels"
KIND = "AlloyModel"
API_VERSION = f"{GROUP}/{VERSION}"
MODEL_LABEL = "alloy.dev/model"  # on every object the operator makes for a model, and its pods


class AlloyModelSpec(ModelSpec):
    """What to serve and where. Kubernetes-only fields override the node pool's defaults."""

    model_id: str | None = Field(  # type: ignore[assignment]
        default=None,
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Name clients use in requests; defaults to metadata.name.",
    )
    image: str | None = Field(default=None, description="Runtime image, instead of the node pool's.")
    node_selector: dict[str, str] | None = Field(
        default=None, description="Node labels the pods require, merged over the node pool's (these win)."
    )
    tolerations: list[dict[str, Any]] | None = Field(
        default=None, description="Pod tolerations, added to the node pool's."
    )
    resources: dict[str, Any] | None = Field(
        default=None, description="Container resources (requests/limits), merged over the defaults."
    )
    env: list[dict[str, Any]] | None = Field(
        default=None, description="Extra container environment variables (Kubernetes EnvVar objects)."
    )

    def model_spec(self, name: str) -> ModelSpec:
        """The portable model spec, with `modelId` defaulted to the resource's name."""
        fields = {key: getattr(self, key) for key in ModelSpec.model_fields}
        fields["model_id"] = self.model_id or name
        return ModelSpec.model_validate(fields)


class Phase(StrEnum):
    SCALED_TO_ZERO = "ScaledToZero"
    PENDING = "Pending"
    LOADING = "Loading"
    READY = "Ready"
    FAILED = "Failed"


class Condition(CamelModel):
    """A condition in the Kubernetes style: Ready, Scheduled or Available."""

    type: str = Field(description="Ready, Scheduled or Available.")
    status: str = Field(description="True, False or Unknown.")
    reason: str | None = Field(default=None, description="One CamelCase word for machines.")
    message: str | None = Field(default=None, description="What happened, for people.")
    last_transition_time: str | None = Field(default=None, description="When status last changed (RFC 3339).")


class AlloyModelStatus(CamelModel):
    """How the model stands, written by the operator (and the router's activity fields)."""

    model_config = CamelModel.model_config | {"extra": "ignore"}

    phase: Phase | None = Field(default=None, description="ScaledToZero, Pending, Loading, Ready or Failed.")
    model_id: str | None = Field(default=None, description="The model id clients use.")
    replicas: int | None = Field(default=None, description="Pods that exist for this model.")
    ready_replicas: int | None = Field(default=None, description="Pods whose model is loaded.")
    selector: str | None = Field(default=None, description="Label selector of the pods (for the scale API).")
    endpoint: str | None = Field(default=None, description="URL of the model's Service inside the cluster.")
    message: str | None = Field(default=None, description="Why the model is in its phase.")
    observed_generation: int | None = Field(default=None, description="The spec generation last acted on.")
    last_active_time: str | None = Field(default=None, description="When a request last ended (router).")
    expires_at: str | None = Field(
        default=None, description="When the router will scale it to zero if idle; absent while kept."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Ready, Scheduled, Available.")


class ObjectMeta(BaseModel):
    """The parts of Kubernetes object metadata Alloy reads."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, validate_by_name=True)

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    resource_version: str | None = None


class AlloyModel(BaseModel):
    """A whole AlloyModel object as the API server returns it."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    metadata: ObjectMeta
    spec: AlloyModelSpec
    status: AlloyModelStatus = Field(default_factory=AlloyModelStatus)

    @property
    def model_spec(self) -> ModelSpec:
        return self.spec.model_spec(self.metadata.name)

    @property
    def runtime_name(self) -> str:
        return runtime_name(self.metadata.name)


def runtime_name(name: str) -> str:
    """Name of the Deployment and Service of an AlloyModel: a DNS label (Services need one), ≤ 63 chars."""
    label = "alloy-" + name.replace(".", "-")
    if len(label) <= 63:
        return label
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{label[:54].rstrip('-')}-{digest}"
