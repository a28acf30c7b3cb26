"""The metric hooks the job code calls (actors, imaging, the lifecycle).

The job code never imports prometheus_client: prometheus_client decides at its
first import whether it runs in multiprocess mode, which a worker process sets
only once it has booted. A worker then installs its metrics here
(publisher/observability/prometheus.py); until then, and in any other process,
the hooks record nothing.
"""

from __future__ import annotations

import contextlib
import time


class _Off:
    """Stands in for a metric where metrics are not set up: accepts everything, records nothing."""

    def labels(self, *args, **kwargs):
        return self

    def observe(self, value):
        pass

    def inc(self, value=1):
        pass


_OFF = _Off()
_metrics = None


def install(metrics) -> None:
    """Hands the hooks this process's metrics (None: record nothing again)."""
    global _metrics
    _metrics = metrics


def installed():
    return _metrics


def _metric(name: str):
    return getattr(_metrics, name) if _metrics is not None else _OFF


@contextlib.contextmanager
def phase(name: str):
    """Times a phase of a job (download, decode_resize, encode, score, upload), failed or not."""
    started = time.perf_counter()
    try:
        yield
    finally:
        _metric("phase_seconds").labels(name).observe(time.perf_counter() - started)


def step_finished(stage: str, outcome: str, seconds: float, traffic: dict[str, int] | None = None) -> None:
    """A step ended (done, retry, failed); traffic: bytes by direction ("in", "out") it moved."""
    _metric("step_seconds").labels(stage, outcome).observe(seconds)
    for direction, count in (traffic or {}).items():
        _metric("bytes").labels(direction).inc(count)


def variant_made(variant: str, fmt: str, size: int, score: float | None) -> None:
    """A variant was encoded: its bytes and, when its quality was searched, its SSIMULACRA2 score."""
    _metric("variant_bytes").labels(variant, fmt).observe(size)
    if score is not None:
        _metric("variant_score").labels(variant, fmt).observe(score)


def step_failed(stage: str, exception: BaseException, outcome: str) -> None:
    _metric("failures").labels(stage, failure_reason(exception), outcome).inc()


def queue_lag(seconds: float) -> None:
    _metric("queue_lag_seconds").observe(max(0.0, seconds))


def failure_reason(exception: BaseException) -> str:
    """A bounded label for a failure: the reason it was raised with (origin_404,
    corrupt_image, too_many_pixels, ...), else its class (S3Error, TimeLimitExceeded, ...)."""
    return getattr(exception, "reason", None) or type(exception).__name__
