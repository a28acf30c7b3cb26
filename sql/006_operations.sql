-- Operating the service: the operator's actions (publisher-admin) and maintenance.
-- Every action is a function that changes only what it says, under the same
-- row locks as the workers, and tells what it did.
-- The functions that change rows run with their owner's rights (SECURITY DEFINER,
-- search_path fixed so a caller's schema cannot stand in for ours): the on-call
-- role may run them without any right to change the tables (900_roles.sql).
-- Re-runnable: CREATE OR REPLACE only.
BEGIN;
SET LOCAL client_min_messages = warning;
-- One deploy at a time; the lock is held to COMMIT.
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

-- Failed jobs are found by reason and age; deleted files by age. failure_reason is carried in the
-- index of failed jobs by age: the failures counted by reason are read from it alone.
CREATE INDEX IF NOT EXISTS publish_jobs_failed_at_idx
    ON publish_jobs (updated_at) INCLUDE (failure_reason) WHERE status = 'failed';
DROP INDEX IF EXISTS publish_jobs_failed_idx;
CREATE INDEX IF NOT EXISTS auction_files_deleted_idx ON auction_files (deleted_at) WHERE deleted_at IS NOT NULL;
-- The console's latest publishes and the contact sheet: the newest published files first.
CREATE INDEX IF NOT EXISTS auction_files_published_at_idx
    ON auction_files (published_at DESC, id) WHERE publish_status = 'published' AND deleted_at IS NULL;
-- The console's search by the start of a RAID key.
CREATE INDEX IF NOT EXISTS auction_files_raid_key_idx ON auction_files (raid_key text_pattern_ops);
-- Each failure reason's latest job (the overview's table, `publisher-admin status`).
CREATE INDEX IF NOT EXISTS publish_jobs_failed_reason_idx
    ON publish_jobs ((coalesce(failure_reason, 'untyped')), updated_at) WHERE status = 'failed';

-- ---------------------------------------------------------------- actions

-- The operator's transitions (retry, retry-failed, cancel) are in 002_job_states.sql,
-- with every other way a job's status changes.


-- Publishes a file again: a new job, unless one is active (then nothing changes).
CREATE OR REPLACE FUNCTION publisher_admin_republish(p_file uuid)
RETURNS TABLE (changed boolean, job_id bigint, file_id uuid, message text)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    f auction_files%ROWTYPE;
    active bigint;
    created bigint;
BEGIN
    -- Locked, so no other job for the file can be inserted meanwhile.
    SELECT * INTO f FROM auction_files WHERE id = p_file FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, NULL::bigint, p_file, format('no file %s', p_file);
        RETURN;
    END IF;
    IF f.deleted_at IS NOT NULL THEN
        RETURN QUERY SELECT false, NULL::bigint, p_file, format('file %s was deleted at %s; not republished', p_file, f.deleted_at);
        RETURN;
    END IF;
    active := publisher_active_job(p_file);
    IF active IS NOT NULL THEN
        RETURN QUERY SELECT false, active, p_file, format('file %s already has active job %s; nothing changed', p_file, active);
        RETURN;
    END IF;
    INSERT INTO publish_jobs (file_id, lane) VALUES (p_file, 1) RETURNING id INTO created;  -- an operator's: the retry lane
    RETURN QUERY SELECT true, created, p_file, format('file %s: new job %s (pending)', p_file, created);
END $$;


