"""What stands in front of every route of the page: security headers on every
answer (static files, /healthz and errors included), and a throttle on
failed logins per client address."""

from __future__ import annotations

import collections
import threading
import time

#: No inline script, nothing framed, forms post here only; thumbnails come from the CDN (any origin).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src * data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SecurityHeaders:
    """ASGI middleware: adds SECURITY_HEADERS to each answer that does not set them itself."""

    HEADERS = SECURITY_HEADERS

    def __init__(self, app):
        self.app = app
        self._headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in self._headers if name not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LoginThrottle:
    """At most `failures` failed logins per client address in `window` seconds;
    past that, every login from the address is refused until the window moves on."""

    #: Addresses remembered at most: a flood of addresses cannot grow memory without bound.
    MAX_CLIENTS = 10_000

    def __init__(self, failures: int, window: float):
        self.failures, self.window = failures, window
        self._seen: dict[str, collections.deque] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> collections.deque:
        times = self._seen.get(client) or collections.deque()
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def retry_after(self, client: str) -> float:
        """Seconds until the client may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.failures:
                return 0.0
            return max(1.0, self.window - (now - times[0]))

    def failed(self, client: str) -> int:
        """Counts a failure; returns the client's failures in the window."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            times.append(now)
            self._seen[client] = times
            if len(self._seen) > self.MAX_CLIENTS:
                self._seen = {c: t for c, t in self._seen.items() if t and now - t[-1] <= self.window}
            return len(times)
