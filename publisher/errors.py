"""The two kinds of failure a step can have, each with an optional reason.

Anything that is not a PermanentError is treated as transient and retried:
network and S3 errors, database disconnects, timeouts, and bugs, up to the
job's max_retries.

A reason is a short, bounded label (origin_404, corrupt_image, ...) given
where the failure is raised; the failure metrics carry it (publisher/telemetry.py),
so no one has to read it back out of the message.
"""


class StepFailure(Exception):
    #: A bounded label for the metrics; None: the class name stands in.
    reason: str | None = None

    def __init__(self, message: str = "", reason: str | None = None):
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class PermanentError(StepFailure):
    """The input itself is wrong (not found, forbidden, not an image, too big):
    retrying cannot help, so the job fails after this attempt."""


class TransientError(StepFailure):
    """Worth another attempt after a backoff (origin 5xx, truncated download)."""


class StaleAttempt(PermanentError):
    """The job was taken over by a newer attempt (or reset by an operator) mid-step."""

    reason = "stale_attempt"
