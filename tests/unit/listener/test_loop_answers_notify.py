"""The listener's loop answers a NOTIFY with a claim at once, whatever else is due: the services that
read at length (the gauges count every job by status; the re-announce reads the broker's queue) run off
the loop's thread, so a fresh lot's claim never waits for one of their rounds."""

import contextlib
import threading

import psycopg2
import pytest

from listener.gauges import Gauges
from listener.loop import Loop
from listener.reannounce import Reannounce, ReannounceConfig


class StalledDatabase:
    """A database whose transactions hang until released: a round that reads at length."""

    def __init__(self):
        self.entered, self.release = threading.Event(), threading.Event()

    @contextlib.contextmanager
    def transaction(self):
        self.entered.set()
        self.release.wait(30)
        raise RuntimeError("released")
        yield


class Claims:
    name = "claim"
    interval = 0  # runs on NOTIFY only

    def __init__(self):
        self.ran = threading.Event()

    def run_once(self):
        self.ran.set()


def gauges(db):
    return Gauges(db, metrics=None, interval=0.01, webhook=False)


def reannounce(db):
    return Reannounce(db, ReannounceConfig.from_constants())


@pytest.mark.parametrize("make_service", [gauges, reannounce], ids=["gauges", "reannounce"])
def test_a_notify_is_claimed_while_a_long_round_of_another_service_runs(schema_db, make_service):
    _, url = schema_db
    stalled, claims, stop = StalledDatabase(), Claims(), threading.Event()
    loop = Loop(url, services=[make_service(stalled)], on_connect=[], on_notify=claims, stop=stop)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        assert stalled.entered.wait(10), "the service's round never began"
        conn = psycopg2.connect(url)
        conn.autocommit = True
        try:
            conn.cursor().execute("NOTIFY publish_jobs")
        finally:
            conn.close()
        assert claims.ran.wait(10), "the NOTIFY waited for the other service's round"
    finally:
        stop.set()
        stalled.release.set()
        thread.join(10)
