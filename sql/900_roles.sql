-- Least-privilege roles. Each is a group (NOLOGIN): grant it to a login role,
--   CREATE ROLE media_worker LOGIN PASSWORD '...' IN ROLE publisher_worker;
--
--   publisher_worker       the workers (media-publisher-worker): the steps' state functions
--   publisher_listener     the listener: intake, rescue, settings, webhook delivery
--   publisher_maintenance  maintenance: the listener's rounds, publisher-admin maintain
--                          (the listener's login is in both publisher_listener and this)
--   publisher_oncall       publisher-admin (every command but migrate and maintain),
--                          python -m publisher.ops.republish, the web page's actions
--   publisher_readonly     dashboards, publisher-admin status and schema, the web page read-only
--
-- docs/operations.md (Roles) is the table of who may call what; the tests check
-- every function and table right against it (tests/sql/test_roles_and_functions.py).
-- None of them may change the schema: publisher-admin migrate runs as the role
-- that owns the tables and functions (it needs CREATEROLE for the first run, or
-- a DBA creates these roles beforehand).
--
-- Numbered 900 to run after every file that creates objects. The grants are
-- exact: everything is revoked from the roles, then each section below grants
-- what that role needs, in one transaction (no moment without them).
-- A new table or function gets its grants here, in the section of each role that
-- uses it, and a row in the table of docs/operations.md. Functions named
-- publisher_* are not executable by PUBLIC.
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
    FOREACH r IN ARRAY ARRAY['publisher_worker', 'publisher_listener', 'publisher_maintenance',
                             'publisher_oncall', 'publisher_readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END $$;

-- Only the owner creates objects in public: the SECURITY DEFINER functions below
-- search it, so an object another role could plant there (a better-matching
-- format(text, bigint)) would run with the owner's rights. PostgreSQL 15 made
-- this the default for new databases; older ones, and databases upgraded from
-- them, still let PUBLIC create.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Every SECURITY DEFINER function of ours searches pg_catalog first, then public
-- (writable by the owner only, above), and pg_temp last: left out, pg_temp would
-- be searched first for tables. Set here for the whole class, whichever file (or
-- later change) created the function.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname IN ('public', 'dramatiq') AND p.prosecdef
                AND pg_has_role(p.proowner, 'USAGE')
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                 AND d.objid = p.oid AND d.deptype = 'e') LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, public, pg_temp', f);
    END LOOP;
END $$;

-- Start from nothing, so that a grant removed below is gone after the next migrate.
REVOKE ALL ON ALL TABLES IN SCHEMA public, dramatiq
    FROM publisher_worker, publisher_listener, publisher_maintenance, publisher_oncall, publisher_readonly;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public, dramatiq
    FROM publisher_worker, publisher_listener, publisher_maintenance, publisher_oncall, publisher_readonly;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public, dramatiq
    FROM publisher_worker, publisher_listener, publisher_maintenance, publisher_oncall, publisher_readonly;
REVOKE ALL ON SCHEMA dramatiq
    FROM publisher_worker, publisher_listener, publisher_maintenance, publisher_oncall, publisher_readonly;

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
                publisher_workers, publisher_draining_hosts, publish_event_outbox, publisher_objects,
                publisher_paused_lanes, dramatiq.queue
    TO publisher_readonly;
-- publisher-admin retry-failed --dry-run, backfill --dry-run, the console's previews of its bulk actions;
-- the job list's filter
GRANT EXECUTE ON FUNCTION publisher_admin_failed_to_retry, publisher_admin_waiting_to_cancel,
                          publisher_backfill_candidates, publisher_job_matches, publisher_job_waiting
    TO publisher_readonly;

-- -------------------------------------------------------------- publisher_oncall
-- Reads what publisher_readonly reads; changes rows only through the operator's
-- functions, which run with their owner's rights (SECURITY DEFINER, 002, 004 and 006)
-- and refuse what an operator may not do. No maintenance: that deletes.
GRANT USAGE ON SCHEMA dramatiq TO publisher_oncall;
GRANT SELECT ON auction_files, publish_jobs, publish_job_events, publisher_settings, publisher_schema_versions,
                publisher_workers, publisher_draining_hosts, publish_event_outbox, publisher_objects,
                publisher_paused_lanes, dramatiq.queue
    TO publisher_oncall;
-- publisher-admin retry, retry-failed, republish, cancel; the console's bulk retry and cancel
GRANT EXECUTE ON FUNCTION publisher_admin_retry, publisher_admin_retry_failed, publisher_admin_republish,
                          publisher_admin_cancel, publisher_admin_failed_to_retry,
                          publisher_admin_cancel_waiting, publisher_admin_waiting_to_cancel,
                          publisher_job_matches, publisher_job_waiting TO publisher_oncall;
-- publisher-admin lane pause, lane resume
GRANT EXECUTE ON FUNCTION publisher_admin_pause_lane, publisher_admin_resume_lane TO publisher_oncall;
-- publisher-admin host drain, host resume
GRANT EXECUTE ON FUNCTION publisher_admin_drain_host, publisher_admin_resume_host TO publisher_oncall;
-- publisher-admin backfill
GRANT EXECUTE ON FUNCTION publisher_backfill_candidates, publisher_backfill TO publisher_oncall;
-- python -m publisher.ops.republish
GRANT EXECUTE ON FUNCTION publisher_stale_files, publisher_republish_mismatches, publisher_request_republish
    TO publisher_oncall;

-- --------------------------------------------------------- publisher_maintenance
-- Deletes only through the functions of 006 and 011, each of which checks under
-- its own locks that what it deletes is due, whatever arguments it is given.
GRANT USAGE ON SCHEMA dramatiq TO publisher_maintenance;
GRANT EXECUTE ON FUNCTION publisher_purge_completed_jobs, publisher_purge_broker_messages, publisher_files_to_purge,
                          publisher_lock_file_for_purge, publisher_delete_file, publisher_forget_lost_hosts,
                          publisher_take_unpublished_objects, publisher_purge_job_events, publisher_purge_event_outbox
    TO publisher_maintenance;

-- ------------------------------------------------------------ publisher_listener
-- Intake: claims pending jobs, rescues lost ones (002, SECURITY DEFINER: no right
-- to change a job row itself), re-announces broker messages, hands its settings to
-- the database (008) and delivers the webhook from the outbox (010).
GRANT USAGE ON SCHEMA dramatiq TO publisher_listener;
GRANT SELECT ON publish_jobs, auction_files, publisher_workers TO publisher_listener;
GRANT SELECT, INSERT, UPDATE ON publisher_settings TO publisher_listener;
GRANT SELECT, UPDATE ON publish_event_outbox TO publisher_listener;
-- The Dramatiq Postgres broker: enqueue, re-announce, and its own occasional purge.
GRANT SELECT, INSERT, UPDATE, DELETE ON dramatiq.queue TO publisher_listener;
GRANT EXECUTE ON FUNCTION publisher_claim_pending, publisher_pending_waits, publisher_rescue, publisher_webhook_take,
    publisher_webhook_record TO publisher_listener;

-- -------------------------------------------------------------- publisher_worker
-- The workers decode untrusted images: they read their job, and change it only
-- through the state functions of 002 and 004, SECURITY DEFINER, each of which
-- acts only for the attempt whose token it is given. No INSERT, UPDATE or DELETE
-- on any job table; no maintenance.
GRANT USAGE ON SCHEMA dramatiq TO publisher_worker;
-- The step's job and file; the scratch sweep's current attempts.
GRANT SELECT ON publish_jobs, auction_files TO publisher_worker;
-- The Dramatiq Postgres broker: consume, ack, enqueue the next step, and its own occasional purge.
GRANT SELECT, INSERT, UPDATE, DELETE ON dramatiq.queue TO publisher_worker;
GRANT EXECUTE ON FUNCTION publisher_begin_step, publisher_heartbeat, publisher_pass_step,
                          publisher_hand_back_step,
                          publisher_record_failure,
                          publisher_schedule_retry, publisher_finalize,
                          publisher_worker_beat, publisher_track_object
    TO publisher_worker;
-- A step whose scratch files are gone, or whose disk is full, starts its job over;
-- a host short of space defers a first step (002).
GRANT EXECUTE ON FUNCTION publisher_start_over, publisher_defer_fetch TO publisher_worker;

COMMIT;
