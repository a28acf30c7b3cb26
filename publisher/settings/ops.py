"""Settings for operating the service: where the metrics and health endpoints listen,
and where completion events go. Kept apart from a job's settings (publisher/settings/job.py)
because no step of a job needs them. A port of 0 turns that endpoint off.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping

from publisher.logs import url_secrets
from publisher.settings.loader import load, or_exit
from publisher.settings.schema import field

#: The workers' metrics folder, in the process's temporary directory (systemd's PrivateTmp
#: under the units), never on the scratch disk: prometheus_client writes its samples through
#: mmap, and a write into a file on a full disk kills the process (SIGBUS), where a full
#: scratch disk must only delay jobs.
METRICS_FOLDER = "media-publisher-metrics"


@dataclasses.dataclass(frozen=True)
class OpsSettings:
    #: Address the metrics and health endpoints bind to. Loopback by default:
    #: in a container set 0.0.0.0 so the platform can reach them.
    http_host: str = field("OPS_HTTP_HOST")
    #: The listener's /metrics, /healthz and /readyz.
    listener_port: int = field("LISTENER_HTTP_PORT")
    #: The workers' /metrics (all processes together); worker process i serves /healthz and
    #: /readyz on the next ports (worker_health_port + i).
    worker_metrics_port: int = field("WORKER_METRICS_PORT")
    #: Where the listener POSTs completion events (empty: no webhook, no outbox rows).
    webhook_url: str = field("PUBLISH_WEBHOOK_URL")
    #: The HMAC-SHA256 key of the webhook's signature header.
    webhook_secret: str = field("PUBLISH_WEBHOOK_SECRET", secret=True)

    @staticmethod
    def problems(values: dict) -> dict[str, list[str]]:
        problems = {}
        if values["webhook_url"]:
            if not values["webhook_url"].startswith(("https://", "http://")):
                problems["PUBLISH_WEBHOOK_URL"] = ["an http:// or https:// URL"]
            if not values["webhook_secret"]:
                problems["PUBLISH_WEBHOOK_SECRET"] = [
                    "required with PUBLISH_WEBHOOK_URL: receivers check the signature"]
        return problems

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be logged: the webhook's secret and what its URL may carry."""
        return tuple(s for s in (self.webhook_secret, *url_secrets(self.webhook_url, path=True)) if s)

    @property
    def worker_health_port(self) -> int:
        """Worker process i serves /healthz and /readyz on this port + i (0: off, with the metrics)."""
        return self.worker_metrics_port + 1 if self.worker_metrics_port else 0

    @property
    def worker_metrics_dir(self) -> str:
        """Where the workers' prometheus_client multiprocess files live (a folder per run)."""
        return os.path.join(tempfile.gettempdir(), METRICS_FOLDER)


def load_ops_settings(environ: Mapping[str, str] | None = None) -> OpsSettings:
    """Reads and validates the operations settings; raises ConfigError naming every problem."""
    return load(OpsSettings, environ)


def ops_settings_or_exit() -> OpsSettings:
    """The validated settings; on a bad environment, one clear message and exit status 2."""
    return or_exit(load_ops_settings)
