"""An HTTP proxy between the workers and the S3 server that counts what crosses it
(requests by method, bytes sent and received) and can make the link a WAN:
a delay added to each request and a bandwidth limit.

Point B2_ENDPOINT at `proxy.endpoint`. The Host header is passed on unchanged,
so the S3 signature (made for the proxy's address) still verifies upstream.
"""

from __future__ import annotations

import collections
import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .ports import free_port

#: Headers that describe one hop, not the message.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class Traffic:
    """What crossed the proxy since it started (or since reset())."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: collections.Counter = collections.Counter()
            self.bytes_sent = 0  # request bodies: towards the bucket
            self.bytes_received = 0  # response bodies: from the bucket
            self.paths: list[tuple[str, str]] = []

    def record(self, method: str, path: str, sent: int, received: int) -> None:
        with self._lock:
            self.requests[method] += 1
            self.bytes_sent += sent
            self.bytes_received += received
            self.paths.append((method, path))

    def snapshot(self) -> dict:
        with self._lock:
            return {"requests": dict(self.requests), "bytes_sent": self.bytes_sent,
                    "bytes_received": self.bytes_received}


class S3Proxy:
    def __init__(self, upstream: tuple[str, int], *, delay: float = 0.0, bandwidth_bps: float | None = None):
        """delay: seconds added to each request; bandwidth_bps: bits per second each body may move at."""
        self.upstream, self.delay, self.bandwidth_bps = upstream, delay, bandwidth_bps
        self.traffic = Traffic()
        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Proxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _wire_time(self, nbytes: int) -> float:
        return nbytes * 8 / self.bandwidth_bps if self.bandwidth_bps else 0.0

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                        if size == 0:
                            return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self):
                body = self._body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                if body or "Content-Length" in self.headers:
                    headers["Content-Length"] = str(len(body))
                time.sleep(proxy.delay + proxy._wire_time(len(body)))
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    reply_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_HEADERS]
                    status, reason = response.status, response.reason
                finally:
                    upstream.close()
                time.sleep(proxy._wire_time(len(data)))
                proxy.traffic.record(self.command, self.path, len(body), len(data))
                self.send_response(status, reason)
                for k, v in reply_headers:
                    if k.lower() != "content-length" or self.command == "HEAD":
                        self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        return Handler