-- The name of a lane (publish_jobs.lane), as operators say it.
CREATE OR REPLACE FUNCTION publisher_lane_name(p_lane smallint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT (ARRAY['fresh', 'retry', 'backlog'])[p_lane + 1];
$$;

-- Pauses a lane (0 fresh, 1 retry, 2 backlog): its pending jobs stay pending, unclaimed, until it is
-- resumed; jobs already claimed go on. Resuming wakes the listener.
CREATE OR REPLACE FUNCTION publisher_admin_pause_lane(p_lane smallint)
RETURNS TABLE (changed boolean, message text)
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH paused AS (
        INSERT INTO publisher_paused_lanes (lane) VALUES (p_lane) ON CONFLICT (lane) DO NOTHING RETURNING lane)
    SELECT EXISTS (SELECT 1 FROM paused),
           CASE WHEN EXISTS (SELECT 1 FROM paused) THEN format('lane %s paused', publisher_lane_name(p_lane))
                ELSE format('lane %s was paused already; nothing changed', publisher_lane_name(p_lane)) END;
$$;

CREATE OR REPLACE FUNCTION publisher_admin_resume_lane(p_lane smallint)
RETURNS TABLE (changed boolean, message text)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    DELETE FROM publisher_paused_lanes WHERE lane = p_lane;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, format('lane %s was not paused; nothing changed', publisher_lane_name(p_lane));
        RETURN;
    END IF;
    PERFORM pg_notify('publish_jobs', '');  -- its jobs may be claimed now
    RETURN QUERY SELECT true, format('lane %s resumed', publisher_lane_name(p_lane));
END $$;

-- Why an operator's text is no host id as publisher/jobs/host_identity.py makes them (and
-- publisher_draining_hosts allows), or NULL: refused before it is looked up, stored or quoted back.
DROP FUNCTION IF EXISTS publisher_is_host_id(text);
CREATE OR REPLACE FUNCTION publisher_host_id_refused(p_host text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN NOT coalesce(p_host ~ '^[A-Za-z0-9._-]{1,200}$', false)
                THEN 'not a host id (1 to 200 letters, digits, dots, dashes or underscores); nothing changed' END;
$$;

-- Drains a worker host (its id as publisher_workers has it): it finishes the jobs it has begun,
-- whose later steps are bound to it, and takes no new first step until it is resumed. The host
-- learns it from its next beat (publisher_worker_beat). Only a host that has beaten may be
-- drained, so a mistyped id changes nothing.
CREATE OR REPLACE FUNCTION publisher_admin_drain_host(p_host text)
RETURNS TABLE (changed boolean, message text)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF publisher_host_id_refused(p_host) IS NOT NULL THEN
        RETURN QUERY SELECT false, publisher_host_id_refused(p_host);
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM publisher_workers w WHERE w.host_id = p_host)
       AND NOT EXISTS (SELECT 1 FROM publisher_draining_hosts d WHERE d.host_id = p_host) THEN
        RETURN QUERY SELECT false, format('no worker host %s has beaten; nothing changed', p_host);
        RETURN;
    END IF;
    INSERT INTO publisher_draining_hosts (host_id, drained_by)
    VALUES (p_host, left(session_user || coalesce(' via ' || nullif(current_setting('application_name', true), ''), ''),
                         200))
    ON CONFLICT (host_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, format('host %s was draining already; nothing changed', p_host);
        RETURN;
    END IF;
    -- The listener claims nothing more for it from now, not from its next beat.
    UPDATE publisher_workers SET threads = 0 WHERE host_id = p_host;
    RETURN QUERY SELECT true, format('host %s draining: it finishes the jobs it has begun and takes no new ones',
                                     p_host);
END $$;

CREATE OR REPLACE FUNCTION publisher_admin_resume_host(p_host text)
RETURNS TABLE (changed boolean, message text)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF publisher_host_id_refused(p_host) IS NOT NULL THEN
        RETURN QUERY SELECT false, publisher_host_id_refused(p_host);
        RETURN;
    END IF;
    DELETE FROM publisher_draining_hosts WHERE host_id = p_host;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, format('host %s was not draining; nothing changed', p_host);
        RETURN;
    END IF;
    -- Its next beat offers its threads again, and wakes the listener then.
    RETURN QUERY SELECT true, format('host %s resumed: it takes new jobs from its next beat', p_host);
END $$;

-- Backfill: the live files that were never published, or whose latest job
-- failed, from the file after p_after in id order (p_limit NULL: all). A file
-- with an active job, or whose latest job completed or was cancelled, is not one.
DROP FUNCTION IF EXISTS publisher_backfill_candidates(uuid, int);
CREATE OR REPLACE FUNCTION publisher_backfill_candidates(p_after uuid, p_limit int)
RETURNS TABLE (file_id uuid)
LANGUAGE sql STABLE AS $$
    SELECT f.id FROM auction_files f
      LEFT JOIN LATERAL (SELECT j.status FROM publish_jobs j WHERE j.file_id = f.id
                          ORDER BY j.id DESC LIMIT 1) l ON true
     WHERE f.deleted_at IS NULL AND (p_after IS NULL OR f.id > p_after)
       AND (l.status IS NULL OR l.status = 'failed')
     ORDER BY f.id LIMIT p_limit;
$$;

-- Queues a job for each of the next p_limit candidates after p_after. Safe beside
-- the listener and the applications: a file that gained an active job meanwhile
-- is skipped (job_id NULL), not an error. Returns every candidate looked at, so the
-- caller goes on after the last one whatever happened to it.
CREATE OR REPLACE FUNCTION publisher_backfill(p_after uuid, p_limit int)
RETURNS TABLE (file_id uuid, job_id bigint)
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH candidates AS (
        SELECT c.file_id FROM publisher_backfill_candidates(p_after, p_limit) c
    ), queued AS (
        INSERT INTO publish_jobs (file_id, lane)  -- the backlog lane
        SELECT c.file_id, 2 FROM candidates c ORDER BY c.file_id
        ON CONFLICT (file_id) WHERE status IN ('pending', 'queued', 'processing') DO NOTHING
        RETURNING publish_jobs.file_id, publish_jobs.id
    )
    SELECT c.file_id, q.id FROM candidates c LEFT JOIN queued q ON q.file_id = c.file_id ORDER BY c.file_id;
$$;

-- ------------------------------------------------------------ maintenance
-- Retention periods: the listener passes its settings (environment); pg_cron
-- calls these without arguments, so the defaults come from database settings,
-- e.g. ALTER DATABASE auctions SET publisher.completed_job_retention = '120 days'.
--
-- Every function here that deletes re-checks, itself and under the row locks it
-- takes, that what it deletes is due: whoever may call it (the maintenance role)
-- cannot make it delete anything live. An interval below a function's floor
-- (negative, zero, a typo) counts as the floor: no argument purges recent history.

-- p, or p_floor when p is below it (or NULL).
CREATE OR REPLACE FUNCTION publisher_at_least(p interval, p_floor interval)
RETURNS interval LANGUAGE sql IMMUTABLE AS $$
    SELECT greatest(coalesce(p, p_floor), p_floor);
$$;

-- Completed jobs older than the retention (at least a day), at most p_limit per call.
CREATE OR REPLACE FUNCTION publisher_purge_completed_jobs(
    p_older interval DEFAULT coalesce(
        nullif(current_setting('publisher.completed_job_retention', true), '')::interval, interval '90 days'),
    p_limit int DEFAULT 10000)
RETURNS int LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH gone AS (
        -- = ANY(ARRAY(...)): the batch's ids by the index, then each row by its key (with IN, a
        -- plan made for any p_limit joins by scanning the whole table)
        DELETE FROM publish_jobs WHERE id = ANY(ARRAY(
            SELECT id FROM publish_jobs
             WHERE status = 'completed'
               AND completed_at < now() - publisher_at_least(p_older, interval '1 day')
             ORDER BY completed_at LIMIT p_limit FOR UPDATE SKIP LOCKED))
        RETURNING 1
    )
    SELECT count(*)::int FROM gone;
