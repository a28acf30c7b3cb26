"""Priority lanes (issue 26): the listener claims pending jobs lane by lane, oldest first in each:
fresh lots (an application's plain INSERT), then operators' retries, then the catalogue's backlog
(backfill, republish). A backlog never delays a fresh lot, and drains whenever no fresher job waits."""

import psycopg2.errors
import pytest

from publisher.jobs.store import intake
from publisher.jobs.store.states import Lane
from tests.support.job_sql import ALIVE, claim, new_file, new_job, one, rows, worker_beat


def lane(cur, job_id) -> Lane:
    return Lane(one(cur, "SELECT lane FROM publish_jobs WHERE id = %s", job_id))


def published_file(cur, raid_key: str, recipe: str = "old") -> str:
    return one(cur, "INSERT INTO auction_files (raid_key, publish_status, published_at, variants, recipe) "
                    "VALUES (%s, 'published', now(), '{}', %s) RETURNING id::text", raid_key, recipe)


def backlog(cur, files: int) -> list[int]:
    """A republish of `files` published files: the catalogue's backlog."""
    for n in range(files):
        published_file(cur, f"catalogue-{n}.jpg")
    assert one(cur, "SELECT publisher_request_republish('new', %s)", files) == files
    return [r["id"] for r in rows(cur, "SELECT id FROM publish_jobs WHERE republish_recipe = 'new' ORDER BY id")]


def claimed_ids(cur, per_thread: int) -> list[int]:
    """One claim with room for `per_thread` jobs per live worker thread, in lane and id order."""
    claimed = {r["job_id"] for r in claim(cur, limit=100, per_thread=per_thread)}
    return [r["id"] for r in rows(cur, "SELECT id FROM publish_jobs WHERE id = ANY(%s) ORDER BY lane, id",
                                  list(claimed))]


def test_a_plain_insert_is_the_fresh_lane(cur):
    assert lane(cur, new_job(cur)) is Lane.FRESH


def test_backfill_and_republish_go_to_the_backlog_lane_and_retries_to_the_retry_lane(cur):
    republished = backlog(cur, 2)
    assert {lane(cur, j) for j in republished} == {Lane.BACKLOG}
    new_file(cur, "never-published.jpg")
    backfilled = [r["job_id"] for r in rows(cur, "SELECT job_id FROM publisher_backfill(NULL, NULL)") if r["job_id"]]
    assert backfilled and {lane(cur, j) for j in backfilled} == {Lane.BACKLOG}
    failed = new_job(cur)
    cur.execute("UPDATE publish_jobs SET status = 'failed', last_error = 'x' WHERE id = %s", (failed,))
    assert one(cur, "SELECT changed FROM publisher_admin_retry(%s)", failed)
    assert lane(cur, failed) is Lane.RETRY
    # an operator's republish of one file is a retry too
    single = one(cur, "SELECT job_id FROM publisher_admin_republish(%s)", published_file(cur, "one.jpg"))
    assert lane(cur, single) is Lane.RETRY


def test_a_fresh_lot_overtakes_the_backlog_and_a_retry_waits_between_them(cur):
    worker_beat(cur, threads=3)
    waiting = backlog(cur, 30)
    failed = new_job(cur)
    cur.execute("UPDATE publish_jobs SET status = 'failed', last_error = 'x' WHERE id = %s", (failed,))
    one(cur, "SELECT changed FROM publisher_admin_retry(%s)", failed)
    fresh = new_job(cur)  # inserted last, behind 31 older pending jobs
    # Room for six: the fresh lot, the retry, and the backlog's oldest, but one job's room left to fresh lots.
    assert claimed_ids(cur, 2) == [fresh, failed, *waiting[:3]]


def test_the_backlog_drains_oldest_first_when_nothing_fresher_waits(cur):
    worker_beat(cur, threads=1)
    waiting = backlog(cur, 12)
    taken = []
    while len(taken) < len(waiting):
        batch = claimed_ids(cur, 4)
        assert batch, "the claim stopped with backlog jobs pending"
        taken += batch
        cur.execute("UPDATE publish_jobs SET status = 'completed', completed_at = now() WHERE id = ANY(%s)", (batch,))
    assert taken == waiting


def test_the_backlog_still_progresses_while_fresh_lots_arrive_below_capacity(cur):
    # Each round: one fresh lot arrives, the workers have room for six; what is left, but one job's room
    # per worker process, goes to the backlog.
    worker_beat(cur, threads=3)
    waiting = backlog(cur, 30)
    drained = []
    for _ in range(5):
        fresh = new_job(cur)
        batch = claimed_ids(cur, 2)
        assert batch[0] == fresh
        drained += batch[1:]
        cur.execute("UPDATE publish_jobs SET status = 'completed', completed_at = now() WHERE id = ANY(%s)", (batch,))
    assert drained == waiting[:20]


@pytest.mark.parametrize("processes, threads", [(1, 1), (2, 3), (3, 8), (60, 1)])
def test_a_backlog_that_fills_the_workers_leaves_each_process_room_for_a_fresh_lot(cur, processes, threads):
    for n in range(processes):
        worker_beat(cur, threads=threads, worker=f"host-a:{n}:1")
    waiting = backlog(cur, 120)
    per_thread = 2
    room = processes * threads * per_thread
    assert claimed_ids(cur, per_thread) == waiting[:room - processes]
    assert claimed_ids(cur, per_thread) == []  # nothing more of the backlog while it fills the rest
    fresh = [new_job(cur) for _ in range(processes + 1)]
    # Fresh lots are claimed at once, as far as the room goes, one per process at least.
    assert claimed_ids(cur, per_thread) == fresh[:processes]


