"""`alloy operator`: run the Kopf operator against the cluster (in-cluster config, else kubeconfig)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import kopf

from alloy.kubeconfig import connect_from_environment
from alloy.operator.config import load_operator_config
from alloy.operator.handlers import register

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(settings: kopf.OperatorSettings) -> None:
    """Production settings: one operator replica, Events for what it does, no CRD scanning."""
    settings.peering.standalone = True
    settings.scanning.disabled = True  # the CRD is installed with the chart; no need to watch for it
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 600
    settings.networking.error_backoffs = [1, 2, 5, 10, 30]


def run(*, namespace: str | None, config_path: Path | None, liveness_port: int = 8081) -> int:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    config = load_operator_config(config_path)
    registry = kopf.OperatorRegistry()
    register(registry, config=config, connect=connect_from_environment)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def settings(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings)

    scope: dict[str, Any] = {"namespaces": [namespace]} if namespace else {"clusterwide": True}
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=True,
            liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz",
            **scope,
        )
    )
    return 0
