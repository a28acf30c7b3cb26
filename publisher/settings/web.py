"""Settings of the operations page (publisher-web). It needs only the database;
ADMIN_TOKEN, when set, turns on the actions (retry, cancel) behind a login."""

from __future__ import annotations

import dataclasses

from environs import Env, EnvValidationError
from marshmallow.validate import Range

from publisher.settings.environment import reader
from publisher.settings.job import ConfigError, _describe, or_exit

#: A shorter ADMIN_TOKEN is refused: it is the only thing between a browser and the actions.
MIN_ADMIN_TOKEN = 16


@dataclasses.dataclass(frozen=True)
class WebSettings:
    database_url: str = dataclasses.field(repr=False)
    #: Loopback by default: put it behind the VPN or a reverse proxy, or set 0.0.0.0 in a container.
    host: str = "127.0.0.1"
    port: int = 9180
    #: Empty: the page is read-only and has no mutating routes at all.
    admin_token: str = dataclasses.field(default="", repr=False)
    #: Shown on the page so that on-call sees where the variants are served from.
    cdn_base_url: str = ""
    #: Seconds between two refreshes of the overview in the browser.
    refresh_seconds: float = 5.0
    #: Set when the page is served over HTTPS only: the session cookie is then sent over HTTPS only.
    https_only: bool = False
    #: Host names (the Host header, without port) the page answers to; others get 400 (DNS
    #: rebinding). Add the name it is reached by behind a proxy or VPN; "*.example.com" matches subdomains.
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1")

    @property
    def actions_enabled(self) -> bool:
        return bool(self.admin_token)


def load_web_settings(environ: dict | None = None) -> WebSettings:
    """Reads and validates the page's settings; raises ConfigError naming every problem."""
    return _read(reader(environ))


def _read(env: Env) -> WebSettings:
    d = WebSettings
    token = env.str("ADMIN_TOKEN", "")
    values = dict(
        database_url=env.str("DATABASE_URL"),
        host=env.str("WEB_HOST", d.host),
        port=env.int("WEB_PORT", d.port, validate=Range(min=1, max=65535)),
        admin_token=token,
        cdn_base_url=env.str("CDN_BASE_URL", d.cdn_base_url),
        refresh_seconds=env.float("WEB_REFRESH_SECONDS", d.refresh_seconds, validate=Range(min=0.5)),
        https_only=env.bool("WEB_HTTPS_ONLY", d.https_only),
        allowed_hosts=tuple(h.strip() for h in env.list("WEB_ALLOWED_HOSTS", list(d.allowed_hosts)) if h.strip()),
    )
    try:
        env.seal()
    except EnvValidationError as e:
        raise ConfigError(_describe(e.error_messages)) from None
    if not values["allowed_hosts"]:
        raise ConfigError(_describe({"WEB_ALLOWED_HOSTS": ["at least one host name (e.g. localhost)"]}))
    if token and len(token) < MIN_ADMIN_TOKEN:
        raise ConfigError(_describe({"ADMIN_TOKEN": [f"at least {MIN_ADMIN_TOKEN} characters (or unset: read-only)"]}))
    return WebSettings(**values)


def web_settings_or_exit() -> WebSettings:
    """The validated settings; on a bad environment, one clear message and exit status 2."""
    return or_exit(load_web_settings)
