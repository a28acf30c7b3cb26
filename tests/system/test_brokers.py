"""The same system on either broker: what differs is only where messages travel."""

import subprocess

import pytest

from devstack.origin import Fault
from tests.support.stack import BROKERS


def rabbitmqctl(*args) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
def test_with_broker_url_the_steps_travel_on_rabbitmq_priority_queues(stack):
    job = stack.wait_for(stack.publish("exif-orientation-1.jpg"))
    assert job["status"] == "completed", job["last_error"]
    # nothing went through the Postgres broker's table
    assert stack.sql("SELECT count(*) AS n FROM dramatiq.queue")[0]["n"] == 0
    queues = rabbitmqctl("list_queues", "-p", stack.vhost.name, "--no-table-headers", "name", "arguments")
    declared = {line.split("\t")[0]: line for line in queues.splitlines()}
    assert {"publish", "publish.DQ", "publish.XQ"} <= set(declared)
    assert "x-max-priority" in declared["publish"]
    assert f"steps travel on RabbitMQ at amqp://127.0.0.1:5672, vhost '{stack.vhost.name}'" in stack.listener.log()


@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
def test_connections_dropped_by_rabbitmq_are_opened_again(stack):
    assert stack.wait_for(stack.publish("exif-orientation-1.jpg"))["status"] == "completed"
    # as when RabbitMQ restarts or a load balancer drops idle connections
    rabbitmqctl("close_all_connections", "-p", stack.vhost.name, "test: connections dropped")
    job = stack.wait_for(stack.publish("exif-orientation-1.jpg"))
    assert job["status"] == "completed", job["last_error"]
    assert stack.listener.running() and stack.workers.running()


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_a_transient_origin_failure_is_retried_on_either_broker(stack, origin, origin_root):
    key = f"flaky-{stack.vhost.name if stack.vhost else stack.db_url.rsplit('/', 1)[1]}.jpg"
    (origin_root / key).write_bytes((origin_root / "exif-orientation-1.jpg").read_bytes())
    origin.faults[key] = Fault(status=503, times=1)
    job = stack.wait_for(stack.publish(key))
    assert job["status"] == "completed", job["last_error"]
    assert job["retry_count"] == 1  # the 503 cost one retry, decided by the job, carried by Dramatiq
    assert len(job["variants"]) == 2


def advisory_locks(conn) -> int:
    with conn.cursor() as cur:
        # pg_locks is the whole server's: count only this test's database.
        cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid() "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
        return cur.fetchone()[0]


@pytest.fixture
def pg_broker(schema_db):
    import dramatiq

    from publisher.jobs.pgbroker import make_broker

    conn, url = schema_db
    broker = make_broker(url, queues=1, threads=1, middleware=[])
    dramatiq.actor(lambda: None, actor_name="step", queue_name="work", broker=broker)
    yield broker, conn
    broker.close()


def test_a_consumer_that_never_runs_dry_releases_each_message_lock(pg_broker):
    # A PostgreSQL lock slot per message taken and never given back filled the
    # server's lock table during a long burst ("out of shared memory").
    import dramatiq

    broker, conn = pg_broker
    for _ in range(40):
        broker.enqueue(dramatiq.Message(queue_name="work", actor_name="step", args=(), kwargs={}, options={}))
    consumer = broker.consume("work", prefetch=1, timeout=100)
    taken = 0
    while taken < 40:
        message = next(consumer)
        if message is not None:
            taken += 1
            consumer.ack(message)
            assert advisory_locks(conn) <= 1, f"after {taken} messages"
    consumer.close()



