"""The Kopf operator: AlloyModel resources become Deployments and Services.

This folder is `alloy.operator`. It has no `__init__.py` on purpose (see setup.py): a regular package
named `operator` at the repository root would shadow the standard library's `operator` module.
"""