$$;

-- Broker rows that are done or rejected (dead) and older than the retention (at
-- least an hour). dramatiq-pg only purges at random, after 30 days.
CREATE OR REPLACE FUNCTION publisher_purge_broker_messages(
    p_older interval DEFAULT coalesce(
        nullif(current_setting('publisher.broker_retention', true), '')::interval, interval '24 hours'),
    p_limit int DEFAULT 50000)
RETURNS int LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM dramatiq.queue WHERE message_id = ANY(ARRAY(
            SELECT message_id FROM dramatiq.queue
             WHERE state IN ('done', 'rejected') AND mtime < now() - publisher_at_least(p_older, interval '1 hour')
             LIMIT p_limit FOR UPDATE SKIP LOCKED))
        RETURNING 1
    )
    SELECT count(*)::int FROM gone;
$$;

-- Files soft-deleted longer ago than the retention (at least a day) and with no
-- active job: candidates for purging (their bucket objects first, then their rows).
CREATE OR REPLACE FUNCTION publisher_files_to_purge(p_older interval, p_limit int)
RETURNS TABLE (file_id uuid)
LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT f.id FROM auction_files f
     WHERE f.deleted_at < now() - publisher_at_least(p_older, interval '1 day')
       AND NOT EXISTS (SELECT 1 FROM publish_jobs a WHERE a.file_id = f.id
                        AND a.status IN ('pending', 'queued', 'processing'))
     ORDER BY f.deleted_at LIMIT p_limit;
$$;

