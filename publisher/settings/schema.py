"""Every setting the service reads, declared once: its variable, its default (as an
operator writes it in .env) and its check. docs/configuration.md and .env.example
list exactly these, with these defaults (tests/unit/settings/test_one_loader.py).

A value is a setting when an operator sets it per deployment: credentials, endpoints,
what is published, capacity, where files and ports are. Everything else is a named
constant with its reason (publisher/settings/fixed.py, publisher/imaging/options.py,
publisher/web/app.py).

The processes read views of these (publisher/settings/{job,ops,web}.py), each a frozen
dataclass whose fields name their setting; publisher/settings/loader.py builds them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from marshmallow import ValidationError
from marshmallow.validate import OneOf, Range

from publisher.imaging import options as imaging
from publisher.settings import checks

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    #: As written in .env; None: required.
    default: str | None
    #: The environs reader: str, int, bool or list.
    read: str = "str"
    validate: Callable[[Any], Any] | None = None
    #: The value a process sees, from the checked one (parsed, normalized, defaulted).
    convert: Callable[[Any], Any] | None = None

    @property
    def required(self) -> bool:
        return self.default is None

    @property
    def shown_default(self) -> str:
        """The default as the docs show it."""
        return "required" if self.default is None else self.default or "unset"


def _checked_by(check: Callable[[Any], Any]) -> Callable[[Any], bool]:
    """A marshmallow validator from a function raising ValueError with the reason."""
    def validate(value):
        try:
            check(value)
        except ValueError as e:
            raise ValidationError(str(e)) from None
        return True

    return validate


_positive = Range(min=1)
_port = Range(min=0, max=65535)

SETTINGS: tuple[Setting, ...] = (
    # -- where things are, and the keys to them (the names of the system we replace)
    Setting("DATABASE_URL", None, validate=_checked_by(checks.db_url)),
    Setting("RAID_PUB_ENDPOINT", None, validate=_checked_by(checks.url)),
    Setting("RAID_PUBLISHER_SECRET", None),
    Setting("RAID_ALLOW_PLAIN_HTTP", "false", read="bool"),
    Setting("B2_KEY_ID", None),
    Setting("B2_APP_KEY", None),
    Setting("B2_BUCKET", None),
    Setting("B2_ENDPOINT", None, validate=_checked_by(checks.endpoint)),
    Setting("B2_REGION", None),
    Setting("CDN_BASE_URL", None, validate=_checked_by(checks.url), convert=lambda v: v.rstrip("/")),
    Setting("BROKER_URL", "", validate=_checked_by(checks.broker_url)),
    # -- the pipeline
    Setting("WORKER_POLL_INTERVAL", "15000", read="int", validate=_positive),
    Setting("MAX_RETRIES", "5", read="int", validate=Range(min=0)),
    Setting("CONCURRENCY", "3", read="int", validate=_positive),
    Setting("VARIANTS", ",".join(f"{n}:{s}" for n, s in imaging.DEFAULT_VARIANTS),
            validate=_checked_by(imaging.parse_variants), convert=imaging.parse_variants),
    Setting("VARIANT_FORMATS", ",".join(imaging.DEFAULT_FORMATS),
            validate=_checked_by(imaging.parse_formats), convert=imaging.parse_formats),
    Setting("VARIANT_QUALITY", imaging.DEFAULT_QUALITY,
            validate=_checked_by(imaging.parse_quality), convert=imaging.parse_quality),
    Setting("MEMORY_BUDGET_MB", str(imaging.DEFAULT_MEMORY_BUDGET_MB), read="int", validate=Range(min=64)),
    Setting("SCRATCH_DIR", "", validate=_checked_by(checks.scratch_dir), convert=checks.scratch_dir_or_default),
    Setting("SCRATCH_MIN_FREE_MB", "1024", read="int", validate=Range(min=0)),
    # -- logs
    Setting("LOG_LEVEL", "info", validate=OneOf(LOG_LEVELS + tuple(level.upper() for level in LOG_LEVELS)),
            convert=str.lower),
    Setting("LOG_FORMAT", "text", validate=OneOf(LOG_FORMATS)),
    # -- completion events
    Setting("PUBLISH_WEBHOOK_URL", ""),
    Setting("PUBLISH_WEBHOOK_SECRET", ""),
    # -- metrics and health endpoints (0 turns one off), and the operations page
    Setting("OPS_HTTP_HOST", "127.0.0.1"),
    Setting("LISTENER_HTTP_PORT", "9190", read="int", validate=_port),
    Setting("WORKER_METRICS_PORT", "9191", read="int", validate=_port),
    Setting("WEB_PORT", "9180", read="int", validate=Range(min=1, max=65535)),
    Setting("WEB_ALLOWED_HOSTS", "localhost,127.0.0.1", read="list",
            convert=lambda hosts: tuple(h.strip() for h in hosts if h.strip())),
    Setting("ADMIN_TOKEN", ""),
)

BY_NAME = {s.name: s for s in SETTINGS}


def default_of(name: str) -> Any:
    """The value a process sees when `name` is not set (a dataclass field's default)."""
    from publisher.settings.environment import reader

    setting = BY_NAME[name]
    unset = {} if setting.default is None else {name: setting.default}
    raw = getattr(reader(unset), setting.read)(name)
    return setting.convert(raw) if setting.convert else raw


def field(name: str, *, optional: bool = False, secret: bool = False) -> Any:
    """A view's field read from setting `name`: with its default, or none when required
    (unless `optional`: then unset is empty, for a process that can do without it)."""
    setting = BY_NAME[name]
    metadata = {"setting": name, "optional": optional}
    if setting.required and not optional:
        return dataclasses.field(metadata=metadata, repr=not secret)
    default = "" if setting.required else default_of(name)
    return dataclasses.field(default=default, metadata=metadata, repr=not secret)
