"""The Helm chart (charts/alloy), its images' Dockerfiles, and the RBAC they need.

A package (like `kube`) so that its conftest.py is `chart.conftest` and never shadows the suite's own
`conftest`, which other tests import from.
"""
