"""Settings of the operations page (publisher-web). It needs only the database;
ADMIN_TOKEN, when set, turns on the actions (retry, cancel) behind a login."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from publisher.settings.loader import load, or_exit
from publisher.settings.schema import field

#: A shorter ADMIN_TOKEN is refused: it is the only thing between a browser and the actions.
MIN_ADMIN_TOKEN = 16


@dataclasses.dataclass(frozen=True)
class WebSettings:
    database_url: str = field("DATABASE_URL", secret=True)
    #: Loopback by default: put it behind the VPN or a reverse proxy, or set 0.0.0.0 in a container
    #: (the address every process's operations endpoints bind to; each process has its own environment).
    host: str = field("OPS_HTTP_HOST")
    port: int = field("WEB_PORT")
    #: Empty: the page is read-only and has no mutating routes at all.
    admin_token: str = field("ADMIN_TOKEN", secret=True)
    #: Shown on the page so that on-call sees where the variants are served from.
    cdn_base_url: str = field("CDN_BASE_URL", optional=True)
    #: Host names (the Host header, without port) the page answers to; others get 400 (DNS
    #: rebinding). Add the name it is reached by behind a proxy or VPN; "*.example.com" matches subdomains.
    allowed_hosts: tuple[str, ...] = field("WEB_ALLOWED_HOSTS")

    @staticmethod
    def problems(values: dict) -> dict[str, list[str]]:
        problems = {}
        if isinstance(values["allowed_hosts"], list) and not any(h.strip() for h in values["allowed_hosts"]):
            problems["WEB_ALLOWED_HOSTS"] = ["at least one host name (e.g. localhost)"]
        token = values["admin_token"]
        if token and len(token) < MIN_ADMIN_TOKEN:
            problems["ADMIN_TOKEN"] = [f"at least {MIN_ADMIN_TOKEN} characters (or unset: read-only)"]
        return problems

    @property
    def actions_enabled(self) -> bool:
        return bool(self.admin_token)


def load_web_settings(environ: Mapping[str, str] | None = None) -> WebSettings:
    """Reads and validates the page's settings; raises ConfigError naming every problem."""
    return load(WebSettings, environ)


def web_settings_or_exit() -> WebSettings:
    """The validated settings; on a bad environment, one clear message and exit status 2."""
    return or_exit(load_web_settings)
