"""A worker host that is gone for good, on RabbitMQ: its queues expire (x-expires),
and the job it died in is published all the same by another host, started over
from its first step once its lease ran out."""

import pytest

from devstack.ports import wait_until
from publisher.jobs.host_identity import default_host_id
from publisher.jobs.locality import host_queue
from tests.faults import harness
from tests.faults.harness import KILL_MARK
from tests.support.stack import BROKERS

pytestmark = pytest.mark.parametrize("broker", [b for b in BROKERS if b == "rabbitmq"], indirect=True)

def test_a_host_gone_for_good_leaves_no_queue_and_loses_no_job(fault_stack, batch, broker):
    stack = fault_stack(WORKER_HOST_EXPIRY_SECONDS=10)
    jobs = batch(stack, f"host-gone-for-good-{broker}")
    # The doomed host fetches, then dies in the variant step, which it had been handed by its own fetch.
    job_id = jobs.add(jobs.source("progressive.jpg", KILL_MARK + "-"))
    jobs.faults = 1
    stack.start_listener()
    # Another host on this machine: a scratch directory of its own, so another host id and queue.
    doomed_scratch = stack.tmp / "scratch-doomed"
    doomed_queue = host_queue(default_host_id(str(doomed_scratch)))
    doomed = harness.start_workers(stack, processes=1, threads=1, hooks=True, env={"SCRATCH_DIR": str(doomed_scratch)})
    wait_until(lambda: not doomed.running(), 120, "the doomed host's worker to die in the variant step")
    # The host's queue exists, and holds nothing: the variant step never travelled on it. The job waits
    # for its lease to run out.
    assert stack.vhost.queues().get(doomed_queue) == 0

    harness.start_workers(stack, processes=1, threads=2)  # another host: the stack's own scratch directory
    jobs.wait()
    result = jobs.outcome()
    result.assert_clean()
    row = stack.job(job_id)
    assert row["status"] == "completed" and row["retry_count"] == 1, row  # the step that died counts once
    # The queue and its delay queue expire; nothing else is needed for that.
    wait_until(lambda: not any(q.startswith(doomed_queue) for q in stack.vhost.queues()), 60,
               "the doomed host's queues to expire")
    assert stack.job(job_id)["status"] == "completed"
