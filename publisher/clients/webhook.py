"""The completion webhook's HTTP side: one signed POST of one event.

The signature header is `sha256=` + hex HMAC-SHA256 of `<timestamp>.<body>`
with PUBLISH_WEBHOOK_SECRET, the timestamp sent beside it, so a receiver can
refuse a replay of an old body (the scheme of Stripe's and GitHub's webhooks).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import requests

SIGNATURE = "X-Publisher-Signature"
TIMESTAMP = "X-Publisher-Timestamp"
EVENT_ID = "X-Publisher-Event-Id"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def post(session: requests.Session, url: str, secret: str, event: dict, timeout: float) -> str | None:
    """Sends the event; None when the receiver took it (2xx), else why not."""
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", EVENT_ID: str(event["event_id"]), TIMESTAMP: timestamp,
               SIGNATURE: sign(secret, timestamp, body), "User-Agent": "media-publisher-webhook"}
    try:
        response = session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.RequestException as e:
        return f"{type(e).__name__}: {str(e)[:200]}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"