def test_a_paused_lane_is_not_claimed_until_it_is_resumed_and_the_other_lanes_go_on(cur):
    worker_beat(cur, threads=5)
    waiting = backlog(cur, 3)
    assert rows(cur, "SELECT * FROM publisher_admin_pause_lane(2::smallint)") == [
        {"changed": True, "message": "lane backlog paused"}]
    assert one(cur, "SELECT changed FROM publisher_admin_pause_lane(2::smallint)") is False  # paused already
    fresh = new_job(cur)
    assert claimed_ids(cur, 1) == [fresh]  # the backlog waits; fresh lots do not
    assert claimed_ids(cur, 1) == []
    assert rows(cur, "SELECT * FROM publisher_admin_resume_lane(2::smallint)") == [
        {"changed": True, "message": "lane backlog resumed"}]
    assert claimed_ids(cur, 1) == waiting
    assert one(cur, "SELECT changed FROM publisher_admin_resume_lane(2::smallint)") is False


def test_the_listener_is_told_jobs_wait_for_room_only_while_a_lane_it_may_claim_holds_one(cur):
    # While this says yes the listener claims again on a short timer; once no job waits it goes
    # back to its sweep, also when the only waiting jobs are in a paused lane.
    def waits() -> bool:
        return intake.pending_waits(cur)

    assert not waits()
    worker_beat(cur, threads=2)
    retried = new_job(cur)
    cur.execute("UPDATE publish_jobs SET lane = 1 WHERE id = %s", (retried,))
    assert waits()
    assert claimed_ids(cur, 1) == [retried]
    assert not waits()
    backlog(cur, 4)
    assert waits()
    cur.execute("SELECT publisher_admin_pause_lane(2::smallint)")
    assert not waits()
    cur.execute("SELECT publisher_admin_resume_lane(2::smallint)")
    assert waits()


def test_an_ended_job_run_again_by_any_door_waits_in_the_retry_lane(cur):
    by_update = new_job(cur)
    cur.execute("UPDATE publish_jobs SET status = 'completed', completed_at = now() WHERE id = %s", (by_update,))
    cur.execute("UPDATE publish_jobs SET status = 'pending' WHERE id = %s", (by_update,))  # the documented SQL door
    raised = new_job(cur)
    cur.execute("UPDATE publish_jobs SET status = 'failed', retry_count = 5, max_retries = 5 WHERE id = %s", (raised,))
    cur.execute("UPDATE publish_jobs SET max_retries = 6 WHERE id = %s", (raised,))  # runs it again
    assert [(one(cur, "SELECT status FROM publish_jobs WHERE id = %s", j), lane(cur, j)) for j in (by_update, raised)] \
        == [("pending", Lane.RETRY)] * 2


def test_a_fresh_request_for_a_file_waiting_in_the_backlog_moves_its_job_to_the_fresh_lane(cur):
    worker_beat(cur, threads=1)
    waiting = backlog(cur, 30)
    file_id = one(cur, "SELECT file_id::text FROM publish_jobs WHERE id = %s", waiting[-1])
    cur.execute("LISTEN publish_jobs")
    # the application's plain INSERT for that file: no error, no second job
    cur.execute("INSERT INTO publish_jobs (file_id) VALUES (%s) RETURNING id", (file_id,))
    assert cur.fetchall() == []
    assert rows(cur, "SELECT id FROM publish_jobs WHERE file_id = %s", file_id) == [{"id": waiting[-1]}]
    assert lane(cur, waiting[-1]) is Lane.FRESH
    # its wait is counted from the fresh request (the pending-age alert watches the fresh lane)
    assert one(cur, "SELECT created_at > (SELECT max(created_at) FROM publish_jobs WHERE id <> %s) "
                    "FROM publish_jobs WHERE id = %s", waiting[-1], waiting[-1])
    assert [n.payload for n in cur.connection.notifies] == [str(waiting[-1])]  # the listener is woken
    assert claimed_ids(cur, 3) == [waiting[-1], waiting[0]]  # the fresh lane, then the backlog's oldest


def test_a_fresh_request_for_a_file_whose_job_runs_is_refused_as_before(cur):
    worker_beat(cur, threads=1)
    running = backlog(cur, 1)[0]
    assert claimed_ids(cur, 2) == [running]
    file_id = one(cur, "SELECT file_id::text FROM publish_jobs WHERE id = %s", running)
    with pytest.raises(psycopg2.errors.UniqueViolation):
        cur.execute("INSERT INTO publish_jobs (file_id) VALUES (%s)", (file_id,))


def test_the_claim_says_each_jobs_file_and_the_lane_it_is_claimed_in(cur):
    # The listener sends each first step in its job's lane: a backlog job that a fresh request for
    # its file moved to the fresh lane is sent as fresh.
    worker_beat(cur, threads=3)
    waiting = backlog(cur, 2)
    moved_file = one(cur, "SELECT file_id::text FROM publish_jobs WHERE id = %s", waiting[0])
    cur.execute("INSERT INTO publish_jobs (file_id) VALUES (%s)", (moved_file,))  # moves it: INSERT 0 0
    claimed = {job.job_id: (job.file_id, Lane(job.lane)) for job in intake.claim_pending(cur, 100, 2, ALIVE)}
    assert claimed[waiting[0]] == (moved_file, Lane.FRESH)
    assert claimed[waiting[1]] == (one(cur, "SELECT file_id::text FROM publish_jobs WHERE id = %s", waiting[1]),
                                   Lane.BACKLOG)
