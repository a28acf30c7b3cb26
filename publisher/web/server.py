"""`publisher-web` (or `python -m publisher.web`): serves the page on
OPS_HTTP_HOST:WEB_PORT with uvicorn until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging

import uvicorn

from publisher.settings.web import web_settings_or_exit
from publisher.web.app import create_app


def main() -> int:
    settings = web_settings_or_exit()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    mode = "actions after login with ADMIN_TOKEN" if settings.actions_enabled else "read-only (no ADMIN_TOKEN)"
    logging.getLogger("publisher.web").info("serving http://%s:%s/, %s", settings.host, settings.port, mode)
    # One process: the page is for a few people, and a session cookie needs no shared store.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                access_log=False, server_header=False)
    return 0
