"""Configuration from the environment, validated once at start.

The names come from the system this one replaces; operators already set them.
Every problem is reported in one message, without a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import tempfile
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from environs import Env, EnvValidationError
from marshmallow.validate import OneOf, Range

from publisher.imaging import options as imaging
from publisher.settings.environment import reader

#: Hosts that mean "this machine": a DATABASE_URL to any other host gets TLS.
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")


class ConfigError(Exception):
    """The environment is missing or has invalid variables; the message names each."""


def or_exit(load):
    """load()'s validated settings; on a bad environment, one clear message and exit status 2."""
    try:
        return load()
    except ConfigError as e:
        print(f"media-publisher: {e}", file=sys.stderr)
        raise SystemExit(2) from None


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str
    raid_pub_endpoint: str
    raid_publisher_secret: str
    b2_key_id: str
    b2_app_key: str
    b2_bucket: str
    b2_endpoint: str
    b2_region: str
    cdn_base_url: str
    #: How often the listener sweeps for runnable jobs, in milliseconds.
    worker_poll_interval_ms: int = 15000
    #: Retries a job gets after its first attempt (publish_jobs.max_retries default).
    max_retries: int = 5
    log_level: str = "info"
    #: text (one readable line) or json (one object per line, for log platforms).
    log_format: str = "text"
    #: Worker threads per process, where the project launches the workers.
    concurrency: int = 3
    #: A download is cut off past this many bytes.
    max_source_bytes: int = 200 * 1024 * 1024
    #: Sources with more pixels (read from the header) are refused before decoding.
    max_source_pixels: int = imaging.DEFAULT_MAX_SOURCE_PIXELS
    #: Variant names and long-edge sizes in pixels.
    variants: tuple[tuple[str, int], ...] = imaging.DEFAULT_VARIANTS
    #: WebP quality, 1-100.
    webp_quality: int = imaging.DEFAULT_WEBP_QUALITY
    #: Formats each variant is published in; webp always, avif optional.
    variant_formats: tuple[str, ...] = imaging.DEFAULT_FORMATS
    #: AVIF quality, 1-100.
    avif_quality: int = imaging.DEFAULT_AVIF_QUALITY
    #: Animations with more frames are published as their first frame.
    max_animation_frames: int = imaging.DEFAULT_MAX_ANIMATION_FRAMES
    #: A processing step with no heartbeat for this many seconds is presumed dead,
    #: and so is a worker host none of whose processes has beaten for as long.
    job_lease_seconds: int = 60
    #: How long a job's message may wait untouched in a queue before it is presumed lost
    #: (the job is handed out again; no retry is charged).
    job_handoff_seconds: int = 900
    #: The most a step may run (Dramatiq's time limit); past it and JOB_LEASE_SECONDS more,
    #: its lease is no longer renewed and the job is rescued.
    step_time_limit_seconds: int = 1800
    #: The listener keeps at most this many claimed-but-not-started jobs per live worker thread.
    queued_jobs_per_thread: int = 2
    #: This worker host's name: the steps of a job run on the host that fetched it. Unset:
    #: the hostname and an id kept in SCRATCH_DIR (publisher/jobs/host_identity.py).
    worker_host_id: str = ""
    #: A worker host silent this long is gone for good: its queue and heartbeat rows are removed.
    worker_host_expiry_seconds: int = 86400
    #: First and largest wait between retries of a failed step, in milliseconds.
    retry_min_backoff_ms: int = 5000
    retry_max_backoff_ms: int = 600_000
    #: Origin timeouts in seconds: to connect, and between two received bytes.
    origin_connect_timeout: float = 5.0
    origin_read_timeout: float = 60.0
    #: Where the worker keeps a job's files while its steps run (one directory per attempt);
    #: unset: media-publisher in the system's temporary directory.
    scratch_dir: str = ""
    #: Below this many MiB free in SCRATCH_DIR a worker takes no first step and is not ready.
    scratch_min_free_mb: int = 1024
    #: Bucket prefix of published variants.
    object_prefix: str = "media/"
    #: amqp:// or amqps:// URL: steps travel on RabbitMQ. Empty: on PostgreSQL (dramatiq-pg).
    broker_url: str = ""
    #: Allow an http:// RAID_PUB_ENDPOINT on another host than this one (the token then travels in clear text).
    raid_allow_plain_http: bool = False
    #: Seconds a whole download may take; by default MAX_SOURCE_BYTES at MIN_DOWNLOAD_BYTES_PER_SECOND.
    origin_download_timeout: float = 0.0
    #: MiB the renders of one worker process may hold at once; a source needing more is refused.
    memory_budget_mb: int = imaging.DEFAULT_MEMORY_BUDGET_MB

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be logged."""
        passwords = [_url_password(self.database_url), _url_password(self.broker_url)]
        passwords += [v for k, v in parse_qsl(urlsplit(self.database_url).query) if k == "password"]
        return tuple(s for s in (self.raid_publisher_secret, self.b2_app_key, *passwords) if s)


def _url_password(url: str) -> str:
    from urllib.parse import unquote

    return unquote(urlsplit(url).password or "")


def database_dsn(url: str) -> str:
    """The DATABASE_URL, with sslmode=require added for a remote host that names no sslmode."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = query.get("host", parts.hostname or "")
    if "sslmode" not in query and host not in LOCAL_HOSTS and not host.startswith("/"):
        query["sslmode"] = "require"
    return urlunsplit(parts._replace(query=urlencode(query)))


