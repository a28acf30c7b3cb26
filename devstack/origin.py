"""A stand-in for RAID: serves files from a folder at GET /raid?key=NAME, only
with the right Bearer token. Tests can script faults per key.

The compose demo profile runs it on its own (the token from RAID_PUBLISHER_SECRET):
    python -m devstack.origin --root /samples --host 0.0.0.0 --port 8080
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .ports import free_port

#: Seconds a held answer waits at most for its test to let it go (a test that failed never does).
HOLD_LIMIT = 120.0


@dataclasses.dataclass
class Fault:
    """What the origin does instead of serving a key, `times` times (None: always)."""

    status: int | None = None  # answer with this status
    redirect_to: str | None = None  # answer 302 to this URL
    truncate_at: int | None = None  # send the full Content-Length, then only this many bytes
    delay: float = 0.0  # wait this long before answering
    body: bytes | None = None  # serve these bytes instead of the file
    unsized: bool = False  # send no Content-Length: the body ends when the connection closes
    gzip: bool = False  # gzip the body (Content-Encoding: gzip) whatever the client asked for
    content_encoding: str | None = None  # claim this Content-Encoding for the body as it is
    drip: float | None = None  # send the body one byte at a time, this many seconds apart
    drip_headers: float | None = None  # send the status line and headers so, then the body at once
    hold: threading.Event | None = None  # answer once this is set (at most HOLD_LIMIT s): a download in flight
    times: int | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up mid-answer (cut off past MAX_SOURCE_BYTES, timed
        # out) is part of the tests, not an error of this server.
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class Origin:
    def __init__(self, root: str | Path, token: str, host: str = "127.0.0.1", port: int | None = None):
        self.root = Path(root)
        self.token = token
        self.faults: dict[str, Fault] = {}
        self.requests: list[dict] = []
        #: Body bytes sent, by key.
        self.bytes_served: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        self.port = port or free_port()
        self._server = _Server((host, self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/raid"

    def start(self) -> Origin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _served(self, key: str, nbytes: int) -> None:
        with self._lock:
            self.bytes_served[key] += nbytes

    def _take_fault(self, key: str) -> Fault | None:
        with self._lock:
            fault = self.faults.get(key)
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[key]
            return fault

    def _handler(self):
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlsplit(self.path)
                key = (parse_qs(url.query).get("key") or [""])[0]
                auth = self.headers.get("Authorization", "")
                with origin._lock:
                    origin.requests.append({"path": url.path, "key": key, "authorization": auth,
                                            "accept_encoding": self.headers.get("Accept-Encoding")})
                if auth != f"Bearer {origin.token}":
                    return self._send(401, b"bad token")
                fault = origin._take_fault(key)
                if fault and fault.delay:
                    time.sleep(fault.delay)
                if fault and fault.hold is not None:
                    fault.hold.wait(HOLD_LIMIT)
                if fault and fault.status:
                    return self._send(fault.status, b"scripted failure")
                if fault and fault.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", fault.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault and fault.body is not None:
                    data = fault.body
                else:
                    path = (origin.root / key).resolve()
                    if not key or origin.root.resolve() not in path.parents or not path.is_file():
                        return self._send(404, b"no such key")
                    data = path.read_bytes()
                if fault and fault.gzip:
                    return self._send(200, gzip.compress(data), "image/jpeg", {"Content-Encoding": "gzip"}, key)
                if fault and fault.content_encoding:
                    return self._send(200, data, "image/jpeg", {"Content-Encoding": fault.content_encoding}, key)
                if fault and fault.drip is not None:
                    return self._drip(data, fault.drip, key)
                if fault and fault.drip_headers is not None:
                    return self._drip_headers(data, fault.drip_headers, key)
                if fault and fault.truncate_at is not None:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: fault.truncate_at])
                    origin._served(key, fault.truncate_at)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if fault and fault.unsized:
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.end_headers()
                    self.wfile.write(data)
                    origin._served(key, len(data))
                    self.close_connection = True
                    return
                self._send(200, data, "application/octet-stream", key=key)

            def _drip(self, data, interval, key):
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                for i in range(len(data)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    origin._served(key, 1)
                    time.sleep(interval)

            def _drip_headers(self, data, interval, key):
                head = (f"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nX-Padding: {'.' * 150}\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n").encode()
                for i in range(len(head)):
                    self.wfile.write(head[i : i + 1])
                    self.wfile.flush()
                    time.sleep(interval)
                self.wfile.write(data)
                origin._served(key, len(data))

            def _send(self, status, body, content_type="text/plain", headers=None, key=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if key is not None:
                    origin._served(key, len(body))

        return Handler


def main(argv=None) -> int:
    import argparse
    import os

    parser = argparse.ArgumentParser(description="A RAID stand-in (the token from RAID_PUBLISHER_SECRET)")
    parser.add_argument("--root", required=True, help="the folder whose files it serves")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    origin = Origin(args.root, os.environ["RAID_PUBLISHER_SECRET"], args.host, args.port)
    print(f"serving {args.root} at http://{args.host}:{origin.port}/raid?key=NAME", flush=True)
    origin._server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
