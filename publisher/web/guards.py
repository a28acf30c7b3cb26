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
    past that, every login from the address is refused until the window moves on.

    The client address is the one uvicorn gives: the peer's, or behind a proxy that
    FORWARDED_ALLOW_IPS trusts, the X-Forwarded-For it sets (docs/operations.md)."""

    #: Addresses remembered at most, the least recently seen forgotten first: a flood
    #: of addresses (IPv6 gives anyone plenty) costs a bounded amount of memory and
    #: constant work per failure; an address that keeps trying stays remembered.
    MAX_CLIENTS = 10_000

    def __init__(self, failures: int, window: float):
        self.failures, self.window = failures, window
        #: Each address's last `failures` failure times, least recently seen address first.
        self._seen: collections.OrderedDict[str, collections.deque] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def _recent(self, client: str, now: float) -> collections.deque | None:
        times = self._seen.get(client)
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def retry_after(self, client: str) -> float:
        """Seconds until the client may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if times is None or len(times) < self.failures:
                return 0.0
            self._seen.move_to_end(client)
            return max(1.0, self.window - (now - times[0]))

    def failed(self, client: str) -> int:
        """Counts a failure; returns the client's failures in the window (at most `failures`)."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if times is None:
                times = self._seen[client] = collections.deque(maxlen=self.failures)
            self._seen.move_to_end(client)
            times.append(now)
            self._forget_oldest(now)
            return len(times)

    def _forget_oldest(self, now: float) -> None:
        """Drops addresses past the bound, and those at the old end whose failures
        have all left the window (amortised constant work: each is dropped once)."""
        while len(self._seen) > self.MAX_CLIENTS:
            self._seen.popitem(last=False)
        while self._seen:
            oldest = next(iter(self._seen.values()))
            if oldest and now - oldest[-1] <= self.window:
                break
            self._seen.popitem(last=False)
