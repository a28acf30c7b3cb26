"""The two kinds of failure a step can have.

Anything that is not a PermanentError is treated as transient and retried:
network and S3 errors, database disconnects, timeouts, and bugs, up to the
job's max_retries.
"""


class PermanentError(Exception):
    """The input itself is wrong (not found, forbidden, not an image, too big):
    retrying cannot help, so the job fails after this attempt."""


class TransientError(Exception):
    """Worth another attempt after a backoff (origin 5xx, truncated download)."""


class StaleAttempt(PermanentError):
    """The job was taken over by a newer attempt (or reset by an operator) mid-step."""