_parse_variants = imaging.parse_variants

#: The slowest origin the default download deadline waits for, and the time
#: added for the answer to start: a download slower than this ties up a worker.
MIN_DOWNLOAD_BYTES_PER_SECOND = 1024 * 1024
DOWNLOAD_START_SECONDS = 60
#: Origin timeouts above this many seconds are a typo, not a policy.
MAX_TIMEOUT_SECONDS = 24 * 3600
#: An S3 key prefix: path segments of safe characters, ending in "/" (or none at all).
OBJECT_PREFIX = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9._-]*/)*")
#: A segment named like a file's id: the database publishes no key below one
#: (publisher_key_in_folder, sql/011_retention.sql), so the prefix may hold none.
FILE_ID_SEGMENT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def default_download_timeout(max_source_bytes: int) -> float:
    return DOWNLOAD_START_SECONDS + max_source_bytes / MIN_DOWNLOAD_BYTES_PER_SECOND


def is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_object_prefix(value: str) -> str:
    if len(value) > 200 or not OBJECT_PREFIX.fullmatch(value) or any(
            part in (".", "..") for part in value.split("/")) or FILE_ID_SEGMENT.search(value):
        raise ValueError("expected path segments of letters, digits, '.', '-' or '_', each ending in '/' "
                         "(e.g. media/), no '.' or '..' segment and none named like a file id (a uuid), "
                         "or nothing for the bucket's root")
    return value


