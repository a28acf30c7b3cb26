"""The settings of a job's processes (listener, workers, operator tools), validated
once at start. The names come from the system this one replaces; operators already
set them. Every problem is reported in one message, without a traceback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from publisher.imaging.options import QualityOptions
from publisher.settings import checks
from publisher.settings.loader import ConfigError, load, or_exit
from publisher.settings.schema import field

__all__ = ["ConfigError", "Settings", "database_dsn", "load_settings", "or_exit"]

#: Hosts that mean "this machine": a DATABASE_URL to any other host gets TLS.
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str = field("DATABASE_URL")
    raid_pub_endpoint: str = field("RAID_PUB_ENDPOINT")
    raid_publisher_secret: str = field("RAID_PUBLISHER_SECRET")
    b2_key_id: str = field("B2_KEY_ID")
    b2_app_key: str = field("B2_APP_KEY")
    b2_bucket: str = field("B2_BUCKET")
    b2_endpoint: str = field("B2_ENDPOINT")
    b2_region: str = field("B2_REGION")
    cdn_base_url: str = field("CDN_BASE_URL")
    #: How often the listener sweeps for runnable jobs, in milliseconds.
    worker_poll_interval_ms: int = field("WORKER_POLL_INTERVAL")
    #: Retries a job gets after its first attempt (publish_jobs.max_retries default).
    max_retries: int = field("MAX_RETRIES")
    log_level: str = field("LOG_LEVEL")
    #: text (one readable line) or json (one object per line, for log platforms).
    log_format: str = field("LOG_FORMAT")
    #: Worker threads per process, where the project launches the workers.
    concurrency: int = field("CONCURRENCY")
    #: MiB the renders of one worker process may hold at once; a source needing more is refused.
    memory_budget_mb: int = field("MEMORY_BUDGET_MB")
    #: Variant names and long-edge sizes in pixels.
    variants: tuple[tuple[str, int], ...] = field("VARIANTS")
    #: Formats each variant is published in; webp always, avif optional.
    variant_formats: tuple[str, ...] = field("VARIANT_FORMATS")
    #: Each variant's perceived-quality target (auto's, or named), or a fixed encoder quality.
    variant_quality: QualityOptions = field("VARIANT_QUALITY")
    #: Where the worker keeps a job's files while its steps run (one directory per attempt). It
    #: also names the host: its id is the hostname and an id kept here (publisher/jobs/host_identity.py).
    scratch_dir: str = field("SCRATCH_DIR")
    #: Below this many MiB free in SCRATCH_DIR a worker takes no first step and is not ready.
    scratch_min_free_mb: int = field("SCRATCH_MIN_FREE_MB")
    #: amqp:// or amqps:// URL: steps travel on RabbitMQ. Empty: on PostgreSQL (dramatiq-pg).
    broker_url: str = field("BROKER_URL")
    #: Allow an http:// RAID_PUB_ENDPOINT on another host than this one (the token then travels in clear text).
    raid_allow_plain_http: bool = field("RAID_ALLOW_PLAIN_HTTP")

    @staticmethod
    def problems(values: dict) -> dict[str, list[str]]:
        found = {}
        cleartext = checks.cleartext_problem(values["raid_pub_endpoint"], values["raid_allow_plain_http"])
        if cleartext:
            found["RAID_PUB_ENDPOINT"] = [cleartext]
        unknown = checks.unknown_variants(values["variant_quality"], values["variants"])
        if unknown:
            found["VARIANT_QUALITY"] = [unknown]
        return found

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be logged."""
        passwords = [_url_password(self.database_url), _url_password(self.broker_url)]
        passwords += [v for k, v in parse_qsl(urlsplit(self.database_url).query) if k == "password"]
        return tuple(s for s in (self.raid_publisher_secret, self.b2_app_key, *passwords) if s)


def _url_password(url: str) -> str:
    return unquote(urlsplit(url).password or "")


def database_dsn(url: str) -> str:
    """The DATABASE_URL, with sslmode=require added for a remote host that names no sslmode."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = query.get("host", parts.hostname or "")
    if "sslmode" not in query and host not in LOCAL_HOSTS and not host.startswith("/"):
        query["sslmode"] = "require"
    return urlunsplit(parts._replace(query=urlencode(query)))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Reads and validates the environment; raises ConfigError naming every problem."""
    return load(Settings, environ)
