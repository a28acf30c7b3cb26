"""Everything specific to the Postgres broker (dramatiq-pg 0.12), in one place.

dramatiq-pg has defects that were reproduced on this machine (see
docs/reliability.md, "Known broker defects"). The fixes live here:

1. Late notifications: the consumer polled its LISTEN connection (taking
   pending notifications off the socket) and then blocked in select() anyway.
2. Prefetch backoff never reset: after one full prefetch the consumer slept
   up to 1 s per loop forever.
3. Rows set back to 'queued' without a NOTIFY (shutdown requeue, crash
   orphans) were not seen by running workers for minutes: `renotify`
   re-announces them; the listener's re-announce service (listener/reannounce.py)
   calls it on a schedule.
4. The pool size must cover 4 connections per queue plus one per thread.
5. Message locks were given back only when a consumer ran out of work: during
   a long burst each message taken kept a slot in the server's lock table until
   it filled ("out of shared memory"). They are now given back before the next
   message is taken.
6. Messages were consumed in the order announced, whatever their lane: a fresh lot's fetch
   waited behind the backlog fetches announced with it. The consumer now takes the messages it has
   heard of lane by lane, and the worker's queue orders them so (dispatch.OrderedStep).

And two additions, each a commit fewer per message: `enqueue_on` enqueues in the caller's
transaction (dramatiq-pg commits one of its own per message), so a step is sent in the same
transaction that records it (the listener's claim, a step's end), and exists only if that commits
(`enqueue_all_on`: a claim's messages in one statement); `done_on` marks the step's own message
done in the transaction that records the step's end, after which the consumer's ack only gives back
the message's lock.
"""

from __future__ import annotations

import json
import logging
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dramatiq_pg import PostgresBroker
from dramatiq_pg.broker import PostgresConsumer, message_lock
from dramatiq_pg.utils import tidy4json, wait_for_notifies
from psycopg2.extras import Json

from publisher.clients.db import KEEPALIVES, LivePool
from publisher.jobs.dispatch import OrderedStep, is_handed, lane_of
from publisher.settings.job import database_dsn

logger = logging.getLogger(__name__)

#: Connections each queue's consumers hold (queue and delay queue, two each).
CONNECTIONS_PER_QUEUE = 4
# dramatiq-pg's ack, without its copy of the message and its notification (which nothing listens to).
MARK_DONE = """
    UPDATE dramatiq.queue SET state = 'done' WHERE message_id = %s AND queue_name = %s AND state = 'consumed'
"""

# dramatiq-pg's enqueue (its QUERIES.ENQUEUE), for one message or many in one statement: each stored,
# and announced to its queue's consumers (the message itself, or its id when it is too long for a
# NOTIFY), when the transaction commits.
ENQUEUE_ALL = """
    WITH enqueued AS (
        INSERT INTO dramatiq.queue (queue_name, message_id, "state", message)
        SELECT m ->> 'queue_name', (m ->> 'message_id')::uuid, 'queued', m FROM jsonb_array_elements(%s) AS m
        ON CONFLICT (message_id) DO UPDATE
            SET "state" = 'queued', message = EXCLUDED.message, queue_name = EXCLUDED.queue_name
        RETURNING queue_name, message_id, message
    )
    SELECT pg_notify('dramatiq.' || queue_name || '.enqueue',
                     CASE WHEN octet_length(message::text) >= 8000
                          THEN jsonb_build_object('message_id', message_id)::text ELSE message::text END)
      FROM enqueued
"""


class DoneInStep:
    """The ids of the messages whose rows a step's committed transaction marked done (done_on), until
    the consumer's ack or nack; shared by a process's consumers and worker threads. Kept beside the
    message, not in it: a message's options are stored again whenever it is enqueued again."""

    def __init__(self):
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def add(self, message_id: str) -> None:
        with self._lock:
            self._ids.add(message_id)

    def take(self, message_id: str) -> bool:
        with self._lock:
            if message_id in self._ids:
                self._ids.remove(message_id)
                return True
            return False


def _lane_of_notify(notify) -> int:
    """The lane of an announced message, from the notification's copy of it (a message too long to
    be copied whole is announced by its id alone: fresh)."""
    try:
        message = json.loads(notify.payload)
    except ValueError:
        return 0
    return lane_of(message.get("options")) if isinstance(message, dict) else 0


