"""The order in which a worker process's threads take steps (Dramatiq's worker queue of (priority,
message)): a fresh lot's steps, later stages first; then the backlog's, later stages first. A backlog
job begun never holds back a fresh lot's first step, and a job begun is finished before another starts."""

import queue

from publisher.jobs.dispatch import HandedStep, OrderedStep, queue_priority, step_message


def taken_in_order(*steps) -> list[tuple[str, int]]:
    """Each (stage, lane) as the worker queue hands them out; handed or consumed alike."""
    work: queue.PriorityQueue = queue.PriorityQueue()
    for n, (stage, lane, handed) in enumerate(steps):
        message = step_message(stage, n, f"token-{n}", "publish", lane)
        work.put((queue_priority(stage, lane), HandedStep(message, None) if handed else OrderedStep(message)))
    out = []
    while not work.empty():
        message = work.get()[1]
        out.append((message.actor_name, message.options["lane"]))
    return out


def test_a_fresh_lots_steps_go_before_the_backlogs_and_a_begun_job_before_a_new_one():
    assert taken_in_order(
        ("fetch", 2, False), ("variant", 2, True), ("fetch", 0, False), ("upload", 2, True),
        ("fetch", 1, False), ("variant", 0, True), ("upload", 0, True),
    ) == [("upload", 0), ("variant", 0), ("fetch", 0), ("fetch", 1), ("upload", 2), ("variant", 2), ("fetch", 2)]


def test_within_a_lane_and_stage_the_oldest_goes_first():
    steps = [step_message("fetch", n, "t", "publish", 2).copy(message_timestamp=1_000 + n) for n in range(5)]
    work: queue.PriorityQueue = queue.PriorityQueue()
    for message in reversed(steps):
        work.put((queue_priority("fetch", 2), OrderedStep(message)))
    assert [work.get()[1].args[0] for _ in steps] == [0, 1, 2, 3, 4]
