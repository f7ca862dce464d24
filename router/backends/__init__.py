"""Backends: where replicas live (local processes, or Kubernetes via the AlloyModel scale subresource)."""
