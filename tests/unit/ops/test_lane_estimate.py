"""The overview's lanes (publisher/ops/overview.py): what waits in each, and when each is drained at
the recent rate, a lane after every lane before it."""

from publisher.ops.overview import lanes


def test_a_lane_drains_after_the_lanes_before_it_at_the_recent_rate():
    pending = [{"lane": 0, "pending": 3, "oldest_seconds": 5.0}, {"lane": 2, "pending": 7, "oldest_seconds": 600.0}]
    fresh, retry, backlog = lanes(pending, per_second=0.5)
    assert (fresh["lane"], fresh["pending"], fresh["drained_in_seconds"]) == ("fresh", 3, 6.0)
    assert (retry["pending"], retry["oldest_seconds"], retry["drained_in_seconds"]) == (0, None, 6.0)
    assert (backlog["pending"], backlog["oldest_seconds"], backlog["drained_in_seconds"]) == (7, 600.0, 20.0)


def test_with_nothing_completed_lately_a_waiting_lane_is_not_moving_and_an_empty_one_is_drained():
    fresh, retry, backlog = lanes([{"lane": 2, "pending": 4, "oldest_seconds": 60.0}], per_second=0.0)
    assert fresh["drained_in_seconds"] == retry["drained_in_seconds"] == 0.0
    assert backlog["drained_in_seconds"] is None


def test_a_paused_lane_is_not_drained_and_the_lanes_after_it_do_not_wait_for_it():
    pending = [{"lane": 0, "pending": 2, "oldest_seconds": 5.0}, {"lane": 1, "pending": 4, "oldest_seconds": 9.0},
               {"lane": 2, "pending": 6, "oldest_seconds": 60.0}]
    fresh, retry, backlog = lanes(pending, per_second=1.0, paused={1})
    assert (retry["paused"], retry["drained_in_seconds"]) == (True, None)
    assert (fresh["paused"], fresh["drained_in_seconds"], backlog["drained_in_seconds"]) == (False, 2.0, 8.0)
