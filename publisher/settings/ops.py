"""Settings for operating the service: ports of the metrics and health
endpoints, and the maintenance schedule. Read from the environment like the
rest (publisher/settings/job.py), kept apart because no step of a job needs them.

A port of 0 turns that endpoint off.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

from environs import Env, EnvValidationError

from publisher.logs import url_secrets
from publisher.settings.environment import reader
from marshmallow.validate import Range

from publisher.settings.job import ConfigError, _describe, or_exit


@dataclasses.dataclass(frozen=True)
class OpsSettings:
    #: Address the metrics and health endpoints bind to. Loopback by default:
    #: in a container set 0.0.0.0 so the platform can reach them.
    http_host: str = "127.0.0.1"
    #: The listener's /metrics, /healthz and /readyz.
    listener_port: int = 9190
    #: The workers' /metrics (Dramatiq's Prometheus exposition, all processes together).
    worker_metrics_port: int = 9191
    #: Worker process i serves /healthz and /readyz on this port + i.
    worker_health_port: int = 9192
    #: Base directory of the workers' prometheus_client multiprocess files.
    metrics_dir: str = ""
    #: Seconds between two reads of the job table for the listener's gauges.
    metrics_interval: float = 15.0
    #: Seconds between two maintenance rounds run by the listener (0: never).
    maintenance_interval: float = 3600.0
    #: Completed jobs older than this many days are deleted.
    completed_job_retention_days: float = 90.0
    #: Files soft-deleted (auction_files.deleted_at) longer ago than this are purged, objects included.
    deleted_file_retention_days: float = 30.0
    #: Broker rows done or rejected longer ago than this many hours are deleted.
    broker_retention_hours: float = 24.0
    #: /healthz of the listener fails when its loop has not turned for this many seconds.
    listener_stall_seconds: float = 120.0
    #: Where the listener POSTs completion events (empty: no webhook, no outbox rows).
    webhook_url: str = ""
    #: The HMAC-SHA256 key of the webhook's signature header.
    webhook_secret: str = dataclasses.field(default="", repr=False)
    #: Seconds one POST may take before it counts as failed and is tried again later.
    webhook_timeout: float = 10.0
    #: Days a delivered (or given-up) event stays in the outbox.
    event_retention_days: float = 7.0
    #: publish_job_events rows older than this many days are deleted.
    job_event_retention_days: float = 90.0
    #: Days an object no file publishes (superseded, or left by a job that did not publish it) stays in the bucket.
    superseded_object_grace_days: float = 7.0

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be logged: the webhook's secret and what its URL may carry."""
        return tuple(s for s in (self.webhook_secret, *url_secrets(self.webhook_url, path=True)) if s)

    @property
    def worker_metrics_dir(self) -> str:
        return self.metrics_dir or os.path.join(tempfile.gettempdir(), "media-publisher-metrics")


def load_ops_settings(environ: dict | None = None) -> OpsSettings:
    """Reads and validates the operations settings; raises ConfigError naming every problem."""
    return _read(reader(environ))


def _read(env: Env) -> OpsSettings:
    port = Range(min=0, max=65535)
    non_negative = Range(min=0)
    d = OpsSettings
    values = dict(
        http_host=env.str("OPS_HTTP_HOST", d.http_host),
        listener_port=env.int("LISTENER_HTTP_PORT", d.listener_port, validate=port),
        worker_metrics_port=env.int("WORKER_METRICS_PORT", d.worker_metrics_port, validate=port),
        worker_health_port=env.int("WORKER_HEALTH_PORT", d.worker_health_port, validate=port),
        metrics_dir=env.str("METRICS_DIR", d.metrics_dir),
        metrics_interval=env.float("METRICS_INTERVAL", d.metrics_interval, validate=Range(min=0.1)),
        maintenance_interval=env.float("MAINTENANCE_INTERVAL", d.maintenance_interval, validate=non_negative),
        completed_job_retention_days=env.float(
            "COMPLETED_JOB_RETENTION_DAYS", d.completed_job_retention_days, validate=non_negative),
        deleted_file_retention_days=env.float(
            "DELETED_FILE_RETENTION_DAYS", d.deleted_file_retention_days, validate=non_negative),
        broker_retention_hours=env.float("BROKER_RETENTION_HOURS", d.broker_retention_hours, validate=non_negative),
        listener_stall_seconds=env.float("LISTENER_STALL_SECONDS", d.listener_stall_seconds, validate=Range(min=1)),
        webhook_url=env.str("PUBLISH_WEBHOOK_URL", d.webhook_url),
        webhook_secret=env.str("PUBLISH_WEBHOOK_SECRET", d.webhook_secret),
        webhook_timeout=env.float("PUBLISH_WEBHOOK_TIMEOUT", d.webhook_timeout, validate=Range(min=0.1, max=300)),
        event_retention_days=env.float("EVENT_RETENTION_DAYS", d.event_retention_days, validate=non_negative),
        job_event_retention_days=env.float("JOB_EVENT_RETENTION_DAYS", d.job_event_retention_days,
                                           validate=non_negative),
        superseded_object_grace_days=env.float("SUPERSEDED_OBJECT_GRACE_DAYS", d.superseded_object_grace_days,
                                               validate=non_negative),
    )
    try:
        env.seal()
    except EnvValidationError as e:
        raise ConfigError(_describe(e.error_messages)) from None
    problems = {}
    if values["webhook_url"]:
        if not values["webhook_url"].startswith(("https://", "http://")):
            problems["PUBLISH_WEBHOOK_URL"] = ["an http:// or https:// URL"]
        if not values["webhook_secret"]:
            problems["PUBLISH_WEBHOOK_SECRET"] = ["required with PUBLISH_WEBHOOK_URL: receivers check the signature"]
    if problems:
        raise ConfigError(_describe(problems))
    return OpsSettings(**values)


def ops_settings_or_exit() -> OpsSettings:
    """The validated settings; on a bad environment, one clear message and exit status 2."""
    return or_exit(load_ops_settings)
