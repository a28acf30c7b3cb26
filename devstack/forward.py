"""A TCP forwarder: lets processes in a network namespace reach a service that
listens on this machine's loopback only (PostgreSQL, RabbitMQ, SeaweedFS, the
RAID stand-in), through an address of the namespace's veth pair.

Each accepted connection gets one upstream connection and two pump threads.
When one side closes, the other is closed too, so a killed client frees its
server session at once (PostgreSQL advisory locks, RabbitMQ deliveries), as
it would without the forwarder.
"""

from __future__ import annotations

import socket
import threading

#: Bytes read per recv().
CHUNK = 64 * 1024


class Forwarder:
    def __init__(self, listen: tuple[str, int], target: tuple[str, int]):
        self.listen, self.target = listen, target
        self._server = socket.create_server(listen, reuse_port=False)
        self._server.settimeout(0.5)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name=f"forward-{listen[0]}:{listen[1]}", daemon=True)

    def start(self) -> Forwarder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for s in sockets:
            _close(s)

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket):
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        # One side is gone: end both, so the server sees its client leave.
        for s in (src, dst):
            _close(s)
        with self._lock:
            self._sockets.discard(src)
            self._sockets.discard(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
