"""RAID, the private HTTP origin that holds the originals.

Downloads are streamed to disk and cut off past the byte limit. The Bearer
token goes to RAID's own host only: a redirect elsewhere is refused, never
followed.
"""

from __future__ import annotations

import os
import threading
from urllib.parse import urljoin, urlsplit

import requests

from .errors import PermanentError, TransientError

#: Statuses that no retry can fix.
PERMANENT_STATUSES = {400, 401, 403, 404, 405, 410, 414, 415, 451}
#: How many same-host redirects are followed.
MAX_REDIRECTS = 3
CHUNK_BYTES = 1024 * 1024


class OriginClient:
    def __init__(self, endpoint: str, secret: str, *, connect_timeout: float, read_timeout: float, max_bytes: int):
        self.endpoint = endpoint
        self.max_bytes = max_bytes
        self.timeout = (connect_timeout, read_timeout)
        self._origin = _origin_of(endpoint)
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {secret}"
        # Proxies and .netrc from the environment must not see or replace the token.
        self._session.trust_env = False

    def download(self, raid_key: str, dest: str) -> int:
        """Streams the original of raid_key to dest; returns its size in bytes."""
        url, params = self.endpoint, {"key": raid_key}
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self._session.get(
                    url, params=params, stream=True, timeout=self.timeout, allow_redirects=False
                )
            except requests.Timeout as e:
                raise TransientError(f"origin timed out for key {raid_key!r}") from e
            except requests.ConnectionError as e:
                raise TransientError(f"origin unreachable for key {raid_key!r}: {type(e).__name__}") from e
            with response:
                if response.is_redirect:
                    target = urljoin(response.url, response.headers.get("Location", ""))
                    if _origin_of(target) != self._origin:
                        raise PermanentError(
                            f"origin redirected key {raid_key!r} to another host ({urlsplit(target).hostname}); "
                            "not followed, the token stays with RAID"
                        )
                    url, params = target, None
                    continue
                _raise_for_status(response, raid_key)
                return self._save(response, raid_key, dest)
        raise PermanentError(f"origin redirected key {raid_key!r} more than {MAX_REDIRECTS} times")

    def _save(self, response: requests.Response, raid_key: str, dest: str) -> int:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise PermanentError(
                f"source {raid_key!r} is {int(declared)} bytes, over MAX_SOURCE_BYTES={self.max_bytes}"
            )
        received = 0
        # Written under a name of its own, then renamed: another attempt at the
        # same job on this host (a rescued worker waking up) never sees half a file.
        partial = f"{dest}.{os.getpid()}-{threading.get_ident()}.part"
        try:
            with open(partial, "wb") as out:
                for chunk in response.iter_content(CHUNK_BYTES):
                    received += len(chunk)
                    if received > self.max_bytes:
                        raise PermanentError(
                            f"source {raid_key!r} is over MAX_SOURCE_BYTES={self.max_bytes}; download cut off"
                        )
                    out.write(chunk)
        except requests.RequestException as e:
            _remove(partial)
            raise TransientError(f"download of {raid_key!r} broke off after {received} bytes") from e
        except BaseException:
            _remove(partial)
            raise
        if declared and declared.isdigit() and received != int(declared):
            _remove(partial)
            raise TransientError(f"download of {raid_key!r} truncated: {received} of {declared} bytes")
        os.replace(partial, dest)
        return received


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _origin_of(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def _raise_for_status(response: requests.Response, raid_key: str) -> None:
    status = response.status_code
    if status == 200:
        return
    what = f"origin answered {status} {response.reason} for key {raid_key!r}"
    if status in (401, 403):
        raise PermanentError(f"{what}: RAID_PUBLISHER_SECRET was refused")
    if status in PERMANENT_STATUSES or (400 <= status < 500 and status not in (408, 425, 429)):
        raise PermanentError(what)
    raise TransientError(what)
