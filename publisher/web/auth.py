"""Who may act: one login with ADMIN_TOKEN puts `admin` in the signed session
cookie (HttpOnly, SameSite=Strict), with a CSRF token that every form posts
back. Starlette's SessionMiddleware signs the cookie (itsdangerous)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.exceptions import HTTPException
from starlette.requests import Request

#: A login lasts a working shift.
SESSION_SECONDS = 8 * 3600


def session_secret(admin_token: str) -> str:
    """The cookie's signing key, derived from the token: a new token ends every session."""
    return hmac.new(admin_token.encode(), b"publisher-web session", hashlib.sha256).hexdigest()


def _session(request: Request) -> dict:
    return request.session if "session" in request.scope else {}


def logged_in(request: Request) -> bool:
    return bool(_session(request).get("admin"))


def csrf_token(request: Request) -> str | None:
    return _session(request).get("csrf") if logged_in(request) else None


def log_in(request: Request, admin_token: str, offered: str) -> bool:
    if not hmac.compare_digest(offered.encode(), admin_token.encode()):
        return False
    request.session.clear()
    request.session.update(admin=True, csrf=secrets.token_urlsafe(32))
    return True


def log_out(request: Request) -> None:
    request.session.clear()


async def require(request: Request):
    """The posted form, from a logged-in session with its CSRF token; else 401 or 403."""
    if not logged_in(request):
        raise HTTPException(401, "log in with the admin token first")
    form = await request.form()
    if not hmac.compare_digest(str(form.get("csrf", "")).encode(), request.session["csrf"].encode()):
        raise HTTPException(403, "the form's CSRF token does not match this session; reload the page")
    return form


def flash(request: Request, messages: list[str]) -> None:
    request.session["flash"] = messages


def pop_flash(request: Request) -> list[str]:
    return _session(request).pop("flash", []) if "session" in request.scope else []
