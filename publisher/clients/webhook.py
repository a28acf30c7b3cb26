"""The completion webhook's HTTP side: one signed POST of one event.

The signature header is `sha256=` + hex HMAC-SHA256 of `<timestamp>.<body>`
with PUBLISH_WEBHOOK_SECRET, the timestamp sent beside it, so a receiver can
refuse a replay of an old body (the scheme of Stripe's and GitHub's webhooks).

A receiver is someone else's server: one deadline covers the whole POST
(resolving, connecting, headers, body), at most ANSWER_BYTES of its answer are
read, and errors name the receiver by scheme://host[:port] only: a webhook URL's
path and query may be its credential (Slack's, Teams' and Discord's are), so they
are never quoted, and redacted should a library quote them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import requests
import urllib3.exceptions

from publisher import logs
from publisher.clients import deadline

SIGNATURE = "X-Publisher-Signature"
TIMESTAMP = "X-Publisher-Timestamp"
EVENT_ID = "X-Publisher-Event-Id"
#: Bytes of an answer read (the status decides; the body is only drained so the
#: connection can be kept): a huge answer is cut off, not held in memory.
ANSWER_BYTES = 4096
#: An error kept in the outbox is one short line.
ERROR_CHARS = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookClient:
    def __init__(self, url: str, secret: str, timeout: float):
        self.url, self.secret, self.timeout = url, secret, timeout
        self.session = deadline.session()
        self.redact = logs.Redactor((secret, *logs.url_secrets(url, path=True)))
        #: How errors name the receiver.
        self.shown = logs.url_origin(url)

    def post(self, event: Mapping[str, Any]) -> str | None:
        """Sends the event; None when the receiver took it (2xx), else why not (redacted, one line)."""
        body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", EVENT_ID: str(event["event_id"]), TIMESTAMP: timestamp,
                   SIGNATURE: sign(self.secret, timestamp, body), "User-Agent": "media-publisher-webhook"}
        with deadline.within(self.timeout) as limit:
            try:
                with self.session.post(self.url, data=body, headers=headers, timeout=self.timeout,
                                       allow_redirects=False, stream=True) as response:
                    response.raw.read(ANSWER_BYTES)
                    status = response.status_code
                error = None if 200 <= status < 300 else f"{self.shown}: HTTP {status}"
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
                error = logs.bounded(f"{self.shown}: {_describe(e)}", self.redact, ERROR_CHARS)
        # A connection cut at the deadline can look like an answer that ended early
        # (headers end at EOF): whatever was read then, it does not count.
        if limit.expired:
            return (f"{self.shown}: no complete answer within the deadline of {self.timeout:g} s"
                    " (PUBLISH_WEBHOOK_TIMEOUT)")
        return error


def _describe(error: BaseException) -> str:
    """The error and its innermost cause. The wrappers (requests' errors, urllib3's
    MaxRetryError) quote the request's URL, path and query included; the cause (a
    refused connection, a timeout, a broken answer) names the host and port at most."""
    cause = error
    while True:
        inner = getattr(cause, "reason", None)  # MaxRetryError
        if not isinstance(inner, BaseException):  # requests' errors carry urllib3's as their first argument
            inner = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        if inner is None or inner is cause:
            break
        cause = inner
    if cause is error:
        return f"{type(error).__name__}: {error}"
    return f"{type(error).__name__}: {type(cause).__name__}: {cause}"
