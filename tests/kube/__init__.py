"""Kubernetes without a cluster, for tests: an in-process API emulator and offline manifest validation.

`kube.emulator` serves a realistic-enough Kubernetes API (kmock underneath) that Kopf and the official
client work against; `kube.crd_validation` checks custom resources against their CRD and builtin kinds
against the published OpenAPI schemas; `kube.kopf_harness` runs a Kopf operator in-process against it.
This folder is a package so that tests import it as `from kube.emulator import ...` (tests/ is on the path).
"""
