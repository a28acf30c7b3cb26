"""The order in which a worker process's threads take steps (Dramatiq's worker queue of (priority,
message)): a fresh job begun is finished first; a fresh lot's first step goes before the retries' and
the backlog's steps that reached the process shortly before it, but no step of a lower lane waits
behind the steps arriving after it longer than its yield (LANE_YIELD_SECONDS per lane below fresh,
twice that for a first step)."""

import queue

from publisher.jobs.dispatch import HandedStep, OrderedStep, queue_priority, step_message
from publisher.settings.fixed import LANE_YIELD_SECONDS

FRESH, RETRY, BACKLOG = 0, 1, 2


def taken_in_order(*steps) -> list[tuple[str, int, int]]:
    """Each (stage, lane, job) as the worker queue hands them out. A step is (stage, lane, arrived):
    a first step as a consumer yields it, a later one as handed over in the process (queue_priority)."""
    work: queue.PriorityQueue = queue.PriorityQueue()
    for job, (stage, lane, arrived) in enumerate(steps):
        message = step_message(stage, job, f"token-{job}", "publish", lane)
        if stage == "fetch":
            work.put((20, OrderedStep(message, arrived=arrived)))  # the fetch actor's priority, as Dramatiq puts it
        else:
            work.put((queue_priority(stage, lane), HandedStep(message, None, arrived=arrived)))
    out = []
    while not work.empty():
        message = work.get()[1]
        out.append((message.actor_name, message.options["lane"], message.args[0]))
    return out


def test_a_fresh_lot_starts_before_the_lower_lanes_steps_that_arrived_before_it():
    assert taken_in_order(
        ("fetch", BACKLOG, 100.0), ("variant", BACKLOG, 100.5), ("upload", BACKLOG, 101.0),
        ("fetch", RETRY, 101.2), ("fetch", FRESH, 101.5),
    ) == [("fetch", FRESH, 4), ("variant", BACKLOG, 1), ("upload", BACKLOG, 2), ("fetch", RETRY, 3),
          ("fetch", BACKLOG, 0)]


def test_a_fresh_job_begun_is_finished_before_any_other_step():
    assert taken_in_order(
        ("fetch", FRESH, 100.0), ("upload", BACKLOG, 100.0), ("variant", FRESH, 105.0), ("upload", FRESH, 109.0),
    ) == [("upload", FRESH, 3), ("variant", FRESH, 2), ("fetch", FRESH, 0), ("upload", BACKLOG, 1)]


def test_a_stream_of_fresh_lots_holds_a_lower_lanes_step_no_longer_than_its_yield():
    y = LANE_YIELD_SECONDS
    fresh_stream = [("fetch", FRESH, 100.5 + t) for t in range(5 * y)]  # one a second
    order = taken_in_order(("upload", BACKLOG, 100.0), ("variant", RETRY, 100.0), ("fetch", BACKLOG, 100.0),
                           *fresh_stream)
    # Each is overtaken by the fresh lots that arrived within its yield, and by no later one.
    assert order.index(("variant", RETRY, 1)) == y
    assert order.index(("upload", BACKLOG, 0)) == 2 * y + 1  # the retry went before it too
    assert order.index(("fetch", BACKLOG, 2)) == 4 * y + 2
    assert all(lane == FRESH for _, lane, _ in order[:y])


def test_within_a_lane_a_job_begun_is_finished_before_the_next_starts_and_the_first_arrived_goes_first():
    assert taken_in_order(
        ("fetch", BACKLOG, 100.0), ("variant", BACKLOG, 100.1), ("fetch", BACKLOG, 100.2), ("upload", BACKLOG, 100.3),
    ) == [("variant", BACKLOG, 1), ("upload", BACKLOG, 3), ("fetch", BACKLOG, 0), ("fetch", BACKLOG, 2)]