def test_a_step_sent_in_a_transaction_exists_and_is_heard_only_if_that_transaction_commits(pg_broker):
    # The listener's claim and a step's end send the next step in their own transaction: a claim
    # or an end that rolls back leaves no message behind, and none is consumed before the commit.
    import psycopg2

    from publisher.jobs.dispatch import send_step, sends_in_transaction

    broker, conn = pg_broker
    assert sends_in_transaction(broker)
    consumer = broker.consume("work", prefetch=1, timeout=100)
    sender = psycopg2.connect(conn.dsn)
    try:
        with sender, sender.cursor() as cur:
            send_step(broker, "step", 1, "token-1", queue_name="work", cur=cur)
            sender.rollback()
        with sender, sender.cursor() as cur:
            send_step(broker, "step", 2, "token-2", queue_name="work", cur=cur)
            assert next(consumer) is None  # not committed yet: nothing to consume
        message = None
        while message is None:  # the commit's notification wakes the consumer
            message = next(consumer)
        assert list(message.args) == [2, "token-2"]
        consumer.ack(message)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM dramatiq.queue")
            assert cur.fetchone()[0] == 1
    finally:
        sender.close()
        consumer.close()


def test_a_message_marked_done_in_its_steps_transaction_is_done_once_that_commits(pg_broker):
    # A step's end marks its own message done in the transaction that records it: the consumer's ack
    # then only gives back the message's lock. Rolled back, the message is acked as dramatiq-pg does.
    import dramatiq
    import psycopg2

    broker, conn = pg_broker
    for n in range(2):
        broker.enqueue(dramatiq.Message(queue_name="work", actor_name="step", args=(n,), kwargs={}, options={}))
    consumer = broker.consume("work", prefetch=1, timeout=100)
    step = psycopg2.connect(conn.dsn)

    def taken():
        message = None
        while message is None:
            message = next(consumer)
        return message

    def state(message):
        with conn.cursor() as cur:
            cur.execute("SELECT state::text FROM dramatiq.queue WHERE message_id = %s", (message.message_id,))
            return cur.fetchone()[0]

    try:
        committed = taken()
        with step, step.cursor() as cur:
            broker.done_on(cur, committed)
        broker.mark_acked(committed)
        assert state(committed) == "done"
        consumer.ack(committed)
        assert consumer.in_processing == set()  # room for the next message (prefetch 1)

        rolled_back = taken()  # taking the next one gives back the first one's lock
        assert advisory_locks(conn) == 1
        with step.cursor() as cur:
            broker.done_on(cur, rolled_back)
        step.rollback()
        assert state(rolled_back) == "consumed"
        consumer.ack(rolled_back)
        assert state(rolled_back) == "done"
    finally:
        step.close()
        consumer.close()


def test_a_fresh_lots_first_step_is_taken_before_the_backlogs_announced_before_it(pg_broker):
    # A worker whose prefetch is full reads the announcements that came meanwhile all at once: it
    # takes them lane by lane, and its work queue runs them so.
    import queue

    from publisher.jobs.dispatch import send_step

    broker, conn = pg_broker

    def send(job_id, lane):
        send_step(broker, "step", job_id, f"token-{job_id}", queue_name="work", lane=lane)

    def taken():
        message = None
        while message is None:
            message = next(consumer)
        return message

    consumer = broker.consume("work", prefetch=1, timeout=100)
    try:
        send(1, 2)
        held = taken()  # the prefetch is full while the rest is announced
        for job_id, lane in ((2, 2), (3, 1), (4, 2), (5, 0), (6, 2)):
            send(job_id, lane)
        order = []
        consumer.ack(held)
        for _ in range(5):
            message = taken()
            order.append(message.args[0])
            consumer.ack(message)
        assert order == [5, 3, 2, 4, 6]
    finally:
        consumer.close()

    # Before the first notification (a worker that starts with messages waiting), the same order.
    for job_id, lane in ((7, 2), (8, 0), (9, 1)):
        send(job_id, lane)
    consumer = broker.consume("work", prefetch=10, timeout=100)
    try:
        work = queue.PriorityQueue()
        for _ in range(3):
            work.put((20, taken()))  # as Dramatiq's worker queues them, by actor priority first
        assert [work.get()[1].args[0] for _ in range(3)] == [8, 9, 7]
    finally:
        consumer.close()
