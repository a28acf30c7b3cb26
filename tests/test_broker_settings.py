"""Unit tests: how BROKER_URL and STAGE_QUEUES are read, and the RabbitMQ priorities."""

import dramatiq
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from publisher import rabbitbroker
from publisher.config import ConfigError, load_settings

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
    assert s.broker_url == "" and s.stage_queues == ()


def test_an_amqp_url_selects_rabbitmq_and_its_password_is_never_logged():
    s = settings(BROKER_URL="amqps://publisher:rabbit-pass-42@mq.internal:5671/media")
    assert s.broker_url.startswith("amqps://")
    assert "rabbit-pass-42" in s.secrets
    assert rabbitbroker.describe(s.broker_url) == "amqps://mq.internal:5671, vhost 'media'"


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "postgresql://db/x", "amqp://", "mq.internal"])
def test_a_broker_url_that_is_not_amqp_is_refused_by_name(url):
    with pytest.raises(ConfigError, match="BROKER_URL: expected an amqp:// or amqps:// URL"):
        settings(BROKER_URL=url)


def test_stage_queues_route_named_steps():
    s = settings(STAGE_QUEUES="variant:publish-cpu, upload:publish_net")
    assert s.stage_queues == (("variant", "publish-cpu"), ("upload", "publish_net"))


@pytest.mark.parametrize("raw", ["resize:publish-cpu", "variant:", "variant:has space", "variant:q.DQ"])
def test_bad_stage_queues_are_refused_by_name(raw):
    with pytest.raises(ConfigError, match="STAGE_QUEUES: expected stage:queue"):
        settings(STAGE_QUEUES=raw)


def test_started_jobs_go_first_on_rabbitmq():
    # Dramatiq: a lower actor priority runs first; RabbitMQ: a higher broker priority is delivered first.
    upload, variant, fetch = (rabbitbroker.broker_priority(p) for p in (0, 10, 20))
    assert upload > variant > fetch >= 0
    assert upload < rabbitbroker.MAX_PRIORITY


def test_each_message_is_published_with_its_actors_priority():
    broker = rabbitbroker.make_broker("amqp://guest:guest@127.0.0.1:5672/", middleware=[])
    assert isinstance(broker, RabbitmqBroker) and broker.max_priority == rabbitbroker.MAX_PRIORITY
    assert broker.confirm_delivery  # the listener commits a claim only once RabbitMQ has the message

    @dramatiq.actor(broker=broker, priority=10, queue_name="publish")
    def variant(job_id, token):
        pass

    message = variant.message(1, "token")
    broker.emit_before("enqueue", message, None)  # what RabbitmqBroker.enqueue does before publishing
    assert message.options["broker_priority"] == rabbitbroker.broker_priority(10)


def test_only_the_postgres_broker_gets_the_listeners_re_announce_duty():
    from types import SimpleNamespace

    from listener.service import Listener
    from publisher import pgbroker

    rt = SimpleNamespace(settings=settings(), db=None, storage=None, redact=str)
    rabbit = rabbitbroker.make_broker("amqp://guest:guest@127.0.0.1:5672/", middleware=[])
    postgres = pgbroker.make_broker("postgresql://postgres@127.0.0.1:1/none", queues=1, threads=1, middleware=[])
    assert "renotify" not in [d.name for d in Listener(rt, rabbit).duties]
    assert "renotify" in [d.name for d in Listener(rt, postgres).duties]


def test_a_worker_told_to_take_a_queue_no_step_uses_says_so(caplog):
    from types import SimpleNamespace

    from dramatiq.brokers.stub import StubBroker

    from publisher.broker import QueueCheck

    broker = StubBroker()
    broker.declare_queue("publish")
    broker.declare_queue("publish-variant")
    with caplog.at_level("ERROR"):
        QueueCheck().after_worker_boot(broker, SimpleNamespace(consumer_whitelist={"publish-varaint"}))
        QueueCheck().after_worker_boot(broker, SimpleNamespace(consumer_whitelist={"publish-variant"}))
        QueueCheck().after_worker_boot(broker, SimpleNamespace(consumer_whitelist=None))
    assert [r.getMessage() for r in caplog.records] == [
        "--queues names publish-varaint, on which no step travels (steps use publish, publish-variant; "
        "see STAGE_QUEUES)"]
