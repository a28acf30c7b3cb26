"""Re-announce (PostgreSQL broker only; RabbitMQ redelivers by itself): broker
messages set back to 'queued' without a NOTIFY, or taken by a consumer that no
longer holds them, are announced again so that running workers see them
(publisher/jobs/pgbroker.py, "Late notifications" and orphans). Messages in the
queue of a host that is not alive are left alone: their jobs were handed out again."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import timedelta

from publisher.jobs import pgbroker
from publisher.jobs.locality import HOST_QUEUE_PREFIX, host_alive
from publisher.jobs.store import broker_queue

logger = logging.getLogger("publisher.listener")


@dataclasses.dataclass(frozen=True)
class ReannounceConfig:
    alive: timedelta
    interval: float = 2.0
    #: A message younger than this may still be on its way to a consumer.
    min_age: timedelta = timedelta(seconds=2)
    #: Each message is announced again at most once per this many seconds, so a long
    #: backlog is not re-announced in a storm.
    every: float = 10.0
    batch: int = 500

    @classmethod
    def from_constants(cls) -> ReannounceConfig:
        return cls(alive=host_alive())


class Reannounce:
    name = "reannounce"
    #: It reads the broker's queue, long while a backlog waits: off the loop's thread, so that a
    #: NOTIFY's claim never waits for it.
    in_background = True

    def __init__(self, db, config: ReannounceConfig):
        self.db, self.config = db, config
        self.interval = config.interval
        self._last: dict[str, float] = {}

    def run_once(self) -> int:
        with self.db.transaction() as cur:
            return self.announce(cur)

    def announce(self, cur) -> int:
        c = self.config
        candidates = broker_queue.orphan_candidates(cur, min_age=c.min_age, alive=c.alive,
                                                    host_queue_prefix=HOST_QUEUE_PREFIX, batch=c.batch)
        if not candidates:
            self._last.clear()
            return 0
        held = None
        now = time.monotonic()
        due = []
        for row in candidates:
            message_id, queue_name = row["message_id"], row["queue_name"]
            if now - self._last.get(message_id, -1e9) < c.every:
                continue
            if row["state"] == "consumed":
                held = pgbroker.held_message_locks(cur) if held is None else held
                if pgbroker.is_held(queue_name, message_id, held):
                    continue  # a live worker is on it
            due.append(message_id)
            self._last[message_id] = now
        if due:
            pgbroker.renotify(cur, due)
            logger.info("re-announced %d broker messages that workers had not picked up", len(due))
        if len(self._last) > 10 * c.batch:
            self._last = {k: v for k, v in self._last.items() if now - v < c.every}
        return len(due)
