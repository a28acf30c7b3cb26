"""The listener's loop: LISTENs on the job table's channel, runs each service on
its interval, and runs the claim at once when a NOTIFY arrives. NOTIFY is not
durable, so every (re)connect runs the claim too. A service is any object with
a name, an interval in seconds and run_once(); one marked in_background runs in
a thread of its own, and a round still running is not doubled."""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from psycopg2.extensions import connection
from psycopg2.extras import RealDictCursor

from publisher.clients import db as dbmod
from publisher.jobs.store import intake
from publisher.logs import short_error

logger = logging.getLogger("publisher.listener")

#: Seconds between tries to reach the database while it is away.
RECONNECT_MAX_WAIT = 10.0


class Service(Protocol):
    name: str
    interval: float

    def run_once(self) -> object: ...


class Loop:
    def __init__(self, database_url: str, *, services: Sequence[Service], on_connect: Sequence[Service],
                 on_notify: Service, stop: threading.Event, redact=str):
        self.database_url, self.redact, self.stop = database_url, redact, stop
        self.services = [s for s in services if s.interval]
        self.on_connect, self.on_notify = list(on_connect), on_notify
        self._due = {id(s): 0.0 for s in self.services}
        self._threads: dict[int, threading.Thread] = {}
        self._conn: connection | None = None
        #: When the loop last turned (monotonic); /healthz reads it.
        self.last_turn = time.monotonic()

    def run(self) -> None:
        wait = 0.5
        while not self.stop.is_set():
            self.last_turn = time.monotonic()
            try:
                conn = self._listen()
                for service in self.on_connect:  # notifications may have been missed
                    self._run(service)
                wait = 0.5
                self._turn_until_stopped(conn)
            except dbmod.DISCONNECTS as e:
                logger.warning("database connection lost (%s); reconnecting in %.1fs", short_error(e, self.redact),
                               wait)
                self._close()
                self.stop.wait(wait)
                wait = min(wait * 2, RECONNECT_MAX_WAIT)
        self._close()
        logger.info("listener stopped")

    def _listen(self) -> connection:
        self._close()
        conn = self._conn = dbmod.connect(self.database_url, "media-publisher-listener")
        conn.autocommit = True
        with conn.cursor(cursor_factory=RealDictCursor) as cur:  # the store's cursor
            intake.listen(cur)
        logger.info("listening on channel %s", intake.CHANNEL)
        return conn

    def _turn_until_stopped(self, conn: connection) -> None:
        while not self.stop.is_set():
            now = self.last_turn = time.monotonic()
            for service in self.services:
                if now >= self._due[id(service)]:
                    self._run(service)
            next_due = min((self._due[id(s)] for s in self.services), default=now + 1.0)
            timeout = max(0.0, next_due - time.monotonic())
            ready, _, _ = select.select([conn], [], [], min(timeout, 1.0))
            if ready:
                conn.poll()
                if conn.notifies:
                    conn.notifies.clear()
                    self._run(self.on_notify)

    def _run(self, service: Service) -> None:
        if getattr(service, "in_background", False):
            self._schedule(service)
            self._start_in_background(service)
            return
        try:
            service.run_once()
        except dbmod.DISCONNECTS:
            raise
        except Exception as e:  # one failed round must not stop the listener
            logger.error("%s failed: %s", service.name, short_error(e, self.redact), exc_info=True)
        finally:
            self._schedule(service)  # after the round: a service may choose its next interval in it

    def _schedule(self, service: Service) -> None:
        if id(service) in self._due:
            self._due[id(service)] = time.monotonic() + service.interval

    def _start_in_background(self, service: Service) -> None:
        running = self._threads.get(id(service))
        if running is not None and running.is_alive():
            logger.debug("%s: the previous round is still running", service.name)
            return
        thread = threading.Thread(target=self._background_round, args=(service,), name=service.name, daemon=True)
        self._threads[id(service)] = thread
        thread.start()

    def _background_round(self, service: Service) -> None:
        try:
            service.run_once()
        except Exception as e:  # the next round tries again
            logger.error("%s failed: %s", service.name, short_error(e, self.redact))

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
