"""Unit tests: how BROKER_URL and the worker host are read, host queues, and the RabbitMQ priorities."""

import dramatiq
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from publisher.jobs import rabbitbroker
from publisher.logs import Redactor
from publisher.settings.job import ConfigError, load_settings

REQUIRED = {
    "DATABASE_URL": "postgresql://publisher:pw@db.internal/auctions",
    "RAID_PUB_ENDPOINT": "https://raid.internal/pub",
    "RAID_PUBLISHER_SECRET": "raid-secret-value",
    "B2_KEY_ID": "key-id",
    "B2_APP_KEY": "app-key-value",
    "B2_BUCKET": "auction-media",
    "B2_ENDPOINT": "s3.us-west-004.backblazeb2.com",
    "B2_REGION": "us-west-004",
    "CDN_BASE_URL": "https://media.example.com",
}


def settings(**env):
    return load_settings({**REQUIRED, **env})


def test_without_broker_url_the_postgres_broker_is_used():
    s = settings()
    assert s.broker_url == ""


def test_an_amqp_url_selects_rabbitmq_and_its_password_is_never_logged():
    s = settings(BROKER_URL="amqps://publisher:rabbit-pass-42@mq.internal:5671/media")
    assert s.broker_url.startswith("amqps://")
    assert "rabbit-pass-42" in s.secrets
    assert rabbitbroker.describe(s.broker_url) == "amqps://mq.internal:5671, vhost 'media'"


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "postgresql://db/x", "amqp://", "mq.internal"])
def test_a_broker_url_that_is_not_amqp_is_refused_by_name(url):
    with pytest.raises(ConfigError, match="BROKER_URL: expected an amqp:// or amqps:// URL"):
        settings(BROKER_URL=url)


def test_the_worker_host_is_the_hostname_and_its_scratch_directory(tmp_path):
    import re
    import socket

    from publisher.jobs.host_identity import host_id

    hostname = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())
    assert re.fullmatch(rf"{re.escape(hostname)}-[0-9a-f]{{8}}", host_id(settings(SCRATCH_DIR=str(tmp_path))))


@pytest.mark.parametrize("host", ["w1", "ip-10-0-3-17.eu-west-1.compute.internal",
                                  "a-very-long-kubernetes-pod-name-7f9c8d6b5-x2k4q", "w" * 200])
def test_every_host_gets_a_queue_of_its_own_that_postgres_can_listen_on(host):
    from publisher.jobs.locality import host_queue, is_host_queue

    queue = host_queue(host)
    assert is_host_queue(queue) and not is_host_queue("publish")
    # dramatiq-pg LISTENs on this channel; PostgreSQL refuses names over 63 bytes.
    assert len(f"dramatiq.{queue}.DQ.enqueue") <= 63
    assert all(c.isalnum() or c in "-_" for c in queue)
    assert host_queue(host + "x") != queue


def test_on_rabbitmq_only_host_queues_expire():
    broker = rabbitbroker.make_broker("amqp://guest:guest@127.0.0.1:5672/", middleware=[],
                                      host_queue_expiry_ms=60_000)
    assert broker._build_queue_arguments("publish-host-w1")["x-expires"] == 60_000
    assert broker._build_queue_arguments("publish-host-w1.DQ")["x-expires"] == 60_000
    assert "x-expires" not in broker._build_queue_arguments("publish")


def test_on_rabbitmq_started_jobs_go_first_and_first_steps_by_lane():
    # RabbitMQ delivers a higher broker priority first.
    fresh, retry, backlog = (rabbitbroker.broker_priority("fetch", lane) for lane in (0, 1, 2))
    assert rabbitbroker.MAX_PRIORITY > fresh > retry > backlog >= 0
    for stage in ("variant", "upload"):
        assert rabbitbroker.broker_priority(stage, 2) == fresh  # a retry of a job begun, whatever its lane
    assert rabbitbroker.broker_priority("fetch", 7) == backlog and rabbitbroker.broker_priority("fetch", -1) == fresh


