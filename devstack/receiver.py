"""A webhook receiver that misbehaves on purpose, on a raw socket so that every
byte of its answer is under its control: it answers promptly, drips its status
line and headers, drips its body, or sends an endless body as fast as it can."""

from __future__ import annotations

import socket
import socketserver
import threading

#: What the receiver does after reading a request.
ANSWERS = ("ok", "drip_headers", "drip_body", "huge_body")


class Receiver:
    def __init__(self, answer: str = "ok", drip_interval: float = 0.1, drip_for: float = 60.0,
                 huge_bytes: int = 256 * 1024 * 1024):
        assert answer in ANSWERS, answer
        self.answer, self.drip_interval, self.huge_bytes = answer, drip_interval, huge_bytes
        #: A dripped answer is complete (a 2xx) after about this many seconds.
        self.drip_bytes = max(1, int(drip_for / drip_interval))
        #: Requests read so far (the raw request line and headers).
        self.requests: list[bytes] = []
        #: Bytes of answer body the socket took, per request (for huge_body: how much the client let through).
        self.body_bytes_sent: list[int] = []
        self._stopped = threading.Event()
        receiver = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                receiver._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/publish"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._stopped.set()
        self.server.shutdown()
        self.server.server_close()

    # -- one connection ------------------------------------------------------
    def _handle(self, sock: socket.socket) -> None:
        try:
            while not self._stopped.is_set():  # keep-alive: one request after another
                if not self._read_request(sock):
                    return
                getattr(self, "_" + self.answer)(sock)
        except OSError:  # the client hung up: what the tests want to see it do
            return

    def _read_request(self, sock: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            body += chunk
        self.requests.append(head + b"\r\n\r\n" + body)
        return True

    def _drip(self, sock: socket.socket, data: bytes) -> int:
        sent = 0
        for i in range(len(data)):
            if self._stopped.wait(self.drip_interval):
                break
            sock.sendall(data[i:i + 1])
            sent += 1
        return sent

    def _ok(self, sock):
        sock.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")

    def _drip_headers(self, sock):
        # Every byte comes well within any read timeout.
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Slow: ")
        self._drip(sock, b"z" * self.drip_bytes + b"\r\n\r\n")

    def _drip_body(self, sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % self.drip_bytes)
        self.body_bytes_sent.append(0)
        self.body_bytes_sent[-1] = self._drip(sock, b"." * self.drip_bytes)

    def _huge_body(self, sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\n\r\n" % self.huge_bytes)
        self.body_bytes_sent.append(0)
        chunk = b"x" * (1024 * 1024)
        sent = 0
        try:
            while sent < self.huge_bytes and not self._stopped.is_set():
                sock.sendall(chunk)
                sent += len(chunk)
                self.body_bytes_sent[-1] = sent
        finally:
            self.body_bytes_sent[-1] = sent
