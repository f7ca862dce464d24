"""`alloy serve`: the router with its backend, served by uvicorn until stopped (then every runtime it
started is stopped too)."""

from __future__ import annotations

import logging

import uvicorn

from alloy.router.app import build_app
from alloy.router.config import RouterConfig

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def serve(config: RouterConfig) -> int:
    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT)
    if config.api_keys:
        logging.getLogger(__name__).info("API keys required (%d configured)", len(config.api_keys))
    uvicorn.run(build_app(config), host=config.host, port=config.port, log_level=config.log_level)
    return 0
