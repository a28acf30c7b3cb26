"""The health and metrics servers take unauthenticated traffic: a flood of
probes costs one readiness check per interval, idle or slow clients are cut
off, and the server's threads are bounded."""

import json
import socket
import threading
import time
import urllib.request

from publisher.observability.health import HealthServer


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_flood_of_readiness_probes_runs_the_checks_once_per_interval():
    calls = []

    def database():
        calls.append(time.monotonic())
        time.sleep(0.05)  # a real check takes a round trip

    server = HealthServer("127.0.0.1", 0, ready={"database": database}, ready_cache_seconds=2).start()
    try:
        url = f"http://127.0.0.1:{server.port}/readyz"
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(get(url))) for _ in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == [(200, {"status": "ready", "checks": {"database": "ok"}})] * 30
        assert len(calls) == 1
    finally:
        server.stop()


def test_readiness_is_checked_again_once_the_cached_answer_is_old():
    state = {"up": True}
    calls = []

    def database():
        calls.append(1)
        if not state["up"]:
            raise ConnectionError("database gone")

    server = HealthServer("127.0.0.1", 0, ready={"database": database}, ready_cache_seconds=0.2).start()
    try:
        url = f"http://127.0.0.1:{server.port}/readyz"
        assert get(url)[0] == 200
        state["up"] = False
        deadline = time.monotonic() + 5
        while get(url)[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert get(url)[0] == 503
        assert len(calls) < 60  # not one per request
    finally:
        server.stop()


def test_an_idle_client_is_disconnected_after_the_socket_timeout():
    server = HealthServer("127.0.0.1", 0, alive=lambda: None, request_timeout=0.5).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as idle:
            idle.sendall(b"GET /healthz HTTP/1.1\r\n")  # and never the rest
            started = time.monotonic()
            assert idle.recv(1024) == b""  # closed by the server
            assert time.monotonic() - started < 3
    finally:
        server.stop()


def test_idle_connections_cannot_make_the_server_start_a_thread_each():
    server = HealthServer("127.0.0.1", 0, alive=lambda: None, request_timeout=1, max_threads=4).start()
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(40)]
    try:
        time.sleep(0.3)  # time for the server to have started a thread per connection, if it did
        assert threading.active_count() - before <= 4
        # Once the idle clients are cut off, probes are answered again.
        status, _ = get(f"http://127.0.0.1:{server.port}/healthz")
        assert status == 200
    finally:
        for s in idle:
            s.close()
        server.stop()