-- Whether a file may be purged now: locks it (an INSERT of a job for it waits on
-- the lock until the purge commits) and checks it was soft-deleted longer ago than
-- the retention (at least a day) and has no active job. p_wait: wait for the lock
-- (else a file locked elsewhere is not due this time).
CREATE OR REPLACE FUNCTION publisher_file_due_for_purge(p_file uuid, p_older interval, p_wait boolean)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF p_wait THEN
        PERFORM 1 FROM auction_files f
         WHERE f.id = p_file AND f.deleted_at < now() - publisher_at_least(p_older, interval '1 day') FOR UPDATE;
    ELSE
        PERFORM 1 FROM auction_files f
         WHERE f.id = p_file AND f.deleted_at < now() - publisher_at_least(p_older, interval '1 day')
           FOR UPDATE SKIP LOCKED;
    END IF;
    RETURN FOUND AND NOT EXISTS (SELECT 1 FROM publish_jobs a WHERE a.file_id = p_file
                                  AND a.status IN ('pending', 'queued', 'processing'));
END $$;

-- Locks one file for purging and re-checks it under the lock. Returns the keys
-- to remove from the bucket and its job ids, or no row when the file must be kept
-- (restored, not old enough, or an active job). The keys: those its variants name
-- and those tracked for it (011), each only if it lies in the file's own folder
-- (publisher_key_in_folder): variants written by a worker or by hand may name
-- another file's objects, which purging this file must never remove.
DROP FUNCTION IF EXISTS publisher_lock_file_for_purge(uuid, interval);
CREATE OR REPLACE FUNCTION publisher_lock_file_for_purge(p_file uuid, p_older interval)
RETURNS TABLE (file_id uuid, keys text[], job_ids bigint[])
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NOT publisher_file_due_for_purge(p_file, p_older, false) THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT f.id,
               coalesce((SELECT array_agg(k ORDER BY k) FROM (
                            SELECT publisher_variant_keys(f.variants) AS k
                            UNION SELECT o.key FROM publisher_objects o WHERE o.file_id = f.id) named
                          WHERE publisher_key_in_folder(k, f.id)), '{}'),
               coalesce((SELECT array_agg(j.id ORDER BY j.id) FROM publish_jobs j WHERE j.file_id = f.id), '{}')
          FROM auction_files f WHERE f.id = p_file;
END $$;

-- Worker hosts silent longer than p_older (at least a minute) are gone for good:
-- their heartbeat rows go, and so do messages still waiting in host queues for as
-- long (the PostgreSQL broker's; RabbitMQ expires such queues itself). Their jobs
-- were rescued long ago. Returns the hosts forgotten.
CREATE OR REPLACE FUNCTION publisher_forget_lost_hosts(p_older interval)
RETURNS int LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    hosts int;
    older constant interval := publisher_at_least(p_older, interval '1 minute');
BEGIN
    WITH gone AS (
        DELETE FROM publisher_workers w
         WHERE NOT EXISTS (SELECT 1 FROM publisher_workers l
                            WHERE l.host_id = w.host_id AND l.seen_at > now() - older)
        RETURNING host_id
    )
    SELECT count(DISTINCT host_id) INTO hosts FROM gone;
    -- Only the queues no host beats for any more: a live host's backlog stays, however old.
    DELETE FROM dramatiq.queue q
     WHERE q.queue_name LIKE 'publish-host-%' AND q.state = 'queued' AND q.mtime < now() - older
       -- A host's delayed messages (a retry waiting its backoff) are in '<queue>.DQ'.
       AND NOT EXISTS (SELECT 1 FROM publisher_workers l
                        WHERE q.queue_name IN (l.queue, l.queue || '.DQ'));
    RETURN hosts;
END $$;

-- Deletes a purged file's rows (its jobs, then the file; its objects are gone
-- already), after checking again, under the file's lock, that it is due
-- (publisher_file_due_for_purge). Returns 1, or 0 when it deleted nothing (with
-- a notice saying why).
DROP FUNCTION IF EXISTS publisher_delete_file(uuid);
CREATE OR REPLACE FUNCTION publisher_delete_file(
    p_file uuid,
    p_older interval DEFAULT coalesce(
        nullif(current_setting('publisher.deleted_file_retention', true), '')::interval, interval '30 days'))
RETURNS int LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NOT publisher_file_due_for_purge(p_file, p_older, true) THEN
        RAISE NOTICE 'file % not deleted: it is not soft-deleted for longer than the retention (at least a day), '
                     'or it has an active job', p_file;
        RETURN 0;
    END IF;
    DELETE FROM publisher_objects WHERE file_id = p_file;  -- 011: their objects left the bucket with the file's
    DELETE FROM publish_jobs WHERE file_id = p_file;
    DELETE FROM auction_files WHERE id = p_file;
    RETURN 1;
END $$;

COMMIT;
