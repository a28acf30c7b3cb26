"""The page's routes. Every read is publisher/ops/overview or the job store's
reads (publisher/jobs/store/overview), every action the store's actions; this module
only turns requests into those calls and their results into templates or JSON.

Without ADMIN_TOKEN the app has no mutating route at all. With it, an action
needs the session of a login with the token and the session's CSRF token.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import psycopg2
import psycopg2.errors
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse as StarletteJSON
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from publisher.clients.db import Database
from publisher.jobs.host_identity import HOST_ID
from publisher.jobs.store import actions
from publisher.jobs.store import overview as jobs
from publisher.jobs.store.filters import JobFilter
from publisher.jobs.store.states import WAITING_STATUSES, Lane, Status
from publisher.ops import output, overview
from publisher.settings.web import WebSettings
from publisher.web import auth
from publisher.web.guards import LoginThrottle, SecurityHeaders

logger = logging.getLogger("publisher.web")

HERE = Path(__file__).resolve().parent
PAGE_SIZE = 50
#: Pages past this are refused: the offset would only make PostgreSQL count rows for nothing.
MAX_PAGE = 100_000
#: Failed logins allowed per client address in LOGIN_WINDOW seconds.
LOGIN_FAILURES, LOGIN_WINDOW = 5, 60.0

#: Pages and JSON show live state: never from a cache. (The security headers are SecurityHeaders'.)
NO_STORE = {"Cache-Control": "no-store"}
#: Seconds between two refreshes of the overview in the browser: on-call sees a job move within
#: a few seconds, and an open page costs the database one small query per refresh.
REFRESH_SECONDS = 5.0
#: The session cookie is not marked Secure: the page is reached over loopback or the VPN, often
#: without TLS, where a Secure cookie would never come back. A proxy that adds HTTPS may add it.
SESSION_COOKIE_HTTPS_ONLY = False


class JSONResponse(StarletteJSON):
    """JSON with ISO 8601 timestamps, as publisher-admin --json writes it."""

    def render(self, content) -> bytes:
        return output.to_json(content).encode()


def create_app(settings: WebSettings, database: Database | None = None) -> Starlette:
    db = database or Database(settings.database_url, "media-publisher-web", maxconn=4)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["when"] = _when
    templates.env.filters["ago"] = _ago
    templates.env.globals.update(settings=settings, statuses=[s.value for s in Status],
                                 cancellable=[s.value for s in WAITING_STATUSES], refresh_seconds=REFRESH_SECONDS)

    def render(request: Request, name: str, context: dict, status_code: int = 200) -> Response:
        context = {**context, "admin": auth.logged_in(request), "csrf": auth.csrf_token(request),
                   "flash": auth.pop_flash(request)}
        response = templates.TemplateResponse(request, name, context, status_code=status_code)
        response.headers.update(NO_STORE)
        return response

    def _read(fn, *args, **kwargs):
        with db.transaction() as cur:
            return fn(cur, *args, **kwargs)

    async def read(fn, *args, **kwargs):
        # psycopg2 blocks: off the event loop, so a slow query stalls no other request.
        return await run_in_threadpool(_read, fn, *args, **kwargs)

    async def index(request: Request) -> Response:
        return render(request, "overview.html", {"o": await read(overview.overview)})

    async def overview_fragment(request: Request) -> Response:
        return render(request, "_overview.html", {"o": await read(overview.overview)})

    async def summary(request: Request) -> Response:
        return JSONResponse(await read(overview.overview), headers=NO_STORE)

    async def charts(request: Request) -> Response:
        return render(request, "charts.html", {"c": overview.charts(await read(jobs.last_day_per_minute))})

    async def charts_json(request: Request) -> Response:
        return JSONResponse(await read(jobs.last_day_per_minute), headers=NO_STORE)

    async def job_list(request: Request) -> Response:
        shown = ListFilter.of(request.query_params)
        page = _page(request.query_params.get("page", "1"))
        rows = await read(jobs.list_jobs, shown.jobs(), limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
        return render(request, "jobs.html", {"rows": rows[:PAGE_SIZE], "page": page, "more": len(rows) > PAGE_SIZE,
                                              "shown": shown, "bulk_actions": list(actions.Bulk)})

    async def job_page(request: Request) -> Response:
        job = await read(jobs.show_job, request.path_params["job_id"])
        if job is None:
            raise HTTPException(404, f"no job {request.path_params['job_id']}")
        return render(request, "job.html", {"job": job})

    async def healthz(request: Request) -> Response:
        # The process serves; the database is /api/summary's concern (503 when unreachable).
        return PlainTextResponse("ok\n")

    routes = [
        Route("/healthz", healthz),
        Route("/", index),
        Route("/overview", overview_fragment),
        Route("/api/summary", summary),
        Route("/charts", charts),
        Route("/api/charts", charts_json),
        Route("/jobs", job_list),
        Route("/jobs/{job_id:int}", job_page),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    # Outermost first: every answer, a refused Host's included, gets the security headers.
    middleware = [Middleware(SecurityHeaders),
                  # A name of the attacker's that resolves to us (DNS rebinding) is not one of ours.
                  Middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts))]
    if settings.actions_enabled:
        routes += _action_routes(settings, db, render)
        middleware.append(Middleware(SessionMiddleware, secret_key=auth.session_secret(settings.admin_token),
                                     session_cookie="publisher_web", same_site="strict",
                                     https_only=SESSION_COOKIE_HTTPS_ONLY, max_age=auth.SESSION_SECONDS))

    async def refused(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # Starlette's handlers take any exception; this one gets only these
            raise exc
        return render(request, "error.html", {"status": exc.status_code, "detail": exc.detail},
                      status_code=exc.status_code)

    async def database_down(request: Request, exc: Exception) -> Response:
        return render(request, "error.html", {"status": 503, "detail": "the database is unreachable"},
                      status_code=503)

    async def broken(request: Request, exc: Exception) -> Response:
        # Starlette's own 500 page is sent outside the middleware: this one carries the headers.
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        response = PlainTextResponse("internal error; see the page's log\n", status_code=500, headers=NO_STORE)
        response.headers.update(SecurityHeaders.HEADERS)
        return response

    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={HTTPException: refused, psycopg2.OperationalError: database_down,
                                        500: broken})
    app.state.database = db
    app.state.sessions = auth.Sessions()
    app.state.login_throttle = LoginThrottle(LOGIN_FAILURES, LOGIN_WINDOW)
    return app


def _action_routes(settings: WebSettings, db: Database, render) -> list[Route]:
    async def login_form(request: Request) -> Response:
        return render(request, "login.html", {"next": _local(request.query_params.get("next"))})

    async def login(request: Request) -> Response:
        throttle, client = request.app.state.login_throttle, auth.client_address(request)
        wait = throttle.retry_after(client)
        if wait:
            logger.warning("login refused from %s: %s failed logins within %g s", client, throttle.failures,
                           throttle.window)
            raise HTTPException(429, f"too many failed logins from this address; try again in {wait:.0f} s",
                                headers={"Retry-After": str(int(wait))})
        form = await auth.form(request)
        target = _local(form.get("next"))
        if not auth.log_in(request, settings.admin_token, form.get("token", "")):
            failures = throttle.failed(client)
            logger.warning("login failed from %s (%d within %g s)", client, failures, throttle.window)
            return render(request, "login.html", {"next": target, "wrong": True}, status_code=401)
        logger.info("%s logged in", auth.who(request))
        return RedirectResponse(target, status_code=303)

    async def logout(request: Request) -> Response:
        await auth.require(request)
        logger.info("%s logged out", auth.who(request))
        auth.log_out(request)
        return RedirectResponse("/", status_code=303)

    async def run(request: Request, what: str, action, *args):
        try:
            return await run_in_threadpool(_act, db, action, *args)
        except psycopg2.errors.InsufficientPrivilege:
            logger.warning("%s by %s refused: the database role may not change jobs", what, auth.who(request))
            raise HTTPException(403, "this page's database role may not change jobs (publisher_oncall may)") from None

    async def act(request: Request, action, arg, back: str) -> Response:
        await auth.require(request)
        # The reason is typed by a person: quoted (no line breaks in the log) and bounded.
        what = f"{action.__name__.replace('_', ' ')} {str(arg)[:100]!r}"
        rows = await run(request, what, action, arg)
        # A single action's row says whether it changed; a bulk retry returns only the jobs it changed.
        changed = sum(1 for r in rows if r.get("changed", True))
        logger.info("%s by %s: %d job(s) changed", what, auth.who(request), changed)
        if len(rows) == 1 and "job_id" in rows[0] and rows[0].get("file_id") is None and not rows[0].get("changed"):
            raise HTTPException(404, rows[0]["message"])  # no such job
        auth.flash(request, [r.get("message") or _retried(r) for r in rows] or ["nothing matched; nothing changed"])
        return RedirectResponse(back, status_code=303)

    async def retry(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        return await act(request, actions.retry_job, job_id, f"/jobs/{job_id}")

    async def cancel(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        return await act(request, actions.cancel_job, job_id, f"/jobs/{job_id}")

    def lane_action(action):
        async def endpoint(request: Request) -> Response:
            name = request.path_params["lane"]
            if name.upper() not in Lane.__members__:
                raise HTTPException(404, f"no lane {name!r}; one of {', '.join(m.lower() for m in Lane.__members__)}")
            return await act(request, action, Lane[name.upper()].value, "/")
        return endpoint

    def host_action(action):
        async def endpoint(request: Request) -> Response:
            host = request.path_params["host"]
            if not HOST_ID.fullmatch(host):
                raise HTTPException(404, "not a host id")  # not quoted back: it is anyone's text
            return await act(request, action, host, "/")
        return endpoint

    async def retry_failures(request: Request) -> Response:
        form = await auth.require(request)
        reason = (form.get("reason") or "").strip()
        if not reason:
            raise HTTPException(400, "retrying the failures needs a reason (a typed reason or a part of the error)")
        return await act(request, actions.retry_failures, reason, "/")

    def bulk_action(request: Request) -> actions.Bulk:
        name = request.path_params["action"]
        try:
            return actions.Bulk(name)
        except ValueError:
            raise HTTPException(404, f"no bulk action {name[:40]!r}; one of {', '.join(actions.Bulk)}") from None

    async def bulk_preview(request: Request) -> Response:
        action, shown = bulk_action(request), ListFilter.of(request.query_params)
        if not auth.logged_in(request):
            return RedirectResponse(f"/login?{urlencode({'next': str(request.url.path) + '?' + shown.query()})}",
                                    status_code=303)
        preview = await run(request, f"preview of bulk {action}", actions.bulk_preview, action, shown.jobs())
        return render(request, "bulk.html", {"action": action, "shown": shown, "preview": preview})

    async def bulk(request: Request) -> Response:
        action = bulk_action(request)
        form = await auth.require(request)
        shown, up_to, previewed = ListFilter.of(form), _job_id(form.get("up_to")), _count(form.get("previewed"))
        what = f"bulk {action} of {shown.query()!r} up to job {up_to}"
        changed, refused = await run(request, what, actions.bulk_act, action, shown.jobs(), up_to)
        logger.info("%s by %s: %d job(s) changed, %d refused, %d previewed", what, auth.who(request), changed,
                    refused, previewed)
        done = {actions.Bulk.RETRY: "run again", actions.Bulk.CANCEL: "cancelled"}[action]
        lines = [f"{changed} job(s) {done} of the {previewed} the preview counted"]
        if refused:
            lines.append(f"{refused} changed meanwhile (began a step, or its file has another active job): "
                         f"left as they are")
        auth.flash(request, lines)
        return RedirectResponse(f"/jobs?{shown.query()}", status_code=303)

    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/jobs/bulk/{action}", bulk_preview, methods=["GET"]),
        Route("/jobs/bulk/{action}", bulk, methods=["POST"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/jobs/{job_id:int}/retry", retry, methods=["POST"]),
        Route("/jobs/{job_id:int}/cancel", cancel, methods=["POST"]),
        Route("/failures/retry", retry_failures, methods=["POST"]),
        Route("/lanes/{lane}/pause", lane_action(actions.pause_lane), methods=["POST"]),
        Route("/lanes/{lane}/resume", lane_action(actions.resume_lane), methods=["POST"]),
        Route("/hosts/{host}/drain", host_action(actions.drain_host), methods=["POST"]),
        Route("/hosts/{host}/resume", host_action(actions.resume_host), methods=["POST"]),
    ]


def _act(db: Database, action, *args):
    with db.transaction() as cur:
        return action(cur, *args)


@dataclasses.dataclass(frozen=True)
class ListFilter:
    """The job list's filter as the page takes it: a status, a reason, and a search of a file id or
    the start of a RAID key; the same in a query string and in a bulk action's form."""
    status: str | None = None
    reason: str | None = None
    q: str | None = None

    @classmethod
    def of(cls, params) -> ListFilter:
        status = params.get("status") or None
        if status is not None and status not in [s.value for s in Status]:
            raise HTTPException(400, f"unknown status {status[:40]!r}; one of {', '.join(s.value for s in Status)}")
        return cls(status, params.get("reason") or None, (params.get("q") or "").strip() or None)

    def jobs(self) -> JobFilter:
        return JobFilter(status=self.status, reason=self.reason, **_file_search(self.q))

    def query(self) -> str:
        return urlencode({"status": self.status or "", "reason": self.reason or "", "q": self.q or ""})


def _retried(row: dict) -> str:
    return f"job {row['job_id']} (file {row['file_id']}): failed -> pending"


def _page(value: str) -> int:
    # isascii: str.isdigit accepts digits int() refuses ("²"); the length check comes before int().
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_PAGE)) \
            or not 1 <= int(value) <= MAX_PAGE:
        raise HTTPException(400, f"page must be a whole number from 1 to {MAX_PAGE}, not {value[:20]!r}")
    return int(value)


def _job_id(value) -> int:
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19):
        raise HTTPException(400, "the form names no job to act up to; open the preview again")
    return int(value)


def _count(value) -> int:
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9 else 0


def _local(target: str | None) -> str:
    """Only a path on this site is a place to go back to after a login."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _file_search(text: str | None) -> dict:
    """The job list's search: a file id, or else the start of a RAID key."""
    if text is None:
        return {}
    try:
        return {"file_id": str(uuid.UUID(text))}
    except ValueError:
        return {"key_prefix": text}


def _ago(seconds: float | None) -> str:
    return "" if seconds is None else output.age(seconds, spaced=True)
