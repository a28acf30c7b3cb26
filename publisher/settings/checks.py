"""The checks of single values (publisher/settings/schema.py names which applies to
which setting): each returns the value or raises ValueError saying what was expected.
They only look: none creates, opens or writes anything."""

from __future__ import annotations

import os
import tempfile
from urllib.parse import urlsplit

from publisher.imaging.options import parse_quality, parse_variants


def endpoint(value: str) -> str:
    parts = urlsplit(value if "://" in value else "https://" + value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError("expected host[:port] (https) or an http:// or https:// URL without a path")
    return value


def url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL")
    return value


def db_url(value: str) -> str:
    if urlsplit(value).scheme not in ("postgres", "postgresql"):
        raise ValueError("expected a postgresql:// URL")
    return value


def broker_url(value: str) -> str:
    if value and (urlsplit(value).scheme not in ("amqp", "amqps") or not urlsplit(value).hostname):
        raise ValueError("expected an amqp:// or amqps:// URL (RabbitMQ), or nothing for the PostgreSQL broker")
    return value


def unknown_variants(quality: object, variants: object) -> str | None:
    """Why VARIANT_QUALITY names a variant that VARIANTS does not make."""
    try:
        named = [name for name, _ in parse_quality(str(quality)).targets]
        known = [name for name, _ in parse_variants(str(variants))]
    except ValueError:
        return None  # invalid: reported as such
    unknown = [name for name in named if name not in known]
    if not unknown:
        return None
    return f"names {', '.join(unknown)}, which VARIANTS does not make (it makes {', '.join(known)})"


def scratch_dir(value: str) -> str:
    """An absolute path this process could create and write into, checked now (not at the
    first job) without creating it: the worker's scratch creates it when it starts."""
    if not value:
        return value
    if not os.path.isabs(value):
        raise ValueError("expected an absolute path")
    existing = value
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"cannot be created: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is not a directory this process may write into" if existing == value else \
            f"cannot be created: {existing} is not writable by this process"
        raise ValueError(what)
    return value


def scratch_dir_or_default(value: str) -> str:
    """Unset: media-publisher in the system's temporary directory."""
    return value or os.path.join(tempfile.gettempdir(), "media-publisher")


def is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cleartext_problem(endpoint: object, allowed: object) -> str | None:
    """Why an http:// RAID endpoint on another host is refused, unless allowed."""
    if not isinstance(endpoint, str) or allowed is not False:
        return None  # missing or invalid: reported as such
    parts = urlsplit(endpoint)
    if parts.scheme != "http" or is_loopback(parts.hostname or ""):
        return None
    return (f"http:// to {parts.hostname}: the token would cross the network in clear text; use https://, "
            "or set RAID_ALLOW_PLAIN_HTTP=true if this network is trusted")
