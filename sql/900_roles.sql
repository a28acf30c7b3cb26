-- Least-privilege roles. Each is a group (NOLOGIN): grant it to a login role,
--   CREATE ROLE media_worker LOGIN PASSWORD '...' IN ROLE publisher_worker;
--
--   publisher_worker    the listener and the workers
--   publisher_oncall    publisher-admin (every command but migrate), python -m publisher.republish
--   publisher_readonly  dashboards, publisher-admin status and schema
--
-- None of them may change the schema: publisher-admin migrate runs as the role
-- that owns the tables and functions (it needs CREATEROLE for the first run, or
-- a DBA creates these three roles beforehand).
--
-- Numbered 900 to run after every file that creates objects. The grants are
-- exact: everything is revoked from the three roles, then each section below
-- grants what that role needs, in one transaction (no moment without them).
-- A new table or function gets its grants here, in the section of each role that
-- uses it. Functions named publisher_* are not executable by PUBLIC (PostgreSQL's
-- default): the listener and workers running as publisher_worker fail until one
-- is granted (tests/test_roles_e2e.py).
-- Re-runnable: roles are created when missing; the grants are set again.
BEGIN;
SET LOCAL client_min_messages = warning;
-- One deploy at a time; the lock is held to COMMIT.
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

-- Roles belong to the whole server: another database's migrate may create them
-- at the same moment, hence the exception handler.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['publisher_worker', 'publisher_oncall', 'publisher_readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END $$;

-- Start from nothing, so that a grant removed below is gone after the next migrate.
REVOKE ALL ON ALL TABLES IN SCHEMA public, dramatiq FROM publisher_worker, publisher_oncall, publisher_readonly;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public, dramatiq FROM publisher_worker, publisher_oncall, publisher_readonly;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public, dramatiq FROM publisher_worker, publisher_oncall, publisher_readonly;
REVOKE ALL ON SCHEMA dramatiq FROM publisher_worker, publisher_oncall, publisher_readonly;

-- Our functions are granted by name below, not to PUBLIC. One exception: the
-- default of publish_jobs.max_retries, which every writer of publish_jobs (the
-- systems that request publishing, too) evaluates.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'public' AND p.proname LIKE 'publisher\_%'
                AND p.proname <> 'publisher_default_max_retries' LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END $$;

-- ------------------------------------------------------------ publisher_readonly
-- Reads the job tables, the broker's queue and the schema record; changes nothing.
GRANT USAGE ON SCHEMA dramatiq TO publisher_readonly;
GRANT SELECT ON auction_files, publish_jobs, publish_job_events, publisher_settings, publisher_schema_versions,
                publisher_workers, publish_event_outbox, publisher_superseded_objects, dramatiq.queue
    TO publisher_readonly;
-- publisher-admin retry-failed --dry-run, backfill --dry-run
GRANT EXECUTE ON FUNCTION publisher_admin_failed_to_retry, publisher_backfill_candidates TO publisher_readonly;

-- -------------------------------------------------------------- publisher_oncall
-- Reads what publisher_readonly reads; changes rows only through the operator's
-- functions, which run with their owner's rights (SECURITY DEFINER, 004 and 006).
GRANT USAGE ON SCHEMA dramatiq TO publisher_oncall;
GRANT SELECT ON auction_files, publish_jobs, publish_job_events, publisher_settings, publisher_schema_versions,
                publisher_workers, publish_event_outbox, publisher_superseded_objects, dramatiq.queue
    TO publisher_oncall;
-- publisher-admin retry, retry-failed, republish, cancel
GRANT EXECUTE ON FUNCTION publisher_admin_retry, publisher_admin_retry_failed, publisher_admin_republish,
                          publisher_admin_cancel, publisher_admin_failed_to_retry TO publisher_oncall;
-- publisher-admin backfill
GRANT EXECUTE ON FUNCTION publisher_backfill_candidates, publisher_backfill TO publisher_oncall;
-- publisher-admin maintain
GRANT EXECUTE ON FUNCTION publisher_purge_completed_jobs, publisher_purge_broker_messages, publisher_files_to_purge,
                          publisher_lock_file_for_purge, publisher_delete_file, publisher_forget_lost_hosts,
                          publisher_superseded_due, publisher_forget_superseded, publisher_purge_job_events,
                          publisher_purge_event_outbox
    TO publisher_oncall;
-- python -m publisher.republish
GRANT EXECUTE ON FUNCTION publisher_stale_files, publisher_republish_mismatches, publisher_request_republish
    TO publisher_oncall;

-- -------------------------------------------------------------- publisher_worker
-- The state machine (002_job_states.sql) and its triggers run with the caller's
-- rights: they read and update jobs and files and record events. Never DELETE:
-- maintenance deletes through the functions of 006, as their owner.
GRANT USAGE ON SCHEMA dramatiq TO publisher_worker;
GRANT SELECT, UPDATE ON publish_jobs, auction_files TO publisher_worker;
-- Each worker process's heartbeat (002_job_states.sql, publisher_worker_beat).
GRANT SELECT, INSERT, UPDATE ON publisher_workers TO publisher_worker;
GRANT INSERT ON publish_job_events TO publisher_worker;
-- The listener hands MAX_RETRIES to the database (008_settings.sql).
GRANT SELECT, INSERT, UPDATE ON publisher_settings TO publisher_worker;
-- The Dramatiq Postgres broker: enqueue, consume, ack, and its own occasional purge.
GRANT SELECT, INSERT, UPDATE, DELETE ON dramatiq.queue TO publisher_worker;
-- The job state machine (002) and the imaging record (004).
GRANT EXECUTE ON FUNCTION publisher_claim_pending, publisher_rescue, publisher_restart, publisher_begin_step,
                          publisher_heartbeat, publisher_end_step,
                          publisher_record_failure(bigint, uuid, text, boolean, text),
                          publisher_record_failure(bigint, uuid, text, boolean),
                          publisher_schedule_retry, publisher_finalize,
                          publisher_fail(bigint, text, text), publisher_fail(bigint, text),
                          publisher_worker_beat, publisher_host_alive,
                          publisher_record_imaging TO publisher_worker;
-- A step whose scratch files are gone, or whose disk is full, starts its job over;
-- a host short of space defers a first step (002).
GRANT EXECUTE ON FUNCTION publisher_start_over, publisher_defer_fetch TO publisher_worker;
-- The listener's webhook delivery from the outbox (010); the outbox is written by a
-- SECURITY DEFINER trigger, so ending a job needs no grant on it.
GRANT SELECT, UPDATE ON publish_event_outbox TO publisher_worker;
GRANT EXECUTE ON FUNCTION publisher_webhook_take, publisher_webhook_record TO publisher_worker;
-- The listener's maintenance rounds (006).
GRANT EXECUTE ON FUNCTION publisher_purge_completed_jobs, publisher_purge_broker_messages, publisher_files_to_purge,
                          publisher_lock_file_for_purge, publisher_delete_file, publisher_forget_lost_hosts,
                          publisher_superseded_due, publisher_forget_superseded, publisher_purge_job_events,
                          publisher_purge_event_outbox
    TO publisher_worker;

COMMIT;
