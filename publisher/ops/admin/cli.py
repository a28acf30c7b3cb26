"""publisher-admin's command line: the parser, and the dispatch with the exit codes
every command shares (the connection, the database's refusals)."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import closing

import psycopg2
import psycopg2.errors
import psycopg2.extras

from publisher.clients.db import connect
from publisher.jobs.store.states import Lane, Status
from publisher.ops.admin import arguments, catalogue, hosts, jobs, migrations, status
from publisher.ops.admin.exit_codes import DATABASE_UNREACHABLE, EXIT_CODES, USAGE, Refused
from publisher.ops.admin.maintain import maintain

#: The commands that run in one transaction on a dict cursor.
ON_A_CURSOR = {"status": status.status, "list": jobs.list_jobs, "show": jobs.show, "retry": jobs.retry,
               "retry-failed": jobs.retry_failed, "republish": catalogue.republish, "cancel": jobs.cancel,
               "lane": jobs.lane, "host": hosts.host, "schema": migrations.schema_status}


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("publisher-admin: DATABASE_URL is not set", file=sys.stderr)
        return USAGE
    connected = False
    try:
        if args.command == "maintain":
            return maintain(args)
        with closing(connect(url, "media-publisher-admin", connect_timeout=10)) as conn:
            connected = True
            if args.command == "migrate":
                return migrations.migrate(url)  # psql applies the files; the connection proved the server is there
            if args.command == "backfill":
                return catalogue.backfill(conn, args)
            with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                return ON_A_CURSOR[args.command](cur, args)
    except Refused as e:
        print(f"publisher-admin: {e}", file=sys.stderr)
        return USAGE
    except psycopg2.OperationalError as e:
        what = "lost the database" if connected else "cannot connect to the database"
        print(f"publisher-admin: {what}: {str(e).strip()}", file=sys.stderr)
        return DATABASE_UNREACHABLE
    except psycopg2.Error as e:
        print(f"publisher-admin: the database refused: {str(e).strip()}", file=sys.stderr)
        return USAGE


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="publisher-admin", description="See and fix media-publisher jobs.",
                                epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="print JSON (timestamps in ISO 8601) instead of text")
    bulk = argparse.ArgumentParser(add_help=False)
    bulk.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    bulk.add_argument("--yes", "-y", action="store_true",
                      help="do not ask for confirmation (needed when not on a terminal)")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name, help, parents=(out,)):
        return sub.add_parser(name, help=help, description=help, parents=list(parents), epilog=EXIT_CODES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    s = command("status", "queue depth, rates over the last hour, oldest pending fresh lot, worker hosts "
                "(and which drain), last failures")
    s.add_argument("--failures", type=arguments.count, default=10,
                   help="how many recent failures to list (default 10)")
    s = command("list", "jobs, newest first, filtered by status, reason and time")
    s.add_argument("--status", choices=[s.value for s in Status])
    s.add_argument("--reason", help="a literal part of last_error (case-insensitive), or a typed reason")
    s.add_argument("--since", type=arguments.since,
                   help="changed since: an ISO 8601 time, or an age such as 30m, 2h, 7d")
    s.add_argument("--limit", type=arguments.count, default=50, help="at most this many (default 50)")
    s.add_argument("--offset", type=arguments.count, default=0, help="skip the first N (paging)")
    s = command("show", "one job: its file, variants and timeline")
    s.add_argument("job_id", type=arguments.job_id)
    s = command("retry", "run one failed (or completed) job again from its first step")
    s.add_argument("job_id", type=arguments.job_id)
    s = command("retry-failed", "run the failed jobs again (the latest of each file; never cancelled ones)",
                parents=(out, bulk))
    s.add_argument("--reason", help="only jobs of this typed reason (origin_404, ...), or whose last_error "
                   "contains this text, literally (case-insensitive; %% and _ are plain characters)")
    s = command("republish", "publish a file again (a new job)")
    s.add_argument("file_id", type=arguments.file_id)
    s = command("cancel", "cancel a job that is pending or waiting in the queue (retry-failed skips it)")
    s.add_argument("job_id", type=arguments.job_id)
    s = command("lane", "pause a lane (its pending jobs wait, unclaimed; those claimed go on) or resume it")
    s.add_argument("action", choices=("pause", "resume"))
    s.add_argument("lane", choices=[lane.name.lower() for lane in Lane])
    s = command("host", "drain a worker host (it finishes the jobs it has begun and takes no new ones, from its "
                "next beat) or resume it")
    s.add_argument("action", choices=("drain", "resume"))
    s.add_argument("host_id", type=arguments.host_id, help="as `status` lists it (hostname and scratch id)")
    s = command("backfill", "a job for every live file never published, or whose last job failed "
                "(rate-limited; stop and run again to resume)", parents=(out, bulk))
    s.add_argument("--rate", type=arguments.rate, default=20.0, help="jobs queued per second at most (default 20)")
    s.add_argument("--limit", type=arguments.count, help="queue at most this many jobs")
    command("maintain", "run one maintenance round now (old jobs, broker rows, deleted files)", parents=(out, bulk))
    command("schema", "the schema version applied and the files pending (exit 1 when some are)")
    command("migrate", "apply the schema files in order (re-runnable; the release step; needs psql)")
    return p
