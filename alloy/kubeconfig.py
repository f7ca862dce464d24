"""A Kubernetes API client for Alloy's components: in-cluster configuration in a pod, else the current
kubeconfig context (for running the operator or router from a workstation)."""

from __future__ import annotations

from typing import Any


def connect_from_environment() -> Any:
    """A `kubernetes.client.ApiClient`; imported here so the core needs the client only when used."""
    import kubernetes

    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()
