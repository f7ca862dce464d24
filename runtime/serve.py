"""`alloy runtime`: serve one model with uvicorn until stopped.

If the model cannot load, the process exits with status 1 after writing the reason to the
termination log, so Kubernetes shows it as the container's last error and the router's local
backend marks the model failed with it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from alloy.runtime.app import build_app
from alloy.runtime.settings import RuntimeSettings

TERMINATION_LOG = Path("/dev/termination-log")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def serve(settings: RuntimeSettings) -> int:
    """Run the server; the exit status is 1 when the model failed to load."""
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    failed: list[str] = []
    servers: list[uvicorn.Server] = []  # the failure callback stops the server built around the app

    def on_load_failure(error: str) -> None:
        failed.append(error)
        _write_termination_log(f"model failed to load: {error}")
        for server in servers:
            server.should_exit = True

    app = build_app(settings, on_load_failure=on_load_failure)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    servers.append(uvicorn.Server(config))
    servers[0].run()
    return 1 if failed else 0


def _write_termination_log(message: str) -> None:
    if TERMINATION_LOG.exists():
        try:
            TERMINATION_LOG.write_text(message[-4000:])  # Kubernetes keeps at most 4096 bytes
        except OSError:
            logging.getLogger(__name__).warning("could not write %s", TERMINATION_LOG)
