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