class PublisherConsumer(PostgresConsumer):
    def __init__(self, *, done_in_step: DoneInStep, **kwargs):
        super().__init__(**kwargs)
        self.done_in_step = done_in_step

    def __next__(self):
        # The session-level advisory lock of each message acked or nacked since
        # the last call; dramatiq-pg itself releases them only when idle.
        if not self.unlock_q.empty():
            self.purge_locks()
        proxy = super().__next__()
        return None if proxy is None else OrderedStep(proxy._message)

    def poll_for_notify(self):
        conn = self.get_listen_conn()  # its health check may already have read notifies
        if conn.notifies:
            self.notifies += conn.notifies[:]
            conn.notifies[:] = []
        else:
            self.notifies += wait_for_notifies(conn, self.timeout)
        if len(self.notifies) > 1:  # one announced message needs no order, nor its payload parsed
            self.notifies.sort(key=_lane_of_notify)

    def fetch_pending_notifies(self):
        return sorted(super().fetch_pending_notifies(), key=_lane_of_notify)

    def ack(self, message):
        if is_handed(message):
            return  # never stored (publisher/jobs/local_steps.py)
        if self.done_in_step.take(message.message_id):
            self._release(message)
        else:
            super().ack(message)
        self.misses = 0

    def nack(self, message):
        if is_handed(message):
            return
        if self.done_in_step.take(message.message_id):
            self._release(message)  # the step was recorded: its row stays done
        else:
            super().nack(message)
        self.misses = 0

    def requeue(self, messages):
        # The steps handed over in this process go back to the host's queue by LocalSteps.hand_back.
        super().requeue(m for m in messages if not is_handed(m))

    def _release(self, message):
        """What is left of dramatiq-pg's ack for a message whose row is done already: giving back
        its lock and its place among the messages in processing."""
        self.unlock_q.put_nowait(message)
        self.in_processing.remove(message.message_id)


class PublisherBroker(PostgresBroker):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.done_in_step = DoneInStep()

    def consume(self, queue_name, prefetch=1, timeout=30000):
        return PublisherConsumer(pool=self.pool, queue_name=queue_name, prefetch=prefetch, timeout=timeout,
                                 done_in_step=self.done_in_step)

    def enqueue_on(self, cur, message):
        """dramatiq-pg's enqueue, on the caller's cursor: the message is stored, and its consumers
        notified, when the caller's transaction commits; not at all if it rolls back. No delay: the
        hooks of a delayed enqueue (JobLifecycle.after_enqueue) write to the job in a transaction of
        their own, which would wait for the caller's lock on that row."""
        self.enqueue_all_on(cur, [message])
        return message

    def enqueue_all_on(self, cur, messages) -> None:
        """enqueue_on for many messages in one statement (a claim's first steps)."""
        if not messages:
            return
        for message in messages:
            self.emit_before("enqueue", message, None)
        cur.execute(ENQUEUE_ALL, (Json([tidy4json(m) for m in messages]),))
        for message in messages:
            self.emit_after("enqueue", message, None)

    @staticmethod
    def done_on(cur, message) -> None:
        """Marks the message done in the caller's transaction; once that has committed, mark_acked
        tells the consumer's ack so."""
        cur.execute(MARK_DONE, (message.message_id, message.queue_name))

    def mark_acked(self, message) -> None:
        self.done_in_step.add(message.message_id)


def broker_url(database_url: str, queues: int, threads: int) -> str:
    """DATABASE_URL with a pool big enough for the consumers and worker threads."""
    parts = urlsplit(database_dsn(database_url))
    query = dict(parse_qsl(parts.query))
    query.setdefault("maxconn", str(CONNECTIONS_PER_QUEUE * queues + threads + 4))
    query.setdefault("application_name", "media-publisher-broker")
    return urlunsplit(parts._replace(query=urlencode(query)))


def make_pool(url: str) -> LivePool:
    """The broker's pool from a broker URL (dramatiq-pg's convention: connection
    options and maxconn in the query). A LivePool rather than dramatiq-pg's own:
    with minconn=0 every ack and enqueue opened a new connection, and with its
    default (keep them) a server restart left stale ones that its getconn
    retries one by one with growing waits (BENCHMARKS.md)."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    maxconn = int(options.pop("maxconn"))
    options.pop("minconn", None)
    return LivePool(maxconn, urlunsplit(parts._replace(query="")), **{**KEEPALIVES, **options})


def make_broker(database_url: str, *, queues: int, threads: int, middleware) -> PublisherBroker:
    return PublisherBroker(
        pool=make_pool(broker_url(database_url, queues, threads)), results=False, middleware=middleware
    )


# pg_locks shows a bigint advisory key as two 32-bit halves.
HELD_LOCKS = """
    SELECT ((classid::bigint << 32) | objid::bigint) AS key
      FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted
"""
RENOTIFY = """
    SELECT pg_notify('dramatiq.' || queue_name || '.enqueue',
                     CASE WHEN octet_length(message::text) >= 8000
                          THEN jsonb_build_object('message_id', message_id)::text
                          ELSE message::text END)
      FROM dramatiq.queue WHERE message_id = ANY(%s::uuid[]) AND state IN ('queued', 'consumed')
"""


def held_message_locks(cur) -> set[int]:
    """The advisory locks of the messages some consumer session holds now."""
    cur.execute(HELD_LOCKS)
    return {r["key"] for r in cur.fetchall()}


def is_held(queue_name: str, message_id: str, held: set[int]) -> bool:
    """Whether a live consumer holds this consumed message (dramatiq-pg's lock key)."""
    return message_lock(_Ref(queue_name, message_id)) in held


def renotify(cur, message_ids: list[str]) -> None:
    """Announces the messages again on their queues' channels, as an enqueue does."""
    cur.execute(RENOTIFY, (message_ids,))


class _Ref:
    """What message_lock reads of a message."""

    def __init__(self, queue_name, message_id):
        self.queue_name, self.message_id = queue_name, message_id
