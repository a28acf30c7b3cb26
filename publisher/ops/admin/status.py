"""`publisher-admin status`: the queue and the worker hosts at a glance."""

from __future__ import annotations

from publisher.jobs.store import overview as job_reads
from publisher.jobs.store.states import Status
from publisher.ops.admin.exit_codes import DONE
from publisher.ops.output import age, print_json


def status(cur, args) -> int:
    snap = {**job_reads.status_snapshot(cur, failures=args.failures), "hosts": job_reads.hosts(cur)}
    if args.json:
        print_json(snap)
        return DONE
    print(format_status(snap))
    return DONE


def format_status(snap: dict) -> str:
    jobs, hour = snap["jobs"], snap["last_hour"]
    lines = ["jobs by status:"]
    for s in (status.value for status in Status):
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
    lines.append("oldest pending fresh lot: " + (
        f"{oldest['id']} (file {oldest['file_id']}), waiting {age(oldest['age_seconds'])}" if oldest else "none"))
    lines.extend(format_hosts(snap.get("hosts", [])))
    if snap["last_failures"]:
        lines.append("last failures:")
        for f in snap["last_failures"]:
            lines.append(f"  job {f['id']} file {f['file_id']} at {f['updated_at']:%Y-%m-%d %H:%M:%S%z} "
                         f"(retries {f['retry_count']}/{f['max_retries']}): {f['last_error']}")
    else:
        lines.append("last failures: none")
    return "\n".join(lines)


def format_hosts(hosts: list[dict]) -> list[str]:
    """Each worker host, and whether it drains: an operator drains it by the id shown here, and
    it is done once it has no job left to finish."""
    if not hosts:
        return ["worker hosts: none has beaten"]
    lines = ["worker hosts:"]
    for h in hosts:
        beat = f"last beat {age(h['seen_seconds_ago'])} ago" if h["seen_seconds_ago"] is not None else "no beat"
        line = (f"  {h['host_id']}: {h['processes']} process(es), {h['threads']} thread(s), {h['running']} running, "
                f"{beat}{' (silent)' if h['silent'] else ''}")
        if h["draining"]:
            line += (f"; draining since {h['draining_since']:%Y-%m-%d %H:%M:%S%z} by {h['drained_by']}, "
                     f"{h['to_finish']} job(s) to finish")
        lines.append(line)
    return lines
