"""`alloy runtime`: serve one model with uvicorn until stopped.

If the model cannot load, the process exits with status 1 after writing the reason to the
termination log, so Kubernetes shows it as the container's last error and the router's local
backend marks the model failed with it.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import uvicorn

from alloy.runtime.app import build_app
from alloy.runtime.settings import RuntimeSettings

TERMINATION_LOG = Path("/dev/termination-log")
PARENT_POLL_S = 1.0
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
    if settings.parent_pid is not None:
        _exit_with_parent(settings.parent_pid, servers[0])
    servers[0].run()
    return 1 if failed else 0


def _exit_with_parent(parent_pid: int, server: uvicorn.Server) -> None:
    """Shut down (gracefully) once the launching router is gone, so a router that was killed does not
    leave its runtimes holding memory and ports. Its death re-parents us, which getppid() shows."""

    def watch() -> None:
        while os.getppid() == parent_pid and not server.should_exit:
            threading.Event().wait(PARENT_POLL_S)
        if os.getppid() != parent_pid:
            logging.getLogger(__name__).warning("the router (pid %d) is gone; exiting", parent_pid)
            server.should_exit = True

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _write_termination_log(message: str) -> None:
    if TERMINATION_LOG.exists():
        try:
            TERMINATION_LOG.write_text(message[-4000:])  # Kubernetes keeps at most 4096 bytes
        except OSError:
            logging.getLogger(__name__).warning("could not write %s", TERMINATION_LOG)
