"""The page: its reading routes and what every answer carries. Every read is publisher/ops/overview
or the job store's reads (publisher/jobs/store/overview); this module only turns requests into those
calls and their results into templates or JSON.

Without ADMIN_TOKEN the app has no mutating route at all; with it, publisher/web/actions.py adds them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

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
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from publisher.clients.db import Database
from publisher.jobs.store import actions
from publisher.jobs.store import overview as jobs
from publisher.jobs.store.states import WAITING_STATUSES, Status
from publisher.ops import output, overview
from publisher.settings.web import WebSettings
from publisher.web import auth
from publisher.web.actions import action_routes
from publisher.web.guards import LoginThrottle, SecurityHeaders
from publisher.web.list_filter import ListFilter

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
        routes += action_routes(settings, db, render)
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


def _page(value: str) -> int:
    # isascii: str.isdigit accepts digits int() refuses ("²"); the length check comes before int().
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_PAGE)) \
            or not 1 <= int(value) <= MAX_PAGE:
        raise HTTPException(400, f"page must be a whole number from 1 to {MAX_PAGE}, not {value[:20]!r}")
    return int(value)


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(seconds: float | None) -> str:
    return "" if seconds is None else output.age(seconds, spaced=True)
