"""Whether a failed step is retried is what the job recorded; Dramatiq's Retries
asks the lifecycle (retry_when) and the message's options are left as sent."""

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries

from publisher.jobs.lifecycle import JobLifecycle


def _failed_step_with(decision: bool | None, retries_so_far: int = 0):
    """A step message that failed, after the lifecycle recorded `decision` (None: it recorded none)."""
    broker = StubBroker(middleware=[])
    lifecycle = JobLifecycle(lambda: None, max_retries=2)
    retries = Retries(retry_when=lifecycle.retry_when, min_backoff=1, max_backoff=1)
    broker.add_middleware(retries)

    @dramatiq.actor(broker=broker, queue_name="publish", actor_name="variant")
    def variant(job_id, token):
        pass

    message = MessageProxy(variant.message(7, "token").copy(options={"retries": retries_so_far}))
    sent = dict(message.options)
    error = RuntimeError("RAID answered 503")
    if decision is not None:
        lifecycle._decide_retry(error, retry=decision)
    enqueued = []
    broker.enqueue = lambda m, delay=None: enqueued.append(m)
    retries.after_process_message(broker, message, exception=error)
    return message, sent, enqueued


def test_a_step_the_job_recorded_as_retried_is_sent_again_even_past_the_default_count():
    message, sent, enqueued = _failed_step_with(True, retries_so_far=5)
    assert len(enqueued) == 1 and not message.failed
    assert "max_retries" not in message.options and "max_retries" not in sent


def test_a_step_the_job_recorded_as_failed_is_not_sent_again():
    message, _, enqueued = _failed_step_with(False)
    assert enqueued == [] and message.failed
    assert "max_retries" not in message.options


def test_a_message_the_lifecycle_decided_nothing_about_follows_the_retry_count():
    assert len(_failed_step_with(None, retries_so_far=1)[2]) == 1
    assert _failed_step_with(None, retries_so_far=2)[2] == []
