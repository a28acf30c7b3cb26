"""One deadline over a whole HTTP exchange made with requests: resolving the
name, connecting, sending, the status line and headers, redirects and the body.

requests' timeouts bound each connect and each socket read, not their sum: a
peer that sends one byte just within the read timeout keeps an exchange going
as long as it likes. Here a timer shuts the socket of every connection used
under the deadline down when it passes, which ends a read blocked on it at
once. Before there is a socket to shut, the name is looked up in a thread of
its own (a bounded number at once), waited for no longer than the time left,
and each address the name has is given only the time then left to connect:
none once it has passed.

    session = deadline.session()
    with deadline.within(5.0) as limit:
        ...  # any number of session.send/post calls and reads of their bodies
    limit.expired  # True when the timer cut the exchange short
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
import threading
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

_current = threading.local()
#: Name lookups under way at once, each in a thread of its own: lookups a deadline
#: left behind (a name server that does not answer) hold at most this many threads.
_lookups = threading.BoundedSemaphore(16)


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self._at = time.monotonic() + seconds
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()
        self.expired = False

    def remaining(self) -> float:
        return max(0.0, self._at - time.monotonic())

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.append(connection)
            expired = self.expired
        if expired:
            _shut(connection)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            _shut(connection)


def _shut(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    try:
        # socket's own shutdown, also for TLS: SSLSocket.shutdown would unwrap
        # the TLS layer under the feet of the thread reading from it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


@contextlib.contextmanager
def within(seconds: float):
    """Runs the block's HTTP exchanges (on a session() of this thread) under one deadline."""
    limit = Deadline(seconds)
    timer = threading.Timer(seconds, limit.expire)
    timer.daemon = True
    previous, _current.deadline = getattr(_current, "deadline", None), limit
    timer.start()
    try:
        yield limit
    finally:
        timer.cancel()
        _current.deadline = previous


def _active() -> Deadline | None:
    return getattr(_current, "deadline", None)


def _resolve(host: str, port: int, limit: Deadline) -> list[tuple]:
    """getaddrinfo, as urllib3 calls it, waited for no longer than the time left."""
    args = (host, port, allowed_gai_family(), socket.SOCK_STREAM)
    try:
        ipaddress.ip_address(host.partition("%")[0])
        return socket.getaddrinfo(*args)  # an address: nothing to look up, nothing to wait for
    except ValueError:
        pass
    if not _lookups.acquire(timeout=limit.remaining()):
        limit.expire()
        raise TimeoutError(f"resolving {host}: no lookup could start before the deadline")
    answer: dict = {}
    done = threading.Event()

    def look_up() -> None:
        try:
            answer["addresses"] = socket.getaddrinfo(*args)
        except OSError as e:
            answer["error"] = e
        finally:
            _lookups.release()
            done.set()

    # A daemon thread: one the deadline left behind ends with the resolver's own
    # timeout, and never holds up the process's exit.
    threading.Thread(target=look_up, name="resolve", daemon=True).start()
    if not done.wait(limit.remaining()):
        limit.expire()
        raise TimeoutError(f"resolving {host} took past the deadline")
    if "error" in answer:
        raise answer["error"]
    return answer["addresses"]


def _connect(address: tuple[str, int], timeout, limit: Deadline, source_address, socket_options) -> socket.socket:
    """urllib3's create_connection, with the resolution and each address's connect
    given only what is left of the deadline, and no address tried once it has passed."""
    host, port = address
    host = host.strip("[]")
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in _resolve(host, port, limit):
        left = limit.remaining()
        if left <= 0:
            break
        sock = socket.socket(family, kind, proto)
        try:
            for level, option, value in socket_options or ():
                sock.setsockopt(level, option, value)
            sock.settimeout(min(timeout, left) if isinstance(timeout, (int, float)) else left)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as e:
            error = e
            sock.close()
    if limit.remaining() <= 0:
        limit.expire()
        raise TimeoutError(f"no connection to {host} within the deadline")
    raise error if error is not None else OSError(f"{host} resolved to no address")


class _Watched(HTTPConnection):
    """A urllib3 connection that puts itself under the deadline of the thread using it.
    Mixed in before HTTPConnection or HTTPSConnection, so super() is the one it is mixed into."""

    def _new_conn(self) -> socket.socket:
        limit = _active()
        if limit is None:
            return super()._new_conn()
        # As urllib3's own _new_conn, which has no way to bound the lookup or the sum of the connects.
        try:
            sock = _connect((self._dns_host, self.port), self.timeout, limit, self.source_address,
                            self.socket_options)
        except socket.gaierror as e:
            raise NameResolutionError(self.host, self, e) from e
        except TimeoutError as e:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out: {e}") from e
        except OSError as e:
            raise NewConnectionError(self, f"Failed to establish a new connection: {e}") from e
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock

    def connect(self) -> None:
        limit = _active()
        if limit is not None:
            limit.watch(self)
            if isinstance(self.timeout, (int, float)):
                self.timeout = min(self.timeout, max(limit.remaining(), 0.001))
        super().connect()
        if limit is not None and limit.expired:  # the timer fired while connecting
            _shut(self)

    def request(self, *args, **kwargs) -> None:
        limit = _active()
        if limit is not None:  # a kept-alive connection is not connected again
            limit.watch(self)
        return super().request(*args, **kwargs)


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


class _Session(requests.Session):
    def resolve_redirects(self, *args, **kwargs):
        # Never followed here: a caller that follows a redirect checks its target
        # first. (requests parses the Location even with allow_redirects=False, to
        # offer it as response.next, and raises on one it cannot parse.)
        return iter(())


def session() -> requests.Session:
    """A session whose exchanges within() bounds, and that follows no redirect.
    Proxies, .netrc and CA bundles named by the environment are ignored: where a
    request goes and what it carries is decided by the caller's settings alone."""
    s = _Session()
    s.trust_env = False
    adapter = _Adapter()
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s
