"""RAID, the private HTTP origin that holds the originals.

Downloads are streamed to disk and cut off past the byte limit and past a
total deadline that covers resolving the name, connecting, headers, redirects and the body
(publisher/clients/deadline.py). The Bearer token goes to RAID's own host only: a redirect
elsewhere is refused, never followed. Every URL is checked with the parser
that connects (urllib3's, through requests' prepared request), and the token
is added to each request after that check, never kept on the session.
"""

from __future__ import annotations

import os
import re
import threading
from urllib.parse import urljoin

import requests
import urllib3.exceptions
import urllib3.response
from urllib3.util import parse_url

from publisher import logs
from publisher.clients import deadline
from publisher.errors import PermanentError, TransientError
from publisher.settings import fixed

#: Statuses that no retry can fix.
PERMANENT_STATUSES = {400, 401, 403, 404, 405, 410, 414, 415, 451}
#: How many same-host redirects are followed.
MAX_REDIRECTS = 3
CHUNK_BYTES = 1024 * 1024
#: Characters parsers disagree about (backslash, control characters, space):
#: a Location holding one is refused rather than interpreted.
AMBIGUOUS_URL_CHARS = re.compile(r"[\\\x00-\x20\x7f]")


class OriginClient:
    def __init__(self, endpoint: str, secret: str, *, connect_timeout: float, read_timeout: float, max_bytes: int,
                 download_timeout: float | None = None):
        self.endpoint = endpoint
        self.max_bytes = max_bytes
        self.timeout = (connect_timeout, read_timeout)
        #: Seconds a whole download may take (the read timeout bounds only each read).
        self.download_timeout = download_timeout
        self._authorization = f"Bearer {secret}"
        self._origin = _origin_of(_url_of(requests.Request("GET", endpoint).prepare()))
        # Proxies and .netrc from the environment must not see or replace the token.
        self._session = deadline.session()

    @classmethod
    def from_settings(cls, settings) -> OriginClient:
        """The client of RAID_PUB_ENDPOINT as the settings configure it (workers, the contact sheet)."""
        return cls(settings.raid_pub_endpoint, settings.raid_publisher_secret,
                   connect_timeout=fixed.ORIGIN_CONNECT_TIMEOUT, read_timeout=fixed.ORIGIN_READ_TIMEOUT,
                   max_bytes=fixed.MAX_SOURCE_BYTES, download_timeout=fixed.ORIGIN_DOWNLOAD_TIMEOUT)

    def download(self, raid_key: str, dest: str) -> int:
        """Streams the original of raid_key to dest; returns its size in bytes."""
        if not self.download_timeout:
            return self._download(raid_key, dest, None)
        with deadline.within(self.download_timeout) as limit:
            try:
                return self._download(raid_key, dest, limit)
            except Exception as e:
                if limit.expired:  # whatever broke, it broke because the deadline cut the connection
                    raise self._too_slow(raid_key) from e
                raise

    def _too_slow(self, raid_key: str, received: int | None = None) -> TransientError:
        cut = "" if received is None else f"; cut off after {received} bytes"
        return TransientError(f"download of {raid_key!r} took longer than {self.download_timeout:g} s "
                              f"(ORIGIN_DOWNLOAD_TIMEOUT){cut}", "origin_timeout")

    def _download(self, raid_key: str, dest: str, limit: deadline.Deadline | None) -> int:
        request = self._prepare(self.endpoint, {"key": raid_key})
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self._session.send(request, stream=True, timeout=self.timeout, allow_redirects=False)
            except requests.Timeout as e:
                raise TransientError(f"origin timed out for key {raid_key!r}", "origin_timeout") from e
            except requests.ConnectionError as e:
                raise TransientError(f"origin unreachable for key {raid_key!r}: {type(e).__name__}",
                                     "origin_unreachable") from e
            with response:
                if response.is_redirect:
                    request = self._prepare(self._redirect_target(response, raid_key), None)
                    continue
                _raise_for_status(response, raid_key)
                return self._save(response, raid_key, dest, limit)
        raise PermanentError(f"origin redirected key {raid_key!r} more than {MAX_REDIRECTS} times", "origin_redirect")

    def _prepare(self, url: str, params: dict | None) -> requests.PreparedRequest:
        """The request as it will be sent. The token is added only once the host the
        connection will go to (parsed by urllib3, as when connecting) is RAID's."""
        request = requests.Request("GET", url, params=params).prepare()
        url = _url_of(request)
        if _origin_of(url) != self._origin:
            raise PermanentError(f"refusing to send the token to {parse_url(url).host}")
        # identity: the byte count can then be checked against Content-Length.
        request.headers["Accept-Encoding"] = "identity"
        request.headers["Authorization"] = self._authorization
        return request

    def _redirect_target(self, response: requests.Response, raid_key: str) -> str:
        location = response.headers.get("Location", "")
        # Redacted before it is cut short: a Location may carry someone's credentials.
        shown = logs.bounded(location, logs.Redactor(logs.url_secrets(location)), 200)
        refused = f"origin redirected key {raid_key!r} to {shown!r}; not followed, the token stays with RAID"
        if AMBIGUOUS_URL_CHARS.search(location):
            raise PermanentError(f"{refused} (backslash, space or control character in the Location)",
                                 "origin_redirect")
        try:  # urllib3's parser, as when connecting; what it cannot read no retry will
            target = urljoin(response.url, location)
            parsed = parse_url(target)
            _origin_of(target)
            requests.Request("GET", target).prepare()
        except ValueError as e:  # urllib3's LocationParseError and requests' InvalidURL are ValueErrors
            raise PermanentError(f"{refused} (not a URL: {type(e).__name__})", "origin_redirect") from e
        if parsed.auth is not None:
            raise PermanentError(f"{refused} (credentials in the Location)", "origin_redirect")
        if _origin_of(target) != self._origin:
            raise PermanentError(f"{refused} (another host: {parsed.host})", "origin_redirect")
        return target

    def _save(self, response: requests.Response, raid_key: str, dest: str, limit: deadline.Deadline | None) -> int:
        declared = response.headers.get("Content-Length")
        encodings = [e.strip().lower() for e in response.headers.get("Content-Encoding", "").split(",")]
        encodings = [e for e in encodings if e not in ("", "identity")]
        if any(e not in urllib3.response.HTTPResponse.CONTENT_DECODERS for e in encodings):
            raise PermanentError(f"origin sent {raid_key!r} with Content-Encoding "
                                 f"{response.headers['Content-Encoding']!r}, which this worker cannot decode "
                                 "(it asks for identity)")
        encoded = bool(encodings)
        # Content-Length counts the bytes on the wire: compressed ones when encoded,
        # so only the decoded size is held against MAX_SOURCE_BYTES.
        if declared and declared.isdigit() and int(declared) > self.max_bytes and not encoded:
            raise PermanentError(
                f"source {raid_key!r} is {int(declared)} bytes, over MAX_SOURCE_BYTES={self.max_bytes}",
                "too_many_bytes",
            )
        received = 0
        # Written under a name of its own, then renamed: another attempt at the
        # same job on this host (a rescued worker waking up) never sees half a file.
        partial = f"{dest}.{os.getpid()}-{threading.get_ident()}.part"
        try:
            with open(partial, "wb") as out:
                while True:
                    # read1 returns what has arrived: the deadline is checked between
                    # reads however slowly the bytes trickle in.
                    chunk = response.raw.read1(CHUNK_BYTES, decode_content=True)
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > self.max_bytes:
                        raise PermanentError(
                            f"source {raid_key!r} is over MAX_SOURCE_BYTES={self.max_bytes}; download cut off",
                            "too_many_bytes",
                        )
                    out.write(chunk)
                    if limit is not None and limit.remaining() <= 0:
                        raise self._too_slow(raid_key, received)
        except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
            _remove(partial)
            raise TransientError(f"download of {raid_key!r} broke off after {received} bytes",
                                 "download_incomplete") from e
        except BaseException:
            _remove(partial)
            raise
        if limit is not None and limit.expired:
            # Cut at the deadline, the headers or the body may have looked complete.
            _remove(partial)
            raise self._too_slow(raid_key, received)
        on_the_wire = response.raw.tell()
        if declared and declared.isdigit() and on_the_wire != int(declared):
            _remove(partial)
            raise TransientError(f"download of {raid_key!r} truncated: {on_the_wire} of {declared} bytes",
                             "download_incomplete")
        os.replace(partial, dest)
        return received


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _url_of(request: requests.PreparedRequest) -> str:
    """The URL prepare() set (requests types it optional: a PreparedRequest may be unprepared)."""
    if request.url is None:
        raise ValueError("the request has no URL")
    return request.url


def _origin_of(url: str) -> tuple[str, str, int]:
    """scheme, host and port as urllib3 reads them (the parser that connects)."""
    parts = parse_url(url)
    scheme = (parts.scheme or "").lower()
    return scheme, (parts.host or "").lower(), parts.port or (443 if scheme == "https" else 80)


def _raise_for_status(response: requests.Response, raid_key: str) -> None:
    status = response.status_code
    if status == 200:
        return
    what = f"origin answered {status} {response.reason} for key {raid_key!r}"
    reason = f"origin_{status}"
    if status in (401, 403):
        raise PermanentError(f"{what}: RAID_PUBLISHER_SECRET was refused", reason)
    if status in PERMANENT_STATUSES or (400 <= status < 500 and status not in (408, 425, 429)):
        raise PermanentError(what, reason)
    raise TransientError(what, reason)