def test_each_message_is_published_with_its_actors_priority():
    broker = rabbitbroker.make_broker("amqp://guest:guest@127.0.0.1:5672/", middleware=[],
                                      host_queue_expiry_ms=60_000)
    assert isinstance(broker, RabbitmqBroker) and broker.max_priority == rabbitbroker.MAX_PRIORITY
    assert broker.confirm_delivery  # the listener commits a claim only once RabbitMQ has the message

    @dramatiq.actor(broker=broker, priority=10, queue_name="publish")
    def variant(job_id, token):
        pass

    message = variant.message(1, "token")
    broker.emit_before("enqueue", message, None)  # what RabbitmqBroker.enqueue does before publishing
    assert message.options["broker_priority"] == rabbitbroker.broker_priority("variant", 0)


def test_the_listener_sends_first_steps_with_their_broker_priority_without_declaring_the_actors(caplog):
    from publisher.jobs import rabbitbroker
    from publisher.jobs.dispatch import step_message

    broker = rabbitbroker.make_broker("amqp://guest:guest@127.0.0.1:5672/", middleware=[],
                                      host_queue_expiry_ms=60_000)
    for stage, lane in (("fetch", 2), ("fetch", 0), ("upload", None)):
        message = step_message(stage, 1, "token", "publish", lane)
        broker.emit_before("enqueue", message, None)
        assert message.options["broker_priority"] == rabbitbroker.broker_priority(stage, lane or 0)
    assert not [r for r in caplog.records if r.levelname == "CRITICAL"]


def test_only_the_postgres_broker_gets_the_listeners_re_announce_duty():
    import threading
    from types import SimpleNamespace

    from listener.__main__ import services
    from publisher.jobs import pgbroker
    from publisher.settings.ops import load_ops_settings

    rt = SimpleNamespace(settings=settings(), db=None, storage=None, redact=Redactor())
    rabbit = rabbitbroker.make_broker("amqp://guest:guest@127.0.0.1:5672/", middleware=[],
                                      host_queue_expiry_ms=60_000)
    postgres = pgbroker.make_broker("postgresql://postgres@127.0.0.1:1/none", queues=1, threads=1, middleware=[])

    def names(broker):
        return [s.name for s in services(rt, broker, load_ops_settings({}), None, threading.Event())[2]]

    assert "reannounce" not in names(rabbit)
    assert "reannounce" in names(postgres)


def test_a_worker_told_to_take_a_queue_no_step_uses_says_so(caplog):
    from types import SimpleNamespace

    from dramatiq.brokers.stub import StubBroker

    from publisher.app.broker import QueueCheck

    broker = StubBroker()
    broker.declare_queue("publish")
    broker.declare_queue("publish-host-w1")
    with caplog.at_level("ERROR"):
        QueueCheck().after_worker_boot(broker, SimpleNamespace(consumer_whitelist={"pubilsh"}))
        QueueCheck().after_worker_boot(broker, SimpleNamespace(consumer_whitelist={"publish"}))
        QueueCheck().after_worker_boot(broker, SimpleNamespace(consumer_whitelist=None))
    assert [r.getMessage() for r in caplog.records] == [
        "--queues names pubilsh, on which no step travels (steps use publish, publish-host-w1)"]


def test_a_worker_takes_its_hosts_queue_even_when_told_to_take_only_others(tmp_path):
    from types import SimpleNamespace

    from dramatiq.brokers.stub import StubBroker

    from publisher.jobs.host_identity import host_id
    from publisher.jobs.locality import HostQueue, host_queue

    broker = StubBroker()
    worker = SimpleNamespace(consumer_whitelist={"publish"})
    settings = SimpleNamespace(scratch_dir=str(tmp_path))
    HostQueue(settings).before_worker_boot(broker, worker)
    own = host_queue(host_id(settings))
    assert worker.consumer_whitelist == {"publish", own}
    assert own in broker.get_declared_queues()