def _check_scratch_dir(value: str) -> str:
    """An absolute path this process can create and write into (checked now, not at the first job)."""
    if not value:
        return value
    if not os.path.isabs(value):
        raise ValueError("expected an absolute path")
    try:
        os.makedirs(value, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot be created: {e.strerror}") from None
    if not os.access(value, os.W_OK | os.X_OK):
        raise ValueError("is not a directory this process may write into")
    return value


def _timeout(value: float) -> bool:
    return 0 < value <= MAX_TIMEOUT_SECONDS


def _check_endpoint(value: str) -> str:
    parts = urlsplit(value if "://" in value else "https://" + value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError("expected host[:port] (https) or an http:// or https:// URL without a path")
    return value


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL")
    return value


def _check_db_url(value: str) -> str:
    if urlsplit(value).scheme not in ("postgres", "postgresql"):
        raise ValueError("expected a postgresql:// URL")
    return value


def _check_broker_url(value: str) -> str:
    if value and (urlsplit(value).scheme not in ("amqp", "amqps") or not urlsplit(value).hostname):
        raise ValueError("expected an amqp:// or amqps:// URL (RabbitMQ), or nothing for the PostgreSQL broker")
    return value


#: A worker host id: letters, digits, dots, - and _ (a hostname qualifies).
HOST_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")


def _check_host_id(value: str) -> str:
    if value and not HOST_ID.fullmatch(value):
        raise ValueError(f"expected letters, digits, '.', '-' or '_' (a hostname), got {value!r}")
    return value


def _refuse_stage_queues(value: str) -> str:
    if value.strip():
        raise ValueError("no longer supported: every step of a job runs on the worker host that fetched it "
                         "(docs: Scaling out); unset it, and start every worker without --queues")
    return value


def load_settings(environ: dict | None = None) -> Settings:
    """Reads and validates the environment; raises ConfigError naming every problem."""
    return _read(reader(environ))


def _validated(check):
    def validate(value):
        try:
            check(value)
        except ValueError as e:
            from marshmallow import ValidationError

            raise ValidationError(str(e)) from None
        return True

    return validate


def _read(env: Env) -> Settings:
    positive = Range(min=1)
    seconds = _validated_by(_timeout, f"expected seconds, more than 0 and at most {MAX_TIMEOUT_SECONDS}")
    values = dict(
        database_url=env.str("DATABASE_URL", validate=_validated(_check_db_url)),
        raid_pub_endpoint=env.str("RAID_PUB_ENDPOINT", validate=_validated(_check_url)),
        raid_publisher_secret=env.str("RAID_PUBLISHER_SECRET"),
        b2_key_id=env.str("B2_KEY_ID"),
        b2_app_key=env.str("B2_APP_KEY"),
        b2_bucket=env.str("B2_BUCKET"),
        b2_endpoint=env.str("B2_ENDPOINT", validate=_validated(_check_endpoint)),
        b2_region=env.str("B2_REGION"),
        cdn_base_url=env.str("CDN_BASE_URL", validate=_validated(_check_url)),
        worker_poll_interval_ms=env.int("WORKER_POLL_INTERVAL", 15000, validate=positive),
        max_retries=env.int("MAX_RETRIES", 5, validate=Range(min=0)),
        log_level=env.str("LOG_LEVEL", "info", validate=OneOf(LOG_LEVELS + tuple(l.upper() for l in LOG_LEVELS))),
        log_format=env.str("LOG_FORMAT", "text", validate=OneOf(LOG_FORMATS)),
        concurrency=env.int("CONCURRENCY", 3, validate=positive),
        max_source_bytes=env.int("MAX_SOURCE_BYTES", Settings.max_source_bytes, validate=positive),
        max_source_pixels=env.int("MAX_SOURCE_PIXELS", Settings.max_source_pixels, validate=positive),
        variants=env.str("VARIANTS", "thumb:400,display:1600", validate=_validated(_parse_variants)),
        webp_quality=env.int("WEBP_QUALITY", Settings.webp_quality, validate=Range(min=1, max=100)),
        variant_formats=env.str("VARIANT_FORMATS", ",".join(Settings.variant_formats),
                                validate=_validated(imaging.parse_formats)),
        avif_quality=env.int("AVIF_QUALITY", Settings.avif_quality, validate=Range(min=1, max=100)),
        max_animation_frames=env.int("MAX_ANIMATION_FRAMES", Settings.max_animation_frames, validate=positive),
        job_lease_seconds=env.int("JOB_LEASE_SECONDS", Settings.job_lease_seconds, validate=Range(min=3)),
        job_handoff_seconds=env.int("JOB_HANDOFF_SECONDS", Settings.job_handoff_seconds, validate=positive),
        step_time_limit_seconds=env.int("STEP_TIME_LIMIT_SECONDS", Settings.step_time_limit_seconds,
                                        validate=positive),
        queued_jobs_per_thread=env.int("QUEUED_JOBS_PER_THREAD", Settings.queued_jobs_per_thread,
                                       validate=positive),
        worker_host_id=env.str("WORKER_HOST_ID", "", validate=_validated(_check_host_id)),
        worker_host_expiry_seconds=env.int("WORKER_HOST_EXPIRY_SECONDS", Settings.worker_host_expiry_seconds,
                                           validate=Range(min=5)),
        retry_min_backoff_ms=env.int("RETRY_MIN_BACKOFF_MS", Settings.retry_min_backoff_ms, validate=positive),
        retry_max_backoff_ms=env.int("RETRY_MAX_BACKOFF_MS", Settings.retry_max_backoff_ms, validate=positive),
        origin_connect_timeout=env.float("ORIGIN_CONNECT_TIMEOUT", Settings.origin_connect_timeout, validate=seconds),
        origin_read_timeout=env.float("ORIGIN_READ_TIMEOUT", Settings.origin_read_timeout, validate=seconds),
        scratch_dir=env.str("SCRATCH_DIR", "", validate=_validated(_check_scratch_dir)),
        scratch_min_free_mb=env.int("SCRATCH_MIN_FREE_MB", Settings.scratch_min_free_mb, validate=Range(min=0)),
        object_prefix=env.str("OBJECT_PREFIX", Settings.object_prefix, validate=_validated(_check_object_prefix)),
        broker_url=env.str("BROKER_URL", "", validate=_validated(_check_broker_url)),
        stage_queues=env.str("STAGE_QUEUES", "", validate=_validated(_refuse_stage_queues)),
        raid_allow_plain_http=env.bool("RAID_ALLOW_PLAIN_HTTP", False),
        origin_download_timeout=env.float("ORIGIN_DOWNLOAD_TIMEOUT", None, validate=seconds),
        memory_budget_mb=env.int("MEMORY_BUDGET_MB", Settings.memory_budget_mb, validate=Range(min=64)),
    )
    cleartext = _cleartext_problem(values["raid_pub_endpoint"], values["raid_allow_plain_http"])
    try:
        env.seal()
    except EnvValidationError as e:
        errors = dict(e.error_messages)
        if cleartext:
            errors.setdefault("RAID_PUB_ENDPOINT", [cleartext])
        raise ConfigError(_describe(errors)) from None
    if cleartext:
        raise ConfigError(_describe({"RAID_PUB_ENDPOINT": [cleartext]}))
    if values["origin_download_timeout"] is None:
        values["origin_download_timeout"] = default_download_timeout(values["max_source_bytes"])
    values["log_level"] = values["log_level"].lower()
    values["variants"] = _parse_variants(values["variants"])
    values["variant_formats"] = imaging.parse_formats(values["variant_formats"])
    del values["stage_queues"]
    values["scratch_dir"] = values["scratch_dir"] or os.path.join(tempfile.gettempdir(), "media-publisher")
    values["cdn_base_url"] = values["cdn_base_url"].rstrip("/")
    return Settings(**values)


def _cleartext_problem(endpoint, allowed) -> str | None:
    if not isinstance(endpoint, str) or allowed is not False:
        return None  # missing or invalid: reported as such
    parts = urlsplit(endpoint)
    if parts.scheme != "http" or is_loopback(parts.hostname or ""):
        return None
    return (f"http:// to {parts.hostname}: the token would cross the network in clear text; use https://, "
            "or set RAID_ALLOW_PLAIN_HTTP=true if this network is trusted")


def _validated_by(predicate, message: str):
    def validate(value):
        if not predicate(value):
            from marshmallow import ValidationError

            raise ValidationError(message)
        return True

    return validate


def _describe(errors: dict) -> str:
    lines = ["invalid configuration:"]
    for name in sorted(errors):
        messages = "; ".join(str(m) for m in errors[name])
        if "not set" in messages:
            messages = "missing (required)"
        lines.append(f"  {name}: {messages}")
    return "\n".join(lines)
