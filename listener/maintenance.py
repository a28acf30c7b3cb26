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
The file purge needs the bucket, so the listener always runs it. A listener
service (every MAINTENANCE_INTERVAL, in a thread of its own: purging thousands of
rows or objects must not hold up the NOTIFY loop); `publisher-admin maintain`
runs the same round once.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import timedelta

from publisher.jobs.store import maintenance as store
from publisher.logs import short_error
from publisher.settings import fixed

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
    return match is not None and len(key) <= 1024 and not _FILE_ID.search(match.group(1))


@dataclasses.dataclass(frozen=True)
class MaintenanceConfig:
    #: Seconds between two rounds (0: the listener runs none).
    interval: float
    completed_jobs: timedelta
    broker_messages: timedelta
    deleted_files: timedelta
    job_events: timedelta
    webhook_events: timedelta
    unpublished_object_grace: timedelta
    lost_host_after: timedelta
    object_prefix: str

    @classmethod
    def from_constants(cls) -> MaintenanceConfig:
        """The intervals and retention ages: constants, each with its reason (publisher/settings/fixed.py)."""
        return cls(
            interval=fixed.MAINTENANCE_INTERVAL,
            completed_jobs=timedelta(days=fixed.COMPLETED_JOB_RETENTION_DAYS),
            broker_messages=timedelta(hours=fixed.BROKER_RETENTION_HOURS),
            deleted_files=timedelta(days=fixed.DELETED_FILE_RETENTION_DAYS),
            job_events=timedelta(days=fixed.JOB_EVENT_RETENTION_DAYS),
            webhook_events=timedelta(days=fixed.EVENT_RETENTION_DAYS),
            unpublished_object_grace=timedelta(days=fixed.SUPERSEDED_OBJECT_GRACE_DAYS),
            lost_host_after=timedelta(seconds=fixed.WORKER_HOST_EXPIRY_SECONDS),
            object_prefix=fixed.OBJECT_PREFIX,
        )


class Maintenance:
    name = "maintenance"
    #: Runs in a thread of its own (listener/loop.py): a round may take long.
    in_background = True

    def __init__(self, db, storage, config: MaintenanceConfig, redact=str, metrics=None):
        self.db, self.storage, self.config, self.redact, self.metrics = db, storage, config, redact, metrics
        self.interval = config.interval

    def run_once(self) -> dict[str, int]:
        """One round; what was removed. Each part is independent: one failing does not stop
        the others, and MaintenanceError names those that failed."""
        try:
            removed = self._round()
        except Exception:
            self._count("error")
            raise
        self._count("ok", removed)
        return removed

    def _count(self, outcome: str, removed: dict[str, int] | None = None) -> None:
        if self.metrics is None:
            return
        self.metrics.maintenance_runs.labels(outcome).inc()
        for what, n in (removed or {}).items():
            self.metrics.maintenance_deleted.labels(what).inc(n)

    def _round(self) -> dict[str, int]:
        removed = {}
        try:
            with self.db.transaction() as cur:
                by_pg_cron = store.pg_cron_schedules_maintenance(cur)
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
        return self._repeat("completed_jobs", self.config.completed_jobs)

    def purge_broker_messages(self) -> int:
        return self._repeat("broker_messages", self.config.broker_messages)

    def purge_job_events(self) -> int:
        return self._repeat("job_events", self.config.job_events)

    def purge_webhook_events(self) -> int:
        return self._repeat("webhook_events", self.config.webhook_events)

    def purge_unpublished_objects(self) -> int:
        """Each batch's rows are deleted and its objects removed in one transaction:
        an upload recording one of those keys again waits until the objects are
        gone, then PUTs; a failure to remove rolls the rows back for the next round."""
        total = 0
        while True:
            with self.db.transaction() as cur:
                keys = store.take_unpublished_objects(cur, self.config.unpublished_object_grace, BATCH)
                if keys:
                    self.storage.remove_keys(keys)
            total += len(keys)
            if len(keys) < BATCH:
                return total

    def _repeat(self, what: str, older: timedelta) -> int:
        total = 0
        while True:
            with self.db.transaction() as cur:  # one short transaction per batch
                n = store.purge_rows(cur, what, older, BATCH)
            total += n
            if n < BATCH:
                return total

    def forget_lost_hosts(self) -> int:
        with self.db.transaction() as cur:
            return store.forget_lost_hosts(cur, self.config.lost_host_after)

    def purge_deleted_files(self) -> int:
        older = self.config.deleted_files
        with self.db.transaction() as cur:
            candidates = store.files_to_purge(cur, older, FILES_PER_ROUND)
        purged = 0
        for file_id in candidates:
            # One transaction per file: the row lock holds back new jobs for the
            # file while its objects are removed; if removing fails, nothing is
            # deleted from the database and the next round tries again.
            with self.db.transaction() as cur:
                locked = store.lock_file_for_purge(cur, file_id, older)
                if locked is None:
                    continue  # restored, or a job became active meanwhile
                self._remove_objects(locked)
                purged += store.delete_file(cur, file_id, older)
            logger.info("purged deleted file %s (%d jobs)", file_id, len(locked.job_ids))
        return purged

    def _remove_objects(self, locked) -> None:
        # The keys the file's variants name or were tracked for it, each in the file's own
        # folder (under an earlier OBJECT_PREFIX, too), never another file's object; then
        # whatever else is under the current prefix's folder.
        self.storage.remove_keys(key for key in locked.keys if in_folder_of(key, locked.file_id))
        self.storage.remove_prefix(f"{self.config.object_prefix}{locked.file_id}/")


class MaintenanceError(Exception):
    """Some part of a maintenance round failed; the others ran."""
