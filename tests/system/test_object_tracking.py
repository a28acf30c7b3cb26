"""Every object the upload step PUTs is tracked until it is published or
removed: maintenance removes the objects of jobs that did not publish them
after the grace period, and never an object a running upload is PUTting again."""

import shutil
import threading
import uuid

from devstack.ports import wait_until
from listener.maintenance import Maintenance, MaintenanceConfig
from publisher.app.runtime import Runtime
from publisher.settings.job import load_settings
from tests.conftest import CORPUS
from tests.faults.harness import DELETED_WHILE_RUNNING_MARK, start_workers

GRACE_DAYS = 7


def the_grace_passes(stack):
    """Every tracked object's time moves GRACE_DAYS + 1 days back (as if that long had passed)."""
    stack.sql(f"""DO $$ BEGIN
        IF to_regclass('publisher_objects') IS NOT NULL THEN
            UPDATE publisher_objects SET since = since - interval '{GRACE_DAYS + 1} days';
        END IF;
        IF to_regclass('publisher_superseded_objects') IS NOT NULL THEN
            UPDATE publisher_superseded_objects SET superseded_at = superseded_at - interval '{GRACE_DAYS + 1} days';
        END IF; END $$""")


def source(origin_root, tag: str) -> str:
    key = f"{tag}-{uuid.uuid4().hex[:8]}.jpg"
    shutil.copy(CORPUS / "progressive.jpg", origin_root / key)
    return key


def maintenance(stack, storage_wrapper=None) -> Maintenance:
    rt = Runtime(load_settings(dict(stack.env)), "test-maintenance")
    storage = storage_wrapper(rt.storage) if storage_wrapper else rt.storage
    return Maintenance(rt.db, storage, MaintenanceConfig.from_constants())


def test_the_objects_of_a_job_that_found_its_file_deleted_leave_the_bucket_after_the_grace(make_stack, origin_root):
    stack = make_stack(SUPERSEDED_OBJECT_GRACE_DAYS=GRACE_DAYS, DELETED_FILE_RETENTION_DAYS=365)
    file_id = stack.add_file(source(origin_root, DELETED_WHILE_RUNNING_MARK))
    job = stack.request_publish(file_id)
    start_workers(stack, processes=1, threads=2, hooks=True)
    stack.start_listener()
    row = stack.wait_for(job)
    assert row["status"] == "failed" and "deleted" in row["last_error"], row
    put = stack.keys(f"media/{file_id}/")
    assert put, "the upload step PUT the variants before it found the file deleted"
    # The auction application restores the file: the file purge will never come for these objects.
    stack.sql("UPDATE auction_files SET deleted_at = NULL WHERE id = %s", (file_id,))

    maintenance(stack).run_once()
    assert stack.keys(f"media/{file_id}/") == put  # within the grace: kept
    the_grace_passes(stack)
    maintenance(stack).run_once()
    assert stack.keys(f"media/{file_id}/") == []


def test_a_superseded_key_put_again_by_a_rerun_while_maintenance_removes_it_stays_online(make_stack, origin_root):
    stack = make_stack(SUPERSEDED_OBJECT_GRACE_DAYS=GRACE_DAYS)
    file_id = stack.add_file(source(origin_root, "republished"))
    stack.start_workers(processes=1, threads=2)
    stack.start_listener()
    first = stack.wait_for(stack.request_publish(file_id))
    assert first["status"] == "completed", first["last_error"]
    # A republish with other bytes replaced them long ago: their keys are superseded, past the grace.
    stack.sql("UPDATE auction_files SET variants = '{}' WHERE id = %s", (file_id,))
    the_grace_passes(stack)
    keys = {f["key"] for v in first["variants"].values() for f in v["formats"].values()}

    rerun = {}

    def remove_keys_while_a_rerun_puts_them(storage):
        """Maintenance's bucket: before it removes keys of the file, a re-run of the
        file (the same bytes: the same keys) runs until it either completes or waits
        on maintenance; then the removal goes ahead."""
        class Racing:
            def __getattr__(self, name):
                return getattr(storage, name)

            def remove_keys(self, removing):
                removing = list(removing)
                if keys & set(removing) and not rerun:
                    [row] = stack.sql("SELECT job_id FROM publisher_admin_republish(%s)", (file_id,))
                    rerun["job"] = row["job_id"]
                    wait_until(lambda: stack.job(rerun["job"])["status"] == "completed" or upload_waits(stack),
                               120, "the re-run to complete or to wait for maintenance")
                storage.remove_keys(removing)

        return Racing()

    round_ = threading.Thread(target=lambda: maintenance(stack, remove_keys_while_a_rerun_puts_them).run_once())
    round_.start()
    round_.join(180)
    assert not round_.is_alive()
    assert rerun, "maintenance found the superseded keys due"
    done = stack.wait_for(rerun["job"])
    assert done["status"] == "completed", done["last_error"]
    published = {f["key"] for v in done["variants"].values() for f in v["formats"].values()}
    assert published == keys  # the same bytes, the same keys
    assert set(stack.keys(f"media/{file_id}/")) >= published, "a published key's object is gone"


def upload_waits(stack) -> bool:
    """Whether a session of the test's database waits for a lock (the upload, on maintenance's)."""
    return bool(stack.sql("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                          "AND wait_event_type = 'Lock'"))
