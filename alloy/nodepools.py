"""Node pools: where each accelerator vendor's models run on Kubernetes.

The chart renders one pool per vendor from its values; the operator uses a pool to place a model's
pods (resource name, node selector, tolerations, runtime image) and the router uses it to tell
whether a model could ever run (`is_supported`), counting pools the cluster autoscaler may grow.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from alloy import __version__
from alloy.modelspec import CamelModel, Vendor


class NodePool(CamelModel):
    """The nodes models of one vendor run on."""

    resource_name: str | None = Field(
        default=None, description="Extended resource of one accelerator (nvidia.com/gpu); none for CPU."
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="Labels the pool's nodes carry.")
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Taints the pool's nodes have."
    )
    image: str = Field(description="Runtime image for this vendor (CUDA, ROCm or CPU build).")
    max_nodes: int | None = Field(
        default=None,
        ge=0,
        description="Nodes the autoscaler may add; counts toward is_supported when none exist.",
    )
    accelerators_per_node: int | None = Field(default=None, ge=0, description="Accelerators on each node.")
    accelerator_memory_gib: float | None = Field(default=None, ge=0, description="Memory of one accelerator.")


def default_node_pools() -> dict[Vendor, NodePool]:
    """The pools a chart installs unless told otherwise (the images are the project's published ones,
    tagged as the chart tags them: <version>-<build>)."""
    image = f"ghcr.io/alloy-dev/alloy-runtime:{__version__}"
    return {
        Vendor.NVIDIA: NodePool(
            resource_name="nvidia.com/gpu",
            image=f"{image}-cuda",
            tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        ),
        Vendor.AMD: NodePool(
            resource_name="amd.com/gpu",
            image=f"{image}-rocm",
            tolerations=[{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        ),
        Vendor.CPU: NodePool(image=f"{image}-cpu"),
    }
