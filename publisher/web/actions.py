"""The page's actions (only with ADMIN_TOKEN): the login, and every route that changes jobs, lanes
or hosts, each through the store's actions (publisher/jobs/store/actions). An action needs the
session of a login with the token and the session's CSRF token; a role that may not act is a 403.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlencode

import psycopg2.errors
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from publisher.clients.db import Database
from publisher.jobs.host_identity import HOST_ID
from publisher.jobs.store import actions
from publisher.jobs.store.states import Lane
from publisher.settings.web import WebSettings
from publisher.web import auth
from publisher.web.list_filter import ListFilter

logger = logging.getLogger("publisher.web")


def action_routes(settings: WebSettings, db: Database, render) -> list[Route]:
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
        shown, as_of, previewed = ListFilter.of(form), _instant(form.get("as_of")), _count(form.get("previewed"))
        what = f"bulk {action} of {shown.query()!r} as of {as_of.isoformat()}"
        changed, refused = await run(request, what, actions.bulk_act, action, shown.jobs(), as_of)
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


def _retried(row: dict) -> str:
    return f"job {row['job_id']} (file {row['file_id']}): failed -> pending"


def _instant(value) -> datetime:
    """When a preview counted: an ISO 8601 time with its offset, as the preview's form carries it."""
    try:
        instant = datetime.fromisoformat(value) if isinstance(value, str) and len(value) <= 40 else None
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise HTTPException(400, "the form says not when its preview counted; open the preview again")
    return instant


def _count(value) -> int:
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9 else 0


def _local(target: str | None) -> str:
    """Only a path on this site is a place to go back to after a login."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
