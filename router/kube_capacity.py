"""What a cluster could ever run (`is_supported`): its nodes' accelerators, and the node pools the cluster
autoscaler may grow. Pure: nodes come in as the API server's JSON, decisions go out.

A node offers `status.allocatable["nvidia.com/gpu"]` (or `amd.com/gpu`) accelerators; their memory comes
from a label where GPU feature discovery sets one (`nvidia.com/gpu.memory`, in MiB; `amd.com/gpu.vram`),
else it is unknown and not held against a model. A pool with `maxNodes` counts even with no node now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from alloy.modelspec import ModelSpec, Vendor
from alloy.nodepools import NodePool
from alloy.status import Device

GIB = 2**30
DEFAULT_RESOURCES = {Vendor.NVIDIA: "nvidia.com/gpu", Vendor.AMD: "amd.com/gpu"}
MEMORY_LABELS = ("nvidia.com/gpu.memory", "amd.com/gpu.vram", "beta.amd.com/gpu.vram")


@dataclass(frozen=True)
class NodeAccelerators:
    node: str
    vendor: Vendor
    count: int
    memory_gib: float | None


@dataclass(frozen=True)
class Capacity:
    nodes: list[NodeAccelerators]
    pools: dict[Vendor, NodePool]

    def support(self, spec: ModelSpec) -> str | None:
        """None if some node, or some autoscaled pool, could hold one replica; else why not."""
        accelerator = spec.accelerator
        if accelerator.vendor is Vendor.CPU or accelerator.count == 0:
            return None
        per_device = (accelerator.memory_gib or 0) / accelerator.count
        for node in self.nodes:
            if (
                node.vendor is accelerator.vendor
                and node.count >= accelerator.count
                and _enough(node.memory_gib, per_device)
            ):
                return None
        pool = self.pools.get(accelerator.vendor)
        if (
            pool is not None
            and pool.max_nodes
            and (pool.accelerators_per_node or 0) >= accelerator.count
            and _enough(pool.accelerator_memory_gib, per_device)
        ):
            return None
        return (
            f"{spec.model_id} needs {accelerator.count} {accelerator.vendor.value} accelerator(s) with "
            f"{per_device:.0f} GiB each on one node; the cluster offers {self._describe(accelerator.vendor)}"
        )

    def _describe(self, vendor: Vendor) -> str:
        offers = [f"{n.node}: {n.count} x {_gib(n.memory_gib)}" for n in self.nodes if n.vendor is vendor]
        pool = self.pools.get(vendor)
        if pool is not None and pool.max_nodes:
            offers.append(
                f"pool {vendor.value}: up to {pool.max_nodes} nodes of {pool.accelerators_per_node or 0}"
                f" x {_gib(pool.accelerator_memory_gib)}"
            )
        return "; ".join(offers) or "none"

    def devices(self) -> list[Device]:
        """Each node's accelerators as one entry, then each autoscaled pool's potential."""
        devices = [
            Device(
                id=f"node/{n.node}",
                kind=n.vendor.value,
                name=f"{n.count} x {_gib(n.memory_gib)}",
                memory_total_bytes=int(n.count * (n.memory_gib or 0) * GIB),
                memory_reserved_bytes=0,
            )
            for n in self.nodes
        ]
        for vendor, pool in self.pools.items():
            if pool.max_nodes:
                per_node = (pool.accelerators_per_node or 0) * (pool.accelerator_memory_gib or 0)
                devices.append(
                    Device(
                        id=f"pool/{vendor.value}",
                        kind=vendor.value,
                        name=f"autoscaled, up to {pool.max_nodes} nodes",
                        memory_total_bytes=int(pool.max_nodes * per_node * GIB),
                        memory_reserved_bytes=0,
                    )
                )
        return devices


def read_capacity(nodes: list[dict[str, Any]], pools: dict[Vendor, NodePool]) -> Capacity:
    found = []
    for node in nodes:
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        labels = (node.get("metadata") or {}).get("labels") or {}
        for vendor in (Vendor.NVIDIA, Vendor.AMD):
            pool = pools.get(vendor)
            resource = (pool.resource_name if pool and pool.resource_name else None) or DEFAULT_RESOURCES[
                vendor
            ]
            count = int(allocatable.get(resource, 0) or 0)
            if count:
                found.append(NodeAccelerators(node["metadata"]["name"], vendor, count, _memory_gib(labels)))
    return Capacity(nodes=found, pools=pools)


def _memory_gib(labels: dict[str, str]) -> float | None:
    for label in MEMORY_LABELS:
        value = labels.get(label)
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([GM]i?B?|[GM])?", value or "")
        if match:
            number, unit = float(match.group(1)), (match.group(2) or "M").upper()
            return (
                number if unit.startswith("G") else number / 1024
            )  # a bare number is MiB (GPU feature discovery)
    return None


def _enough(have_gib: float | None, need_gib: float) -> bool:
    return have_gib is None or have_gib >= need_gib


def _gib(value: float | None) -> str:
    return "unknown memory" if value is None else f"{value:.0f} GiB"
