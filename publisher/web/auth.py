"""Who may act: one login with ADMIN_TOKEN puts `admin` in the signed session
cookie (HttpOnly, SameSite=Strict), with a CSRF token that every form posts
back. Starlette's SessionMiddleware signs the cookie (itsdangerous).

A signed cookie alone would stay valid until it expires, logout or not: each
login also opens a session in this process's memory (`Sessions`), the cookie
names it, and logout closes it. A copy of the cookie made before logout is
then refused. The page is one process (publisher/web/server.py); a restart
ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request

#: A login lasts a working shift.
SESSION_SECONDS = 8 * 3600
#: Lines kept of the message shown after an action (the session cookie holds it: browsers drop cookies past 4 KB).
FLASH_LINES, FLASH_LINE_CHARS = 5, 200
#: The only form encoding the page's forms use; anything else (multipart) is refused.
FORM_TYPE = "application/x-www-form-urlencoded"


class Sessions:
    """The logins that are open: id -> when it opened (monotonic)."""

    def __init__(self):
        self._open: dict[str, float] = {}
        self._lock = threading.Lock()

    def open(self) -> str:
        sid = secrets.token_urlsafe(18)
        now = time.monotonic()
        with self._lock:
            self._open = {s: t for s, t in self._open.items() if now - t < SESSION_SECONDS}
            self._open[sid] = now
        return sid

    def alive(self, sid) -> bool:
        with self._lock:
            opened = self._open.get(sid) if isinstance(sid, str) else None
        return opened is not None and time.monotonic() - opened < SESSION_SECONDS

    def close(self, sid) -> None:
        with self._lock:
            self._open.pop(sid, None)


def session_secret(admin_token: str) -> str:
    """The cookie's signing key, derived from the token: a new token ends every session."""
    return hmac.new(admin_token.encode(), b"publisher-web session", hashlib.sha256).hexdigest()


def _session(request: Request) -> dict:
    return request.session if "session" in request.scope else {}


def logged_in(request: Request) -> bool:
    session = _session(request)
    return bool(session.get("admin")) and request.app.state.sessions.alive(session.get("sid"))


def csrf_token(request: Request) -> str | None:
    return _session(request).get("csrf") if logged_in(request) else None


def who(request: Request) -> str:
    """Names the actor in log lines: the session's short label and the client's address."""
    sid = _session(request).get("sid")
    label = f"session {sid[:8]}" if isinstance(sid, str) and logged_in(request) else "no session"
    return f"{label} from {client_address(request)}"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def log_in(request: Request, admin_token: str, offered: str) -> bool:
    if not hmac.compare_digest(offered.encode(), admin_token.encode()):
        return False
    request.session.clear()
    request.session.update(admin=True, csrf=secrets.token_urlsafe(32), sid=request.app.state.sessions.open())
    return True


def log_out(request: Request) -> None:
    request.app.state.sessions.close(request.session.get("sid"))
    request.session.clear()


async def form(request: Request):
    """The posted form, url-encoded only: a multipart value may be a file, which no field here is."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("", FORM_TYPE):
        raise HTTPException(415, f"forms are posted as {FORM_TYPE}")
    return await request.form()


async def require(request: Request):
    """The posted form, from a logged-in session with its CSRF token; else 401 or 403."""
    if not logged_in(request):
        raise HTTPException(401, "log in with the admin token first")
    posted = await form(request)
    if not hmac.compare_digest(str(posted.get("csrf", "")).encode(), request.session["csrf"].encode()):
        raise HTTPException(403, "the form's CSRF token does not match this session; reload the page")
    return posted


def flash(request: Request, messages: list[str]) -> None:
    """The message shown once after an action: a few lines, then how many more."""
    lines = [m[:FLASH_LINE_CHARS] for m in messages[:FLASH_LINES]]
    if len(messages) > FLASH_LINES:
        lines.append(f"… and {len(messages) - FLASH_LINES} more ({len(messages)} in all)")
    request.session["flash"] = lines


def pop_flash(request: Request) -> list[str]:
    return _session(request).pop("flash", []) if "session" in request.scope else []
