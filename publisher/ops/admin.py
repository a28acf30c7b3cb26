"""`publisher-admin` (or `python -m publisher.ops.admin`): see and fix the job queue.

    publisher-admin status [--failures N] [--json]
    publisher-admin retry JOB_ID
    publisher-admin retry-failed [--reason TEXT]
    publisher-admin republish FILE_ID
    publisher-admin cancel JOB_ID
    publisher-admin maintain            (one maintenance round now; needs the bucket settings)
    publisher-admin schema              (the schema version applied, and the files pending)
    publisher-admin migrate             (applies the schema files; the release step; needs psql)

Needs only DATABASE_URL (except `maintain`). Every action prints what it
changed, and exits 1 when it changed nothing. The actions are SQL functions
(sql/006_operations.sql)
that take the same row locks as the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid

import psycopg2
import psycopg2.extras

from publisher.jobs import queries

from publisher.ops import schema
from publisher.clients.db import connect


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("publisher-admin: DATABASE_URL is not set", file=sys.stderr)
        return 2
    if args.command == "maintain":
        return _maintain()
    if args.command == "migrate":
        return _migrate(url)
    try:
        conn = connect(url, "media-publisher-admin", connect_timeout=10)
    except psycopg2.OperationalError as e:
        print(f"publisher-admin: cannot connect to the database: {str(e).strip()}", file=sys.stderr)
        return 3
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            return COMMANDS[args.command](cur, args)
    finally:
        conn.close()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="publisher-admin", description="See and fix media-publisher jobs.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("status", help="queue depth, rates over the last hour, oldest pending job, last failures")
    s.add_argument("--failures", type=int, default=10, help="how many recent failures to list (default 10)")
    s.add_argument("--json", action="store_true", help="print JSON instead of text")
    s = sub.add_parser("retry", help="run one failed (or completed) job again from its first step")
    s.add_argument("job_id", type=int)
    s = sub.add_parser("retry-failed", help="run all failed jobs again (the latest of each file; never cancelled ones)")
    s.add_argument("--reason", help="only jobs whose last_error contains this text, literally (case-insensitive; "
                   "%% and _ are plain characters)")
    s = sub.add_parser("republish", help="publish a file again (a new job)")
    s.add_argument("file_id", type=_uuid)
    s = sub.add_parser("cancel", help="cancel a job that is pending or waiting in the queue (retry-failed skips it)")
    s.add_argument("job_id", type=int)
    sub.add_parser("maintain", help="run one maintenance round now (old jobs, broker rows, deleted files)")
    sub.add_parser("schema", help="the schema version applied and the files pending (exit 1 when some are)")
    sub.add_parser("migrate", help="apply the schema files in order (re-runnable; the release step; needs psql)")
    return p


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a file id (uuid): {value!r}") from None


# -- status ---------------------------------------------------------------
def status(cur, args) -> int:
    snap = queries.status_snapshot(cur, failures=args.failures)
    if args.json:
        print(json.dumps(snap, default=str, indent=2))
        return 0
    print(format_status(snap))
    return 0


def format_status(snap: dict) -> str:
    jobs, hour = snap["jobs"], snap["last_hour"]
    lines = ["jobs by status:"]
    for s in queries.JOB_STATUSES:
        lines.append(f"  {s:<11} {jobs.get(s, 0)}")
    broker = ", ".join(f"{k} {v}" for k, v in sorted(snap["broker"].items())) or "empty"
    lines.append(f"broker queue (dramatiq.queue): {broker}")
    done, failed = hour["completed"], hour["failed"]
    finished = done + failed
    error_rate = f"{100 * failed / finished:.1f}%" if finished else "n/a"
    lines.append(f"last hour: {done} completed ({done / 60:.2f}/min), {failed} failed; error rate {error_rate}")
    avg = hour["avg_processing_seconds"]
    total = hour["avg_total_seconds"]
    lines.append("average processing time (last hour): "
                 + (f"{avg:.2f}s from first step to published, {total:.2f}s from request" if avg is not None
                    else "n/a (nothing completed)"))
    oldest = snap["oldest_pending"]
    lines.append("oldest pending job: " + (
        f"{oldest['id']} (file {oldest['file_id']}), waiting {_age(oldest['age_seconds'])}" if oldest else "none"))
    if snap["last_failures"]:
        lines.append("last failures:")
        for f in snap["last_failures"]:
            lines.append(f"  job {f['id']} file {f['file_id']} at {f['updated_at']:%Y-%m-%d %H:%M:%S%z} "
                         f"(retries {f['retry_count']}/{f['max_retries']}): {f['last_error']}")
    else:
        lines.append("last failures: none")
    return "\n".join(lines)


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# -- actions --------------------------------------------------------------
def _report(rows) -> int:
    changed = False
    for row in rows:
        print(("changed: " if row["changed"] else "unchanged: ") + row["message"])
        changed = changed or row["changed"]
    return 0 if changed else 1


def retry(cur, args) -> int:
    return _report(queries.admin_action(cur, queries.ADMIN_RETRY, args.job_id))


def retry_failed(cur, args) -> int:
    rows = queries.admin_action(cur, queries.ADMIN_RETRY_FAILED, args.reason)
    for row in rows:
        print(f"changed: job {row['job_id']} (file {row['file_id']}): failed -> pending (was: {row['last_error']})")
    which = f" matching {args.reason!r}" if args.reason else ""
    print(f"{len(rows)} failed job(s){which} set to pending")
    return 0 if rows else 1


def republish(cur, args) -> int:
    return _report(queries.admin_action(cur, queries.ADMIN_REPUBLISH, args.file_id))


def cancel(cur, args) -> int:
    return _report(queries.admin_action(cur, queries.ADMIN_CANCEL, args.job_id))


def _maintain() -> int:
    from publisher.ops.maintenance import Maintenance, MaintenanceError
    from publisher.settings.ops import ops_settings_or_exit
    from publisher.app.runtime import Runtime, settings_or_exit

    rt = Runtime(settings_or_exit(), "media-publisher-admin")
    try:
        removed = Maintenance(rt.db, rt.storage, rt.settings, ops_settings_or_exit(), rt.redact).run()
    except MaintenanceError as e:
        print(f"publisher-admin: {e}", file=sys.stderr)
        return 1
    for what, n in removed.items():
        print(f"removed: {n} {what.replace('_', ' ')}")
    return 0


# -- schema ---------------------------------------------------------------
def schema_status(cur, args) -> int:
    files = schema.schema_files()
    recorded = schema.applied(cur)
    todo = schema.pending(files, recorded)
    version = max(recorded, default=None)
    print(f"schema version: {version:03d}" if version is not None else "schema version: none (never migrated)")
    for f, why in todo:
        print(f"pending: {f.name} ({why})")
    if not todo:
        print(f"up to date: {len(files)} files applied")
    return 1 if todo else 0


def _migrate(url: str) -> int:
    try:
        schema.apply(url, echo=print)
    except schema.SchemaError as e:
        print(f"publisher-admin: {e}", file=sys.stderr)
        return 1
    print("schema up to date")
    return 0


COMMANDS = {"status": status, "retry": retry, "retry-failed": retry_failed, "republish": republish,
            "cancel": cancel, "schema": schema_status}

if __name__ == "__main__":
    sys.exit(main())
