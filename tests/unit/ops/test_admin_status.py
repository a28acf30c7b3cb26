"""What `publisher-admin status` shows the on-call person."""

from datetime import UTC

from publisher.ops.admin.status import format_status


def test_status_text_shows_what_on_call_needs():
    from datetime import datetime

    text = format_status({
        "jobs": {"pending": 3, "failed": 1, "completed": 9}, "broker": {"done": 4},
        "oldest_pending": {"id": 12, "file_id": "f-12", "age_seconds": 4000.0},
        "oldest_pending_seconds": 4000.0,
        "last_hour": {"completed": 9, "failed": 1, "avg_processing_seconds": 2.5, "avg_total_seconds": 3.0},
        "last_failures": [{"id": 5, "file_id": "f-5", "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
                           "retry_count": 5, "max_retries": 5, "stage": "fetch", "last_error": "fetch: 404"}],
    })
    assert "pending     3" in text and "error rate 10.0%" in text and "2.50s" in text
    assert "oldest pending fresh lot: 12 (file f-12), waiting 66m" in text
    assert "job 5 file f-5" in text and "fetch: 404" in text


def test_status_lists_each_worker_host_and_which_drain_even_one_no_worker_beats_on():
    from datetime import datetime

    from publisher.ops.admin.status import format_hosts

    since = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    lines = format_hosts([
        {"host_id": "a-1", "processes": 2, "threads": 6, "running": 1, "seen_seconds_ago": 3.0, "silent": False,
         "draining": False, "draining_since": None, "drained_by": None, "to_finish": 1},
        {"host_id": "b-2", "processes": 0, "threads": 0, "running": 0, "seen_seconds_ago": None, "silent": True,
         "draining": True, "draining_since": since, "drained_by": "oncall via media-publisher-admin", "to_finish": 0},
    ])
    assert lines == [
        "worker hosts:",
        "  a-1: 2 process(es), 6 thread(s), 1 running, last beat 3s ago",
        "  b-2: 0 process(es), 0 thread(s), 0 running, no beat (silent); draining since 2026-01-01 09:30:00+0000 "
        "by oncall via media-publisher-admin, 0 job(s) to finish",
    ]
    assert format_hosts([]) == ["worker hosts: none has beaten"]
