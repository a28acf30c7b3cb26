"""Log lines: the JSON format carries a job's fields, and no secret reaches a line."""

import io
import json
import logging

from publisher import logs

SECRET = "raid-token-very-secret-1234"


def _logger_with(stream, fmt):
    logger = logging.getLogger(f"test.ops.{fmt}")
    logger.handlers[:] = []
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter() if fmt == "json" else logging.Formatter("%(message)s"))
    handler.addFilter(logs.RedactingFilter(logs.Redactor([SECRET])))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


def test_json_log_line_carries_job_fields_and_no_secret():
    out = io.StringIO()
    log = _logger_with(out, "json")
    log.warning("job=%s stage=%s will retry: origin refused Bearer %s", 7, "fetch", SECRET,
                extra=logs.job_fields(7, "f-1", "fetch", 1.23456, event="retry", error=f"token {SECRET}"))
    entry = json.loads(out.getvalue())
    assert entry["level"] == "warning"
    assert (entry["job_id"], entry["file_id"], entry["stage"], entry["duration_s"], entry["event"]) == (
        7, "f-1", "fetch", 1.235, "retry")
    assert SECRET not in out.getvalue()
    assert "[redacted]" in entry["message"] and "[redacted]" in entry["error"]


def test_json_log_keeps_exceptions_redacted():
    out = io.StringIO()
    log = _logger_with(out, "json")
    try:
        raise RuntimeError(f"connect to postgresql://u:{SECRET}@db failed")
    except RuntimeError:
        log.exception("boom")
    entry = json.loads(out.getvalue())
    assert "RuntimeError" in entry["exception"] and SECRET not in out.getvalue()
