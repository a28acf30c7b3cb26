"""A tiny threaded HTTP server for /healthz, /readyz and /metrics.

/healthz  200 while the process is alive and its loop or threads turn; 503 otherwise,
          so a platform restarts it.
/readyz   200 when PostgreSQL and the bucket answer; 503 with the failing check
          named, so a platform stops routing work to it (no secrets in the answer).
/metrics  Prometheus text, where the process has metrics.

Answers are JSON except /metrics. A check that raises counts as failed.

Anyone who reaches the port can call these: the readiness answer is reused for
a moment (a flood of probes costs one database connection and one S3 call per
interval), a client gets a few seconds to send its request, and at most a few
connections are served at once (others wait in the listen backlog).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

from publisher.settings.job import database_dsn

logger = logging.getLogger("publisher.health")

#: Seconds a readiness check may take before it counts as failed.
CHECK_TIMEOUT = 3
#: Seconds a readiness answer is reused: probes come every few seconds, floods faster.
READY_CACHE_SECONDS = 1.5
#: Seconds a client may take to send its request, or to read the answer.
REQUEST_TIMEOUT = 5
#: Connections served at once.
MAX_THREADS = 8

Check = Callable[[], None]  # raises when the dependency is not usable


class _BoundedThreadingServer(ThreadingHTTPServer):
    """One thread per connection, but no more than max_threads at once: the accept
    loop waits for a free slot, so idle connections cannot pile up threads."""

    daemon_threads = True

    def __init__(self, address, handler, max_threads: int):
        self._slots = threading.BoundedSemaphore(max_threads)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class HealthServer:
    """Serves the endpoints given; an endpoint left out answers 404."""

    def __init__(self, host: str, port: int, *, alive: Callable[[], str | None] | None = None,
                 ready: dict[str, Check] | None = None, metrics: Callable[[], tuple[bytes, str]] | None = None,
                 redact: Callable[[str], str] = lambda s: s, ready_cache_seconds: float = READY_CACHE_SECONDS,
                 request_timeout: float = REQUEST_TIMEOUT, max_threads: int = MAX_THREADS):
        self.alive, self.ready, self.metrics, self.redact = alive, ready, metrics, redact
        self.ready_cache_seconds, self.request_timeout = ready_cache_seconds, request_timeout
        self._ready_lock = threading.Lock()
        self._ready_answer: tuple[float, tuple[int, dict]] | None = None
        self._server = _BoundedThreadingServer((host, port), self._handler(), max_threads)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> HealthServer:
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
        """The checks' answer, reused for ready_cache_seconds; concurrent probes wait for one run."""
        with self._ready_lock:
            if self._ready_answer is None or time.monotonic() - self._ready_answer[0] >= self.ready_cache_seconds:
                self._ready_answer = (time.monotonic(), self._check_readiness())
            return self._ready_answer[1]

    def _check_readiness(self) -> tuple[int, dict]:
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
            timeout = server.request_timeout  # on the socket: a silent client is dropped

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
    from publisher.clients.storage import make_client

    return make_client(settings, connect_timeout=CHECK_TIMEOUT, read_timeout=CHECK_TIMEOUT, retries=False, maxsize=2)
