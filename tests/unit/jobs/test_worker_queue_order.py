"""The order in which a worker process's threads take steps (Dramatiq's worker queue of (priority,
message)): a job begun is finished before another starts, and among first steps a fresh lot's goes
before the retries' and the backlog's, the oldest first within a lane."""

import queue

from publisher.jobs.dispatch import HandedStep, OrderedStep, step_message
from publisher.stages import PRIORITY


def taken_in_order(*steps) -> list[tuple[str, int, int]]:
    """Each (stage, lane, job) as the worker queue hands them out; handed or consumed alike."""
    work: queue.PriorityQueue = queue.PriorityQueue()
    for job, (stage, lane, handed) in enumerate(steps):
        message = step_message(stage, job, f"token-{job}", "publish", lane).copy(message_timestamp=1_000 + job)
        work.put((PRIORITY[stage], HandedStep(message, None) if handed else OrderedStep(message)))
    out = []
    while not work.empty():
        message = work.get()[1]
        out.append((message.actor_name, message.options["lane"], message.args[0]))
    return out


def test_begun_jobs_first_then_first_steps_lane_by_lane_oldest_first():
    assert taken_in_order(
        ("fetch", 2, False), ("variant", 2, True), ("fetch", 0, False), ("upload", 2, True),
        ("fetch", 1, False), ("fetch", 0, False), ("variant", 0, True), ("fetch", 2, False),
    ) == [("upload", 2, 3), ("variant", 0, 6), ("variant", 2, 1),
          ("fetch", 0, 2), ("fetch", 0, 5), ("fetch", 1, 4), ("fetch", 2, 0), ("fetch", 2, 7)]
