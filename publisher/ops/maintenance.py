"""Maintenance: what keeps the tables and the bucket from growing without bound.

- completed jobs older than COMPLETED_JOB_RETENTION_DAYS are deleted;
- Dramatiq's broker rows done or rejected longer ago than BROKER_RETENTION_HOURS are deleted;
- files soft-deleted (auction_files.deleted_at) longer ago than
  DELETED_FILE_RETENTION_DAYS are purged: their objects leave the bucket first
  (the keys its variants name or that were tracked for it, each only if it lies in
  the file's own folder, and everything under <OBJECT_PREFIX><file id>/), then
  their job rows and the file row. A file with an active job is never touched;
- publish_job_events older than JOB_EVENT_RETENTION_DAYS, and webhook events
  delivered (or given up) longer ago than EVENT_RETENTION_DAYS, are deleted;
- objects no file publishes (superseded by a republish, or PUT by a job that
  failed, was cancelled or found its file deleted) leave the bucket
  SUPERSEDED_OBJECT_GRACE_DAYS after (CDN caches and open pages may still ask for
  a superseded one meanwhile);
- worker hosts silent longer than WORKER_HOST_EXPIRY_SECONDS are forgotten: their
  heartbeat rows, and the messages left in their queues (PostgreSQL broker; on
  RabbitMQ such a queue expires by itself). Their jobs were handed out again long before.

The first two are plain SQL (sql/006_operations.sql) and run under pg_cron
where it is installed (sql/007_pg_cron.sql); the listener runs them otherwise.
The file purge needs the bucket, so the listener always runs it.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from publisher.jobs import queries
from publisher.logs import short_error

logger = logging.getLogger("publisher.maintenance")

#: Rows deleted per statement; a round repeats until less than this is left.
BATCH = 5000
#: Files purged per round at most (each costs a few bucket requests).
FILES_PER_ROUND = 500

_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"
_FILE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def in_folder_of(key: str, file_id: str) -> bool:
    """Whether key is an object of file_id: a plain name right in the file's folder, after a
    prefix of plain segments none of which names a file. The rule of publisher_key_in_folder
    (sql/011_retention.sql), checked again here because the keys come from the database."""
    match = re.fullmatch(rf"((?:{_SEGMENT}/)*){re.escape(str(file_id))}/{_SEGMENT}", key)
    return bool(match) and len(key) <= 1024 and not _FILE_ID.search(match.group(1))


class Maintenance:
    def __init__(self, db, storage, settings, ops, redact=str):
        self.db, self.storage, self.settings, self.ops, self.redact = db, storage, settings, ops, redact

    def run(self) -> dict[str, int]:
        """One round; returns what was removed. Each part is independent: one failing does not stop the others."""
        removed = {}
        try:
            with self.db.transaction() as cur:
                by_pg_cron = queries.pg_cron_schedules_maintenance(cur)
        except Exception as e:
            logger.warning("could not ask whether pg_cron runs maintenance: %s", short_error(e, self.redact))
            by_pg_cron = False
        parts = [("files", self.purge_deleted_files), ("unpublished_objects", self.purge_unpublished_objects),
                 ("job_events", self.purge_job_events), ("webhook_events", self.purge_webhook_events),
                 ("lost_hosts", self.forget_lost_hosts)]
        if not by_pg_cron:
            parts[:0] = [("completed_jobs", self.purge_completed_jobs),
                         ("broker_messages", self.purge_broker_messages)]
        errors = []
        for name, part in parts:
            try:
                removed[name] = part()
            except Exception as e:  # the next round tries again
                errors.append(name)
                logger.error("maintenance: %s failed: %s", name, short_error(e, self.redact))
        if any(removed.values()):
            logger.info("maintenance removed %s", ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in removed.items()))
        if errors:
            raise MaintenanceError(f"maintenance parts failed: {', '.join(errors)}")
        return removed

    def purge_completed_jobs(self) -> int:
        older = timedelta(days=self.ops.completed_job_retention_days)
        return self._repeat(queries.PURGE_COMPLETED_JOBS, older)

    def purge_broker_messages(self) -> int:
        older = timedelta(hours=self.ops.broker_retention_hours)
        return self._repeat(queries.PURGE_BROKER_MESSAGES, older)

    def purge_job_events(self) -> int:
        return self._repeat(queries.PURGE_JOB_EVENTS, timedelta(days=self.ops.job_event_retention_days))

    def purge_webhook_events(self) -> int:
        return self._repeat(queries.PURGE_EVENT_OUTBOX, timedelta(days=self.ops.event_retention_days))

    def purge_unpublished_objects(self) -> int:
        """Each batch's rows are deleted and its objects removed in one transaction:
        an upload recording one of those keys again waits until the objects are
        gone, then PUTs; a failure to remove rolls the rows back for the next round."""
        grace = timedelta(days=self.ops.superseded_object_grace_days)
        total = 0
        while True:
            with self.db.transaction() as cur:
                cur.execute(queries.TAKE_UNPUBLISHED_OBJECTS, (grace, BATCH))
                keys = [r["key"] for r in cur.fetchall()]
                if keys:
                    self.storage.remove_keys(keys)
            total += len(keys)
            if len(keys) < BATCH:
                return total

    def _repeat(self, statement, older) -> int:
        total = 0
        while True:
            with self.db.transaction() as cur:  # one short transaction per batch
                cur.execute(statement, (older, BATCH))
                n = cur.fetchone()["n"]
            total += n
            if n < BATCH:
                return total

    def forget_lost_hosts(self) -> int:
        with self.db.transaction() as cur:
            cur.execute(queries.FORGET_LOST_HOSTS, (timedelta(seconds=self.settings.worker_host_expiry_seconds),))
            return cur.fetchone()["n"]

    def purge_deleted_files(self) -> int:
        older = timedelta(days=self.ops.deleted_file_retention_days)
        with self.db.transaction() as cur:
            cur.execute(queries.FILES_TO_PURGE, (older, FILES_PER_ROUND))
            candidates = [r["file_id"] for r in cur.fetchall()]
        purged = 0
        for file_id in candidates:
            # One transaction per file: the row lock holds back new jobs for the
            # file while its objects are removed; if removing fails, nothing is
            # deleted from the database and the next round tries again.
            with self.db.transaction() as cur:
                cur.execute(queries.LOCK_FILE_FOR_PURGE, (file_id, older))
                row = cur.fetchone()
                if row is None:
                    continue  # restored, or a job became active meanwhile
                self._remove_objects(row)
                cur.execute(queries.DELETE_FILE, (file_id, older))
                purged += cur.fetchone()["n"]
            logger.info("purged deleted file %s (%d jobs)", file_id, len(row["job_ids"]))
        return purged

    def _remove_objects(self, row) -> None:
        # The keys the file's variants name or were tracked for it, each in the file's own
        # folder (under an earlier OBJECT_PREFIX, too), never another file's object; then
        # whatever else is under the current prefix's folder.
        self.storage.remove_keys(key for key in row["keys"] or () if in_folder_of(key, row["file_id"]))
        self.storage.remove_prefix(f"{self.settings.object_prefix}{row['file_id']}/")


class MaintenanceError(Exception):
    """Some part of a maintenance round failed; the others ran."""
