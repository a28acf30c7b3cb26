"""The metric hooks of the job code, and the reasons failures are counted under."""

import pytest

from publisher import telemetry
from publisher.errors import PermanentError, StaleAttempt, TransientError
from publisher.jobs.handoff import Fetched, ImagingFacts, Rendered, Source, StagedFile
from publisher.observability import prometheus as metrics


def test_metric_hooks_are_no_ops_until_set_up_then_count(monkeypatch):
    monkeypatch.setattr(telemetry, "_metrics", None)
    telemetry.step_finished("fetch", "done", 0.5, {"in": 10})  # nothing set up: no error
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    telemetry.install(metrics.WorkerMetrics(registry))
    fetched = Fetched(Source(file="source", bytes=1000, format="jpeg", width=4, height=3))
    staged = [StagedFile(file=f"{n}.webp", width=1, height=1, bytes=n, sha256="0")
              for n in (30, 12)]
    rendered = Rendered({"a": {"webp": staged[0]}, "b": {"webp": staged[1]}},
                        ImagingFacts(recipe="r", placeholder=None, dominant_color=None))
    telemetry.step_finished("fetch", "done", 0.5, fetched.traffic())
    telemetry.step_finished("variant", "done", 0.5, rendered.traffic())
    telemetry.step_failed("fetch", PermissionError("no"), "failed")
    with telemetry.phase("download"):
        pass
    telemetry.variant_made("thumb", "webp", 20_000, 75.5)
    telemetry.variant_made("thumb", "webp", 30_000, None)  # a fixed quality: no score
    value = registry.get_sample_value
    assert value("publisher_bytes_total", {"direction": "in"}) == 1000
    assert value("publisher_bytes_total", {"direction": "out"}) == 42
    assert value("publisher_step_failures_total",
                 {"stage": "fetch", "reason": "PermissionError", "outcome": "failed"}) == 1
    assert value("publisher_phase_seconds_count", {"phase": "download"}) == 1
    thumb = {"variant": "thumb", "format": "webp"}
    assert (value("publisher_variant_bytes_count", thumb), value("publisher_variant_bytes_sum", thumb)) == (2, 50_000)
    assert (value("publisher_variant_score_count", thumb), value("publisher_variant_score_sum", thumb)) == (1, 75.5)


@pytest.mark.parametrize("error, reason", [
    (PermanentError("origin answered 404 Not Found for key 'a.jpg'", "origin_404"), "origin_404"),
    (TransientError("origin timed out for key 'a.jpg'", "origin_timeout"), "origin_timeout"),
    (StaleAttempt("job 7 was taken over by a newer attempt"), "stale_attempt"),
    (PermanentError("refusing to send the token to elsewhere.example"), "PermanentError"),
    (ConnectionResetError("peer reset"), "ConnectionResetError"),
])
def test_a_failure_is_counted_under_the_reason_it_was_raised_with_else_its_class(error, reason):
    assert telemetry.failure_reason(error) == reason


def test_a_reason_survives_pickling_as_an_exception_crossing_processes_would():
    import pickle

    again = pickle.loads(pickle.dumps(TransientError("origin answered 503", "origin_503")))
    assert (str(again), again.reason) == ("origin answered 503", "origin_503")
