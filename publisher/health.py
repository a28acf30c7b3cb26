"""A tiny threaded HTTP server for /healthz, /readyz and /metrics.

/healthz  200 while the process is alive and its loop or threads turn; 503 otherwise,
          so a platform restarts it.
/readyz   200 when PostgreSQL and the bucket answer; 503 with the failing check
          named, so a platform stops routing work to it (no secrets in the answer).
/metrics  Prometheus text, where the process has metrics.

Answers are JSON except /metrics. A check that raises counts as failed.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import psycopg2

from .config import database_dsn

logger = logging.getLogger("publisher.health")

#: Seconds a readiness check may take before it counts as failed.
CHECK_TIMEOUT = 3

Check = Callable[[], None]  # raises when the dependency is not usable


class HealthServer:
    """Serves the endpoints given; an endpoint left out answers 404."""

    def __init__(self, host: str, port: int, *, alive: Callable[[], str | None] | None = None,
                 ready: dict[str, Check] | None = None, metrics: Callable[[], tuple[bytes, str]] | None = None,
                 redact: Callable[[str], str] = lambda s: s):
        self.alive, self.ready, self.metrics, self.redact = alive, ready, metrics, redact
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> "HealthServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- answers ------------------------------------------------------------
    def healthz(self) -> tuple[int, dict]:
        problem = self.alive() if self.alive else None
        return (503, {"status": "unhealthy", "reason": problem}) if problem else (200, {"status": "ok"})

    def readyz(self) -> tuple[int, dict]:
        checks = {}
        for name, check in (self.ready or {}).items():
            try:
                check()
                checks[name] = "ok"
            except Exception as e:
                checks[name] = self.redact(f"{type(e).__name__}: {e}".strip())[:300]
        ok = all(v == "ok" for v in checks.values())
        return (200 if ok else 503), {"status": "ready" if ok else "not ready", "checks": checks}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass  # probes every few seconds would drown the job lines

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                try:
                    if path == "/healthz":
                        return self._json(*server.healthz())
                    if path == "/readyz" and server.ready is not None:
                        return self._json(*server.readyz())
                    if path == "/metrics" and server.metrics is not None:
                        body, content_type = server.metrics()
                        return self._send(200, body, content_type)
                    return self._json(404, {"error": f"no such endpoint: {path}"})
                except Exception as e:  # an endpoint must never take the process down
                    logger.warning("%s failed: %s", path, server.redact(str(e)))
                    return self._json(500, {"error": type(e).__name__})

            def _json(self, status, payload):
                self._send(status, (json.dumps(payload) + "\n").encode(), "application/json")

            def _send(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def readiness_checks(settings) -> dict[str, Check]:
    """Is PostgreSQL reachable and is the bucket there? Each on a connection of its own,
    with short timeouts and no retries, so a probe answers within seconds."""
    bucket_client = _quick_s3_client(settings)

    def database():
        conn = psycopg2.connect(database_dsn(settings.database_url), connect_timeout=CHECK_TIMEOUT,
                                application_name="media-publisher-readyz")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        finally:
            conn.close()

    def s3():
        if not bucket_client.bucket_exists(settings.b2_bucket):
            raise RuntimeError(f"bucket {settings.b2_bucket!r} does not exist")

    return {"database": database, "s3": s3}


def _quick_s3_client(settings):
    import certifi
    import urllib3
    from minio import Minio

    from .storage import endpoint_parts

    host, secure = endpoint_parts(settings.b2_endpoint)
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=CHECK_TIMEOUT, read=CHECK_TIMEOUT), retries=False,
                               cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(), maxsize=2)
    return Minio(host, access_key=settings.b2_key_id, secret_key=settings.b2_app_key, secure=secure,
                 region=settings.b2_region, http_client=http)
