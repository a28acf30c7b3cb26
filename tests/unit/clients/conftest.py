"""Name resolution and peers that never answer, for the clients' deadline tests.

A test's host name is resolved by a stand-in for socket.getaddrinfo: it either
stalls until the test is over, or names several addresses on loopback that
never answer a connect (a listening socket whose accept queue is full drops
every further SYN, so a connect to it hangs until its timeout)."""

import socket
import threading

import pytest

#: The host name the stand-in resolver answers for; any other name resolves as usual.
NAME = "receiver.deadline.test"


@pytest.fixture
def stalled_resolver(monkeypatch):
    """Resolving NAME blocks until the test is over (then it fails)."""
    released = threading.Event()
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == NAME:
            released.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "the test's resolver was never meant to answer")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield NAME
    released.set()


def _blackhole() -> tuple[socket.socket, list[socket.socket]]:
    """A listener on loopback whose accept queue is full: connects to it hang."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    while True:  # queue connections until one is no longer taken: the queue is then full
        filler = socket.socket()
        filler.settimeout(0.5)
        try:
            filler.connect(listener.getsockname())
        except TimeoutError:
            filler.close()
            return listener, fillers
        fillers.append(filler)


@pytest.fixture
def blackholed_name(monkeypatch):
    """NAME resolves to several addresses on loopback, none of which answers a connect."""
    holes = [_blackhole() for _ in range(6)]
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == NAME:
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", listener.getsockname())
                    for listener, _ in holes]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield NAME
    for listener, fillers in holes:
        for s in (listener, *fillers):
            s.close()
