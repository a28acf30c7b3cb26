"""`publisher-admin host drain|resume HOST`: a worker host finishes the jobs it has begun and
takes no new ones, or takes them again."""

from __future__ import annotations

from publisher.jobs.store import actions
from publisher.ops.admin.jobs import report


def host(cur, args) -> int:
    action = actions.drain_host if args.action == "drain" else actions.resume_host
    return report(action(cur, args.host_id), args)
