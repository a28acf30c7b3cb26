"""Actors named like the real steps (fetch, variant, upload) that do no image
work: only the job lifecycle runs (begin step, end step, finalize). Workers
started on this module measure what the trigger, the listener and the broker
sustain on their own:

    dramatiq bench.noop_actors --processes 2 --threads 3

Benchmark-only; production code has no hook for it.
"""

import dramatiq

from bench.step_results import Handed
from publisher.app.broker import setup_broker
from publisher.app.runtime import process_runtime, settings_or_exit
from publisher.jobs.handoff import ImagingFacts, Published, Source
from publisher.jobs.locality import QUEUE

broker = setup_broker(settings_or_exit(), process_runtime)


# Same queue and priorities as actors/.
@dramatiq.actor(queue_name=QUEUE, priority=20)
def fetch(job_id: int, token: str) -> Handed:
    return Handed({"source": {"width": 0, "height": 0}})


@dramatiq.actor(queue_name=QUEUE, priority=10)
def variant(job_id: int, token: str) -> Handed:
    return Handed({"variants": {}})


@dramatiq.actor(queue_name=QUEUE, priority=0)
def upload(job_id: int, token: str) -> Published:
    # The lifecycle finalizes the job with what this returns, as it does the real upload's.
    return Published({}, Source("source", 0, "none", 0, 0), ImagingFacts("bench-noop", None, None))
