-- The job state machine, named once, here.
--
--   pending ──claim──▶ queued ──begin_step──▶ processing ──finalize──▶ completed
--                        ▲                        │
--                        └──── transient failure ─┤ (retry_count < max_retries)
--                              or rescue          │
--                                                 ▼
--                                               failed  (permanent error, or retries used up)
--   failed/completed/cancelled ──operator sets pending, or raises max_retries──▶ pending
--   pending/queued ──operator cancels──▶ cancelled
--
-- Every way a status changes, and where (Python's caller of each function is
-- publisher/jobs/store/; its names for these statuses are store/states.py):
--   INSERT                        -> pending     the application, publisher_backfill, publisher_admin_republish
--                                                (006), publisher_request_republish (004)
--   pending    -> queued          publisher_claim_pending                      (here)
--   queued     -> processing      publisher_begin_step                         (here)
--   processing -> queued          publisher_record_failure (retry),
--                                 publisher_rescue, publisher_start_over,
--                                 publisher_defer_fetch                        (here)
--   any active -> failed          publisher_fail, by begin_step, record_failure,
--                                 finalize (file deleted), start_over          (here)
--   processing -> completed       publisher_finalize                           (here)
--   ended      -> pending         publisher_admin_retry, publisher_admin_retry_failed (here), a plain
--                                 UPDATE ... SET status = 'pending', or raising max_retries on a job
--                                 that used them up (the trigger below). Whoever sets it, the trigger
--                                 publish_jobs_before_update puts the job in the retry lane and
--                                 starts a new attempt: retry_count 0
--                                 (unless the retries were raised), scratch_restarts 0, no token,
--                                 stage fetch, and no step, lease, next attempt, completion,
--                                 artifacts, host or deadline.
--   pending/queued -> cancelled   publisher_admin_cancel                       (here)
-- The triggers of 005 (publish_job_events), 010 (the webhook outbox) and 011
-- (objects no file publishes) record status changes; they change none.
--
-- Every attempt carries a token (attempt_token). A message whose token is not
-- the job's current one is stale: it may run no step and finalize nothing.
--
-- Locality: the worker host that runs an attempt's fetch (host_id) runs its
-- other steps too. The files pass between the steps in that host's scratch
-- directory and the next message goes to that host's queue; nothing is staged
-- in the bucket. Steps only move forward: a step runs only when it is the job's
-- current stage.
--
-- Waiting is not failing: no time spent in a queue charges a retry. The
-- listener claims no more jobs than the live workers can start soon
-- (publisher_claim_pending); a job is handed out again from its first step,
-- under a new token, when the step it was running lost its lease (counts as an
-- attempt), or when the host it waits on is gone or its message was lost (no
-- attempt ran, nothing is counted) (publisher_rescue), or when a step found its
-- host's scratch files gone or its disk full (the host's failure: no retry is
-- charged; files gone a bounded number of times) (publisher_start_over).
-- The functions the workers and the listener call run with their owner's rights
-- (SECURITY DEFINER): their roles may not change a job row themselves, and each
-- function acts only for the attempt whose token it is given (900_roles.sql).
-- The token keeps apart the attempts of honest workers; it is no secret from the
-- worker role, which reads publish_jobs and the broker's messages. What bounds a
-- hostile caller of that role is checked here whatever it passes: durations are
-- capped (publisher_worker_cap), the start-over limit is fixed, and a job
-- publishes only keys its upload tracked in its own file's folder (finalize).
-- Re-runnable: CREATE OR REPLACE only.
BEGIN;
SET LOCAL client_min_messages = warning;
-- One deploy at a time; the lock is held to COMMIT.
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

-- Operator transitions, and bookkeeping that must hold whoever writes the row.
CREATE OR REPLACE FUNCTION publish_jobs_before_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    retries_raised boolean := false;
BEGIN
    NEW.updated_at := now();
    -- Raising max_retries on a job that used up its retries runs it again.
    IF OLD.status = 'failed' AND NEW.status = 'failed'
       AND NEW.max_retries > OLD.max_retries
       AND OLD.retry_count >= OLD.max_retries THEN
        NEW.status := 'pending';
        retries_raised := true;
    END IF;
    -- An ended job run again, whoever runs it, waits in the retry lane: behind fresh lots, ahead of
    -- the catalogue's backlog.
    IF NEW.status = 'pending' AND OLD.status IN ('completed', 'failed', 'cancelled') THEN
        NEW.lane := 1;
    END IF;
    IF NEW.status = 'pending' AND OLD.status <> 'pending' THEN
        IF NOT retries_raised AND NEW.retry_count = OLD.retry_count THEN
            NEW.retry_count := 0;
        END IF;
        NEW.scratch_restarts := 0;
        NEW.no_space_since := NULL;
        NEW.attempt_token := NULL;  -- in-flight messages of the old attempt go stale
        NEW.stage := 'fetch';
        NEW.step_started_at := NULL;
        NEW.lease_expires_at := NULL;
        NEW.next_attempt_at := NULL;
        NEW.completed_at := NULL;
        NEW.artifacts := NULL;
        NEW.host_id := NULL;
        NEW.step_deadline := NULL;
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS publish_jobs_before_update ON publish_jobs;
CREATE TRIGGER publish_jobs_before_update BEFORE UPDATE ON publish_jobs
    FOR EACH ROW EXECUTE FUNCTION publish_jobs_before_update();

-- An application's plain INSERT (the fresh lane) for a file whose job already waits, pending, in a
-- lower lane (an operator's retry, the catalogue's backlog) moves that job to the fresh lane and
-- inserts nothing (INSERT 0 0): the lot is published at the fresh lane's pace, not at the backlog's
-- turn, and counted from this request (created_at: its wait is the fresh lot's, not the backlog's).
-- A file whose job is queued or running keeps refusing a second active job (the unique index). With
-- its owner's rights: an application that may only INSERT needs no other right on the table.
CREATE OR REPLACE FUNCTION publish_jobs_before_insert() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    waiting bigint;
BEGIN
    IF NEW.lane = 0 AND NEW.status = 'pending' THEN
        UPDATE publish_jobs SET lane = 0, created_at = now()
         WHERE file_id = NEW.file_id AND status = 'pending' AND lane > 0
        RETURNING id INTO waiting;
        IF waiting IS NOT NULL THEN
            PERFORM pg_notify('publish_jobs', waiting::text);
            RETURN NULL;
        END IF;
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS publish_jobs_before_insert ON publish_jobs;
CREATE TRIGGER publish_jobs_before_insert BEFORE INSERT ON publish_jobs
    FOR EACH ROW EXECUTE FUNCTION publish_jobs_before_insert();

-- A runnable job wakes the listener. The file follows its latest job.
CREATE OR REPLACE FUNCTION publish_jobs_notify_runnable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'pending' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'pending') THEN
        UPDATE auction_files SET publish_status = 'pending'
         WHERE id = NEW.file_id AND publish_status NOT IN ('pending', 'published');
        PERFORM pg_notify('publish_jobs', NEW.id::text);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS publish_jobs_notify_runnable ON publish_jobs;
-- Not "UPDATE OF status": that misses a status set by the BEFORE trigger above.
CREATE TRIGGER publish_jobs_notify_runnable AFTER INSERT OR UPDATE ON publish_jobs
    FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION publish_jobs_notify_runnable();

-- Published stays published: while a re-run of a published file runs, and if
-- it fails, the file keeps 'published' and its current variants; the new variants
-- replace them when the re-run completes (the replaced objects are removed by
-- maintenance after a grace period: publisher_objects). Only a soft delete takes
-- a file off the site.
CREATE OR REPLACE FUNCTION auction_files_keep_published() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.publish_status = 'published' AND NEW.publish_status <> 'published'
       AND OLD.variants IS NOT NULL AND NEW.deleted_at IS NULL THEN
        NEW.publish_status := 'published';
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS auction_files_keep_published ON auction_files;
CREATE TRIGGER auction_files_keep_published BEFORE UPDATE OF publish_status ON auction_files
    FOR EACH ROW EXECUTE FUNCTION auction_files_keep_published();

-- The longest a worker may ask for, whatever it passes: a lease (renewed by every
-- heartbeat), a step's deadline, a wait before a job's next step. The worker role
-- can read every job's token (publish_jobs, and the broker's messages), so these
-- caps, not the token, keep a hostile worker from parking a job out of reach of
-- rescue for years. Above the settings' defaults (JOB_LEASE_SECONDS 60,
-- STEP_TIME_LIMIT_SECONDS 1800, RETRY_MAX_BACKOFF_MS 600000): docs/configuration.md.
CREATE OR REPLACE FUNCTION publisher_worker_cap(p_what text) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_what WHEN 'lease' THEN interval '1 hour'
                       WHEN 'step' THEN interval '1 day'
                       WHEN 'delay' THEN interval '1 day' END;
$$;

-- p, or the cap p_what when p is above it (a NULL p is the cap).
CREATE OR REPLACE FUNCTION publisher_at_most(p interval, p_what text) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
    SELECT least(p, publisher_worker_cap(p_what));
$$;

-- Whether a worker host has beaten within p_alive.
CREATE OR REPLACE FUNCTION publisher_host_alive(p_host text, p_alive interval)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM publisher_workers w WHERE w.host_id = p_host AND w.seen_at > now() - p_alive);
$$;

-- A worker process is alive, and offers p_threads, or none while an operator drains its host
-- (publisher_draining_hosts): the listener claims nothing for a draining host from its next
-- beat. Returns whether the host drains, so the worker declines the first steps already
-- claimed (publisher/jobs/lifecycle.py) with no round trip of its own. A process's first beat,
-- and a beat that offers threads again after none, wake the listener: it may claim for them now.
-- CREATE OR REPLACE cannot change a return type: a beat that returns nothing is dropped first.
DO $$
BEGIN
    IF (SELECT p.prorettype FROM pg_proc p
         WHERE p.oid = to_regprocedure('publisher_worker_beat(text, text, text, int)')) = 'void'::regtype THEN
        DROP FUNCTION publisher_worker_beat(text, text, text, int);
    END IF;
END $$;
CREATE OR REPLACE FUNCTION publisher_worker_beat(p_worker text, p_host text, p_queue text, p_threads int)
RETURNS boolean LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    draining constant boolean := EXISTS (SELECT 1 FROM publisher_draining_hosts d WHERE d.host_id = p_host);
    offered constant int := CASE WHEN draining THEN 0 ELSE p_threads END;
    offered_before int;
BEGIN
    SELECT w.threads INTO offered_before FROM publisher_workers w WHERE w.worker_id = p_worker FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO publisher_workers (worker_id, host_id, queue, threads)
        VALUES (p_worker, p_host, p_queue, offered)
        ON CONFLICT (worker_id) DO UPDATE SET seen_at = now();
        PERFORM pg_notify('publish_jobs', '');
    ELSE
        UPDATE publisher_workers SET seen_at = now(), threads = offered WHERE worker_id = p_worker;
        IF offered_before = 0 AND offered > 0 THEN
            PERFORM pg_notify('publish_jobs', '');
        END IF;
    END IF;
    RETURN draining;
END $$;

-- pending -> queued, for at most as many jobs as the live workers can start
-- soon: p_per_thread queued (not yet started, not waiting for a retry) jobs per
-- live worker thread; fresh lots first, then the retry and backlog lanes, which leave
-- one job's room per live worker process to the fresh lots. Run inside the transaction
-- that also enqueues the messages: if enqueueing fails, the claim rolls back and the
-- job stays pending. PL/pgSQL, not SQL: a session plans its queries once, not at every call.
-- One query per lane, each reading the head of that lane in publish_jobs_pending_lane_idx, the
-- one index that gives a lane's pending jobs in order and no others. The planner is kept from
-- sorting: while its statistics have not yet seen a republish (autovacuum analyzes a table once
-- a tenth of it has changed), it believes almost no job is pending, and would read them all from
-- another index and sort them, a whole backlog read for each claim. Nothing here needs a sort;
-- nor JIT, which a plan priced as a disabled sort would trigger.
DROP FUNCTION IF EXISTS publisher_claim_pending(int);
-- CREATE OR REPLACE cannot change a result: a claim or a rescue that does not return each job's file
-- and lane (the listener sends a first step in its job's lane) is dropped first.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_proc p
                WHERE p.oid = to_regprocedure('publisher_claim_pending(int, int, interval)') AND NOT 'lane' = ANY(p.proargnames)) THEN
        DROP FUNCTION publisher_claim_pending(int, int, interval);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_proc p
                WHERE p.oid = to_regprocedure('publisher_rescue(int, interval, interval)') AND NOT 'lane' = ANY(p.proargnames)) THEN
        DROP FUNCTION publisher_rescue(int, interval, interval);
    END IF;
END $$;
CREATE OR REPLACE FUNCTION publisher_claim_pending(p_limit int, p_per_thread int, p_alive interval)
RETURNS TABLE (job_id bigint, attempt_token uuid, stage text, file_id uuid, lane smallint)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET enable_sort = off SET jit = off AS $$
#variable_conflict use_column
DECLARE
    threads bigint;
    processes bigint;
    free bigint;  -- the room the live workers have, this call's batch aside
    paused smallint[] := ARRAY(SELECT p.lane FROM publisher_paused_lanes p);
    taken bigint := 0;
    wanted bigint;
    n bigint;
BEGIN
    SELECT coalesce(sum(w.threads), 0), count(*) FILTER (WHERE w.threads > 0) INTO threads, processes
      FROM publisher_workers w WHERE w.seen_at > now() - p_alive;
    free := threads * p_per_thread
            - (SELECT count(*) FROM publish_jobs q
                WHERE q.status = 'queued' AND (q.next_attempt_at IS NULL OR q.next_attempt_at <= now()));
    FOR claimed_lane IN 0..2 LOOP
        wanted := least(p_limit, free) - taken;
        IF claimed_lane > 0 THEN
            -- The retry and backlog lanes leave one job's room per worker process to fresh lots: a
            -- fresh lot is claimed at once, and a process has room to take it at once (its prefetch).
            wanted := least(wanted, free - processes - taken);
        END IF;
        EXIT WHEN coalesce(wanted, 0) <= 0;
        CONTINUE WHEN claimed_lane = ANY(paused);
        RETURN QUERY
        UPDATE publish_jobs j
           SET status = 'queued', attempt_token = gen_random_uuid(), stage = 'fetch', host_id = NULL,
               queued_at = now(), last_error = NULL, failure_reason = NULL
          FROM (SELECT h.id FROM publish_jobs h WHERE h.status = 'pending' AND h.lane = claimed_lane
                 ORDER BY h.id LIMIT wanted FOR UPDATE SKIP LOCKED) head
         WHERE j.id = head.id
        RETURNING j.id, j.attempt_token, j.stage, j.file_id, j.lane;
        GET DIAGNOSTICS n = ROW_COUNT;
        taken := taken + n;
    END LOOP;
END $$;

-- Whether a pending job waits in a lane that is not paused. A job that starts frees room without a
-- NOTIFY (one per start woke the listener for a claim per job): while this says yes after a claim
-- that found no room, the listener claims again on a short timer (listener/claim.py). It reads the
-- head of each lane as the claim does (the lane index, in order, so a paused lane's backlog is never
-- read), whatever the statistics say.
CREATE OR REPLACE FUNCTION publisher_pending_waits() RETURNS boolean
LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET enable_sort = off SET jit = off AS $$
DECLARE
    paused smallint[] := ARRAY(SELECT p.lane FROM publisher_paused_lanes p);
BEGIN
    FOR waiting_lane IN 0..2 LOOP
        CONTINUE WHEN waiting_lane = ANY(paused);
        -- Not EXISTS: the planner drops the order and the limit from an EXISTS, and the index with them.
        PERFORM FROM publish_jobs j WHERE j.status = 'pending' AND j.lane = waiting_lane ORDER BY j.id LIMIT 1;
        IF FOUND THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END $$;

-- Marks a job failed for good. A file that was published stays published with
-- its variants (auction_files_keep_published); otherwise it is marked failed.
CREATE OR REPLACE FUNCTION publisher_fail(p_job bigint, p_error text, p_reason text)
RETURNS void LANGUAGE sql AS $$
    WITH j AS (
        UPDATE publish_jobs
           SET status = 'failed', last_error = p_error, failure_reason = p_reason, step_started_at = NULL,
               lease_expires_at = NULL, step_deadline = NULL, next_attempt_at = NULL
         WHERE id = p_job
        RETURNING file_id
    )
    UPDATE auction_files f SET publish_status = 'failed' FROM j WHERE f.id = j.file_id;
$$;

-- The database's own failures (a lost lease, a deleted file) carry no typed reason.
CREATE OR REPLACE FUNCTION publisher_fail(p_job bigint, p_error text)
RETURNS void LANGUAGE sql AS $$
    SELECT publisher_fail(p_job, p_error, NULL::text);
$$;

-- A stage's place in a job's steps (1 fetch, 2 variant, 3 upload); NULL: no stage.
CREATE OR REPLACE FUNCTION publisher_stage_order(p_stage text) RETURNS int
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    stages constant text[] := ARRAY['fetch', 'variant', 'upload'];
BEGIN
    RETURN array_position(stages, p_stage);
END $$;

-- A worker starts a step. Its outcome:
--   'run'    the worker owns the step and holds the lease;
--   'stale'  the message belongs to an older attempt, to a stage the job has not
--            reached, or to another host than the one holding the attempt's files;
--            or the job is no longer active;
--   'busy'   another delivery of this attempt holds a live lease (a duplicate);
--   'done'   this attempt already finished this step (a duplicate delivered later);
--   'failed' the job failed here (file deleted, or a step that died used up the retries).
-- With 'run', what the step's log lines and the queue-lag metric need (NULL otherwise), so
-- that starting a step is one statement.
DROP FUNCTION IF EXISTS publisher_begin_step(bigint, uuid, text, interval);
-- CREATE OR REPLACE cannot change a result: a begin that returns its outcome alone is dropped first.
DO $$
BEGIN
    IF (SELECT p.prorettype FROM pg_proc p
         WHERE p.oid = to_regprocedure('publisher_begin_step(bigint, uuid, text, interval, text, interval)'))
       = 'text'::regtype THEN
        DROP FUNCTION publisher_begin_step(bigint, uuid, text, interval, text, interval);
    END IF;
END $$;
CREATE OR REPLACE FUNCTION publisher_begin_step(
    p_job bigint, p_token uuid, p_stage text, p_lease interval, p_host text, p_time_limit interval,
    OUT outcome text, OUT file_id uuid, OUT retry_count int, OUT since_insert float8)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    j publish_jobs%ROWTYPE;
    file_deleted boolean;
BEGIN
    SELECT * INTO j FROM publish_jobs WHERE id = p_job FOR UPDATE;
    IF NOT FOUND OR j.attempt_token IS DISTINCT FROM p_token
       OR j.status NOT IN ('queued', 'processing') THEN
        outcome := 'stale';
        RETURN;
    END IF;
    IF p_stage IS DISTINCT FROM j.stage THEN
        -- Behind: this step is done. Ahead: the job has not got there; running it
        -- would skip a step.
        outcome := CASE WHEN publisher_stage_order(p_stage) < publisher_stage_order(j.stage)
                        THEN 'done' ELSE 'stale' END;
        RETURN;
    END IF;
    IF p_stage <> 'fetch' AND j.host_id IS DISTINCT FROM p_host THEN
        outcome := 'stale';
        RETURN;
    END IF;
    IF j.step_started_at IS NOT NULL THEN
        IF j.lease_expires_at > now() THEN
            outcome := 'busy';
            RETURN;
        END IF;
        -- The previous run of this attempt died without a word (killed, out of
        -- memory). It counts, so a file that kills workers cannot loop forever.
        IF j.retry_count >= j.max_retries THEN
            PERFORM publisher_fail(p_job, format(
                'the %s step never finished (worker killed or out of memory?) %s times; giving up',
                j.stage, j.retry_count + 1));
            outcome := 'failed';
            RETURN;
        END IF;
        j.retry_count := j.retry_count + 1;
        j.last_error := format('the %s step did not finish (worker killed or out of memory?)', j.stage);
    END IF;
    SELECT deleted_at IS NOT NULL INTO file_deleted FROM auction_files WHERE id = j.file_id;
    IF file_deleted THEN
        PERFORM publisher_fail(p_job, 'the file was deleted before it was published');
        outcome := 'failed';
        RETURN;
    END IF;
    UPDATE publish_jobs
       SET status = 'processing', stage = p_stage, step_started_at = now(),
           lease_expires_at = now() + publisher_at_most(p_lease, 'lease'),
           step_deadline = now() + publisher_at_most(p_time_limit, 'step'),
           next_attempt_at = NULL, host_id = p_host,
           retry_count = j.retry_count, last_error = j.last_error,
           started_at = CASE WHEN p_stage = 'fetch' THEN now() ELSE started_at END
     WHERE id = p_job;
    UPDATE auction_files SET publish_status = 'processing'
     WHERE id = j.file_id AND publish_status NOT IN ('processing', 'published');
    outcome := 'run';
    file_id := j.file_id;
    retry_count := j.retry_count;
    since_insert := extract(epoch FROM now() - j.created_at);
END $$;

-- Keeps the leases of the steps a worker is running alive, up to each step's
-- deadline: a step stuck past it (in native code that no time limit can
-- interrupt) loses its lease and is rescued. Returns each job with whether its
-- lease was renewed, NULL when its row was locked by another session: it is
-- skipped, not waited for, since one row locked for long (a transaction left
-- open by hand, SELECT ... FOR UPDATE) would hold up the renewal of every other
-- lease of the process, and those jobs would be rescued from under their steps.
-- The next beat tries it again.
DROP FUNCTION IF EXISTS publisher_heartbeat(bigint[], uuid[], interval);
CREATE OR REPLACE FUNCTION publisher_heartbeat(p_jobs bigint[], p_tokens uuid[], p_lease interval)
RETURNS TABLE (job_id bigint, renewed boolean) LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH running AS (SELECT * FROM unnest(p_jobs, p_tokens) AS r(job_id, token)),
    free AS (
        SELECT j.id FROM publish_jobs j WHERE j.id = ANY(p_jobs) ORDER BY j.id FOR UPDATE SKIP LOCKED
    ),
    renewed AS (
        UPDATE publish_jobs j SET lease_expires_at = now() + publisher_at_most(p_lease, 'lease')
          FROM running r
         WHERE j.id = r.job_id AND j.id IN (SELECT id FROM free) AND j.attempt_token = r.token
           AND j.status = 'processing' AND j.step_started_at IS NOT NULL
           AND (j.step_deadline IS NULL OR j.step_deadline > now())
        RETURNING j.id
    )
    SELECT r.job_id,
           CASE WHEN r.job_id IN (SELECT id FROM renewed) THEN true
                WHEN r.job_id IN (SELECT id FROM free) THEN false END
      FROM running r;
$$;

-- A step finished and the job's next step begins at once, on the same host: the step's result
-- merged into the artifacts, the stage moved on, and a lease of the next step's own, in one row
-- version. The next step runs in the same worker process (publisher/jobs/local_steps.py), which
-- renews that lease while the step waits for a thread. Returns 'run', 'stale' (not this attempt's
-- step, or it was not running) or 'failed' (the file was deleted meanwhile).
DROP FUNCTION IF EXISTS publisher_end_step(bigint, uuid, text, text, jsonb);
CREATE OR REPLACE FUNCTION publisher_pass_step(
    p_job bigint, p_token uuid, p_stage text, p_next_stage text, p_artifacts jsonb, p_lease interval,
    p_time_limit interval)
RETURNS text LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    j publish_jobs%ROWTYPE;
BEGIN
    SELECT * INTO j FROM publish_jobs WHERE id = p_job FOR UPDATE;
    IF NOT FOUND OR j.attempt_token IS DISTINCT FROM p_token OR j.status <> 'processing'
       OR j.stage IS DISTINCT FROM p_stage OR j.step_started_at IS NULL
       OR publisher_stage_order(p_next_stage) IS DISTINCT FROM publisher_stage_order(p_stage) + 1 THEN
        RETURN 'stale';
    END IF;
    IF EXISTS (SELECT 1 FROM auction_files WHERE id = j.file_id AND deleted_at IS NOT NULL) THEN
        PERFORM publisher_fail(p_job, 'the file was deleted before it was published');
        RETURN 'failed';
    END IF;
    UPDATE publish_jobs
       SET stage = p_next_stage, step_started_at = now(),
           lease_expires_at = now() + publisher_at_most(p_lease, 'lease'),
           step_deadline = now() + publisher_at_most(p_time_limit, 'step'),
           artifacts = coalesce(artifacts, '{}'::jsonb) || coalesce(p_artifacts, '{}'::jsonb)
     WHERE id = p_job;
    RETURN 'run';
END $$;

-- A step begun by publisher_pass_step that its worker process will not run (it stops): the job
-- waits for it between steps, as for a message in the host's queue, which the caller sends in
-- the same transaction. Whether this attempt's step was begun and is now handed back.
CREATE OR REPLACE FUNCTION publisher_hand_back_step(p_job bigint, p_token uuid, p_stage text)
RETURNS boolean LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH handed AS (
        UPDATE publish_jobs
           SET step_started_at = NULL, lease_expires_at = NULL, step_deadline = NULL
         WHERE id = p_job AND attempt_token = p_token AND status = 'processing'
           AND stage = p_stage AND step_started_at IS NOT NULL
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM handed);
$$;

-- A step raised. Returns 'retry' (the same step runs again after a backoff, on
-- the same host), 'failed' (permanent, or retries used up) or 'stale'.
CREATE OR REPLACE FUNCTION publisher_record_failure(
    p_job bigint, p_token uuid, p_error text, p_permanent boolean, p_reason text)
RETURNS text LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    j publish_jobs%ROWTYPE;
BEGIN
    SELECT * INTO j FROM publish_jobs WHERE id = p_job FOR UPDATE;
    IF NOT FOUND OR j.attempt_token IS DISTINCT FROM p_token
       OR j.status NOT IN ('queued', 'processing') THEN
        RETURN 'stale';
    END IF;
    IF p_permanent OR j.retry_count >= j.max_retries THEN
        PERFORM publisher_fail(p_job, p_error, p_reason);
        RETURN 'failed';
    END IF;
    UPDATE publish_jobs
       SET status = 'queued', retry_count = retry_count + 1, last_error = p_error, failure_reason = p_reason,
           step_started_at = NULL, lease_expires_at = NULL, step_deadline = NULL
     WHERE id = p_job;
    RETURN 'retry';
END $$;

-- One signature: callers without a typed reason pass NULL.
DROP FUNCTION IF EXISTS publisher_record_failure(bigint, uuid, text, boolean);

CREATE OR REPLACE FUNCTION publisher_schedule_retry(p_job bigint, p_token uuid, p_delay interval)
RETURNS void LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    UPDATE publish_jobs SET next_attempt_at = now() + publisher_at_most(p_delay, 'delay')
     WHERE id = p_job AND attempt_token = p_token AND status = 'queued';
$$;

-- The last step: job completed and file published, in one transaction, and
-- only by the attempt that owns the upload step, with the imaging facts the front
-- end needs (the recipe, placeholder and dominant colour of 004_imaging.sql; kept
-- as they were when p_recipe is NULL). Returns 'completed', 'stale' (another
-- attempt owns the job), or 'deleted' (the file was soft-deleted while the job
-- ran: it is not published and the job fails).
DROP FUNCTION IF EXISTS publisher_finalize(bigint, uuid, jsonb, int, int);
CREATE OR REPLACE FUNCTION publisher_finalize(
    p_job bigint, p_token uuid, p_variants jsonb, p_width int, p_height int,
    p_recipe text DEFAULT NULL, p_placeholder text DEFAULT NULL, p_dominant_color text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    j publish_jobs%ROWTYPE;
    bad_key text;
BEGIN
    SELECT * INTO j FROM publish_jobs WHERE id = p_job FOR UPDATE;
    IF NOT FOUND OR j.attempt_token IS DISTINCT FROM p_token OR j.status <> 'processing'
       OR j.stage <> 'upload' OR j.step_started_at IS NULL THEN
        RETURN 'stale';
    END IF;
    -- The caller may be any holder of the worker role, which can read every token:
    -- it publishes only objects this job's upload recorded before their PUT, in the
    -- file's own folder (publisher_track_object, 011). Another file's key, or one
    -- nothing tracks (so maintenance would never remove it), is refused.
    bad_key := (SELECT k FROM publisher_variant_keys(p_variants) AS k
                 WHERE NOT publisher_key_in_folder(k, j.file_id)
                    OR NOT EXISTS (SELECT 1 FROM publisher_objects o
                                    WHERE o.key = k AND o.file_id = j.file_id AND o.job_id = p_job)
                 LIMIT 1);
    IF bad_key IS NOT NULL THEN
        RAISE EXCEPTION 'job % may not publish key %: not one its upload tracked in the folder of file %',
            p_job, left(bad_key, 200), j.file_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM 1 FROM auction_files f WHERE f.id = j.file_id AND f.deleted_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM publisher_fail(p_job, 'the file was deleted while its job ran; not published');
        RETURN 'deleted';
    END IF;
    UPDATE publish_jobs
       SET status = 'completed', completed_at = now(), step_started_at = NULL,
           lease_expires_at = NULL, step_deadline = NULL, next_attempt_at = NULL
     WHERE id = p_job;
    UPDATE auction_files
       SET publish_status = 'published', published_at = now(), variants = p_variants,
           width = p_width, height = p_height, recipe = coalesce(p_recipe, recipe),
           placeholder = CASE WHEN p_recipe IS NULL THEN placeholder ELSE p_placeholder END,
           dominant_color = CASE WHEN p_recipe IS NULL THEN dominant_color ELSE p_dominant_color END
     WHERE id = j.file_id;
    RETURN 'completed';
END $$;

-- Starts a job again from its first step under a new token, on any host.
CREATE OR REPLACE FUNCTION publisher_restart(p_job bigint, p_retry_count int, p_error text)
RETURNS TABLE (job_id bigint, attempt_token uuid, stage text) LANGUAGE sql AS $$
    UPDATE publish_jobs p
       SET status = 'queued', stage = 'fetch', attempt_token = gen_random_uuid(), host_id = NULL,
           artifacts = NULL, retry_count = p_retry_count, last_error = p_error,
           step_started_at = NULL, lease_expires_at = NULL, step_deadline = NULL,
           next_attempt_at = NULL, queued_at = now()
     WHERE p.id = p_job
    RETURNING p.id, p.attempt_token, p.stage;
$$;

-- A step found what the attempt keeps on its host unusable: its scratch files are
-- gone (the volume was emptied, another worker group shares the host's queue)
-- or the disk is full. That is the host's failure, not the job's: the job starts
-- again from its first step under a new token, on any host, and no retry is
-- charged. A start over for files gone counts in scratch_restarts (p_counted),
-- and past max_restarts (here, not the caller's to choose) the job fails; a full disk counts nothing (it waits,
-- p_delay (capped) before its first step may run, for space or for another host), for at
-- most 12 hours from its first such start over: then the job fails for good
-- (failure_reason no_space), a file no host has room for cannot loop forever.
-- Returns ('restarted', the new token), ('failed', NULL) or ('stale', NULL).
DROP FUNCTION IF EXISTS publisher_start_over(bigint, uuid, text, text, boolean, int, interval);
CREATE OR REPLACE FUNCTION publisher_start_over(
    p_job bigint, p_token uuid, p_error text, p_reason text, p_counted boolean, p_delay interval)
RETURNS TABLE (outcome text, attempt_token uuid) LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    j publish_jobs%ROWTYPE;
    new_token uuid;
    max_restarts constant int := 3;  -- start overs of one job for files gone before it fails
BEGIN
    SELECT * INTO j FROM publish_jobs p WHERE p.id = p_job FOR UPDATE;
    IF NOT FOUND OR j.attempt_token IS DISTINCT FROM p_token OR j.status NOT IN ('queued', 'processing') THEN
        RETURN QUERY SELECT 'stale'::text, NULL::uuid;
        RETURN;
    END IF;
    IF p_counted AND j.scratch_restarts >= max_restarts THEN
        PERFORM publisher_fail(p_job, format('%s; started over %s times for it, giving up',
                                             p_error, j.scratch_restarts), p_reason);
        RETURN QUERY SELECT 'failed'::text, NULL::uuid;
        RETURN;
    END IF;
    IF NOT p_counted AND j.no_space_since < now() - interval '12 hours' THEN
        PERFORM publisher_fail(p_job, format('%s; waited for scratch space since %s, giving up',
                                             p_error, j.no_space_since), p_reason);
        RETURN QUERY SELECT 'failed'::text, NULL::uuid;
        RETURN;
    END IF;
    SELECT r.attempt_token INTO new_token FROM publisher_restart(p_job, j.retry_count, p_error) r;
    UPDATE publish_jobs p
       SET failure_reason = p_reason, next_attempt_at = now() + publisher_at_most(p_delay, 'delay'),
           scratch_restarts = j.scratch_restarts + CASE WHEN p_counted THEN 1 ELSE 0 END,
           no_space_since = CASE WHEN p_counted THEN j.no_space_since ELSE coalesce(j.no_space_since, now()) END
     WHERE p.id = p_job;
    RETURN QUERY SELECT 'restarted'::text, new_token;
END $$;

-- A host short of scratch space puts off a job's first step, which it has not begun:
-- the step may run p_delay later, here or on another host; nothing is charged.
-- False: the message is of an attempt that no longer waits for its first step.
CREATE OR REPLACE FUNCTION publisher_defer_fetch(p_job bigint, p_token uuid, p_delay interval)
RETURNS boolean LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH deferred AS (
        UPDATE publish_jobs SET next_attempt_at = now() + publisher_at_most(p_delay, 'delay')
         WHERE id = p_job AND attempt_token = p_token AND status = 'queued' AND stage = 'fetch'
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM deferred);
$$;

-- Jobs to hand out again, each from its first step under a new token:
-- 1. a running step whose lease ran out (its worker died, lost the database, or
--    is stuck past the step's deadline): counts as an attempt;
-- 2. a job waiting on a worker host (its next step, or a retry there) whose host
--    stopped beating for p_alive, or whose message has waited p_handoff (lost):
--    no step ran, nothing is counted;
-- 3. a queued first step untouched for p_handoff (the broker lost its message):
--    no step ran, nothing is counted; the old message, should it turn up, is stale.
DROP FUNCTION IF EXISTS publisher_rescue_expired(int, interval);
CREATE OR REPLACE FUNCTION publisher_rescue(p_limit int, p_alive interval, p_handoff interval)
RETURNS TABLE (job_id bigint, attempt_token uuid, stage text, file_id uuid, lane smallint)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    j publish_jobs%ROWTYPE;
BEGIN
    FOR j IN
        SELECT * FROM publish_jobs r
         WHERE r.status = 'processing' AND r.step_started_at IS NOT NULL AND r.lease_expires_at < now()
         ORDER BY r.lease_expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED
    LOOP
        IF j.retry_count >= j.max_retries THEN
            PERFORM publisher_fail(j.id, format(
                'no worker finished the %s step before its lease ran out, %s times; giving up',
                j.stage, j.retry_count + 1));
            CONTINUE;
        END IF;
        RETURN QUERY SELECT r.*, j.file_id, j.lane FROM publisher_restart(j.id, j.retry_count + 1, format(
            'the %s step on host %s did not finish before its lease ran out (worker lost, or stuck past '
            'its time limit); started again', j.stage, coalesce(j.host_id, '?'))) r;
    END LOOP;
    FOR j IN
        SELECT * FROM publish_jobs p
         WHERE p.status IN ('queued', 'processing') AND p.stage <> 'fetch' AND p.step_started_at IS NULL
           AND (NOT publisher_host_alive(p.host_id, p_alive)
                OR greatest(p.updated_at, p.next_attempt_at) < now() - p_handoff)
         ORDER BY p.id LIMIT p_limit FOR UPDATE SKIP LOCKED
    LOOP
        RETURN QUERY SELECT r.*, j.file_id, j.lane FROM publisher_restart(j.id, j.retry_count, j.last_error) r;
    END LOOP;
    RETURN QUERY
        UPDATE publish_jobs p
           SET attempt_token = gen_random_uuid(), next_attempt_at = NULL, queued_at = now()
          FROM (SELECT q.id FROM publish_jobs q
                 WHERE q.status = 'queued' AND q.stage = 'fetch'
                   AND greatest(q.updated_at, q.next_attempt_at) < now() - p_handoff
                 ORDER BY q.id LIMIT p_limit FOR UPDATE SKIP LOCKED) lost
         WHERE p.id = lost.id
        RETURNING p.id, p.attempt_token, p.stage, p.file_id, p.lane;
END $$;

-- ------------------------------------------------- operator transitions
-- publisher-admin and the web page call these (as publisher_oncall, 900_roles.sql);
-- each takes the workers' row locks and says what it changed.

-- The file's active job (one at most: publish_jobs_one_active_per_file); NULL: none.
CREATE OR REPLACE FUNCTION publisher_active_job(p_file uuid) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT p.id FROM publish_jobs p WHERE p.file_id = p_file AND p.status IN ('pending', 'queued', 'processing');
$$;

-- Whether a job has not started a step: pending, or queued and waiting for a worker or a retry. What
-- an operator may cancel (one job, or in bulk).
CREATE OR REPLACE FUNCTION publisher_job_waiting(j publish_jobs) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT j.status = 'pending' OR (j.status = 'queued' AND j.step_started_at IS NULL);
$$;

-- An operator's transition of one job to p_to, 'pending' (retry) or 'cancelled' (cancel),
-- under the job's row lock. A job that does not exist, or a transition the operator
-- may not make, comes back unchanged with the reason.
CREATE OR REPLACE FUNCTION publisher_admin_transition(p_job bigint, p_to text)
RETURNS TABLE (changed boolean, job_id bigint, file_id uuid, message text)
LANGUAGE plpgsql AS $$
DECLARE
    j publish_jobs%ROWTYPE;
    active bigint;
    refused text;
BEGIN
    SELECT * INTO j FROM publish_jobs WHERE id = p_job FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, p_job, NULL::uuid, format('no job %s', p_job);
        RETURN;
    END IF;
    IF p_to = 'pending' THEN
        active := publisher_active_job(j.file_id);
        refused := CASE
            WHEN j.status IN ('pending', 'queued', 'processing') THEN
                format('job %s is %s already; nothing changed', j.id, j.status)
            WHEN EXISTS (SELECT 1 FROM auction_files f WHERE f.id = j.file_id AND f.deleted_at IS NOT NULL) THEN
                format('file %s was deleted; job %s not retried', j.file_id, j.id)
            WHEN active IS NOT NULL THEN
                format('file %s already has active job %s; job %s not retried', j.file_id, active, j.id)
        END;
    ELSIF p_to = 'cancelled' THEN
        refused := CASE
            WHEN publisher_job_waiting(j) THEN NULL
            WHEN j.status IN ('processing', 'queued') THEN
                format('job %s is running its %s step; not cancelled', j.id, j.stage)
            ELSE format('job %s is %s; nothing to cancel', j.id, j.status)
        END;
    ELSE
        RAISE EXCEPTION 'an operator moves a job to pending or cancelled, not to %', p_to;
    END IF;
    IF refused IS NOT NULL THEN
        RETURN QUERY SELECT false, j.id, j.file_id, refused;
        RETURN;
    END IF;
    IF p_to = 'pending' THEN
        -- The update trigger resets the attempt (token, stage, retry count) and sets the retry lane.
        UPDATE publish_jobs SET status = 'pending' WHERE id = j.id;
        RETURN QUERY SELECT true, j.id, j.file_id,
            format('job %s: %s -> pending (was: %s)', j.id, j.status, coalesce(j.last_error, 'no error'));
    ELSE
        UPDATE publish_jobs
           SET status = 'cancelled', last_error = 'cancelled by an operator', failure_reason = NULL,
               step_started_at = NULL, lease_expires_at = NULL, next_attempt_at = NULL, step_deadline = NULL
         WHERE id = j.id;
        -- A file published by an earlier job stays published.
        UPDATE auction_files
           SET publish_status = CASE WHEN published_at IS NOT NULL AND variants IS NOT NULL
                                     THEN 'published' ELSE 'failed' END
         WHERE id = j.file_id;
        RETURN QUERY SELECT true, j.id, j.file_id, format('job %s: %s -> cancelled', j.id, j.status);
    END IF;
END $$;

-- Runs one job again from its first step (a failed job, or a completed one
-- to publish again). Refused while the job is active, when the file was
-- deleted, or when the file has another active job.
CREATE OR REPLACE FUNCTION publisher_admin_retry(p_job bigint)
RETURNS TABLE (changed boolean, job_id bigint, file_id uuid, message text)
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT * FROM publisher_admin_transition(p_job, 'pending');
$$;

-- The console's filter of jobs, one rule for its list and for the bulk actions on what the list
-- shows (publisher/jobs/store/filters.py): an argument that is NULL filters nothing. p_reason is a
-- typed failure_reason, or a literal part of last_error ignoring case; p_key_like a LIKE pattern
-- of the file's RAID key. Plain SQL, so that it is inlined into the statement that calls it and
-- its conditions reach the indexes.
CREATE OR REPLACE FUNCTION publisher_job_matches(j publish_jobs, f auction_files, p_status text, p_reason text,
                                                 p_file uuid, p_key_like text, p_since timestamptz)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT (p_status IS NULL OR j.status = p_status)
       AND (p_file IS NULL OR j.file_id = p_file)
       AND (p_key_like IS NULL OR f.raid_key LIKE p_key_like)
       AND (p_reason IS NULL OR j.failure_reason = p_reason
            OR strpos(lower(coalesce(j.last_error, '')), lower(p_reason)) > 0)
       AND (p_since IS NULL OR j.updated_at >= p_since);
$$;

-- The failed jobs an operator's retry-failed would run again: the failed jobs the filter
-- (publisher_job_matches) matches, unchanged since p_as_of (NULL: whenever; a bulk action's
-- preview counted them then, so a job that fails, or is run again, after it is not acted on unseen),
-- when each is the latest job of a file that is not deleted. A latest job is never
-- behind an active one (one active job per file, and job ids only grow), so none
-- of these files has an active job. Cancelled jobs are not failed ones: never picked.
DROP FUNCTION IF EXISTS publisher_admin_failed_to_retry(text);
CREATE OR REPLACE FUNCTION publisher_admin_failed_to_retry(p_reason text, p_status text DEFAULT NULL,
                                                           p_file uuid DEFAULT NULL, p_key_like text DEFAULT NULL,
                                                           p_as_of timestamptz DEFAULT NULL)
RETURNS TABLE (job_id bigint, file_id uuid, failure_reason text, last_error text, updated_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT j.id, j.file_id, j.failure_reason, j.last_error, j.updated_at FROM publish_jobs j
      JOIN auction_files f ON f.id = j.file_id AND f.deleted_at IS NULL
     WHERE j.status = 'failed' AND publisher_job_matches(j, f, p_status, p_reason, p_file, p_key_like, NULL)
       AND (p_as_of IS NULL OR j.updated_at <= p_as_of)
       -- its file's latest job: one index probe per failed job (NOT EXISTS would hash the whole table)
       AND j.id = (SELECT max(n.id) FROM publish_jobs n WHERE n.file_id = j.file_id)
     ORDER BY j.id;
$$;

-- Runs them again. Returns the jobs it changed.
DROP FUNCTION IF EXISTS publisher_admin_retry_failed(text);
CREATE OR REPLACE FUNCTION publisher_admin_retry_failed(p_reason text, p_status text DEFAULT NULL,
                                                        p_file uuid DEFAULT NULL, p_key_like text DEFAULT NULL,
                                                        p_as_of timestamptz DEFAULT NULL)
RETURNS TABLE (job_id bigint, file_id uuid, failure_reason text, last_error text)
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH picked AS (
        SELECT j.id, j.failure_reason, j.last_error FROM publish_jobs j
         WHERE j.id IN (SELECT c.job_id
                          FROM publisher_admin_failed_to_retry(p_reason, p_status, p_file, p_key_like, p_as_of) c)
           AND j.status = 'failed'
         ORDER BY j.id
           FOR UPDATE OF j SKIP LOCKED
    )
    UPDATE publish_jobs j SET status = 'pending'  -- the trigger sets the retry lane
      FROM picked WHERE j.id = picked.id
    RETURNING j.id, j.file_id, picked.failure_reason, picked.last_error;
$$;

-- The jobs a bulk cancel would cancel: those the filter matches that have not started a step
-- (what publisher_admin_cancel cancels: publisher_job_waiting), unchanged since p_as_of as above.
CREATE OR REPLACE FUNCTION publisher_admin_waiting_to_cancel(p_reason text, p_status text DEFAULT NULL,
                                                             p_file uuid DEFAULT NULL, p_key_like text DEFAULT NULL,
                                                             p_as_of timestamptz DEFAULT NULL)
RETURNS TABLE (job_id bigint, file_id uuid, status text, last_error text, updated_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT j.id, j.file_id, j.status, j.last_error, j.updated_at FROM publish_jobs j
      JOIN auction_files f ON f.id = j.file_id
     WHERE j.status IN ('pending', 'queued') AND publisher_job_waiting(j)
       AND publisher_job_matches(j, f, p_status, p_reason, p_file, p_key_like, NULL)
       AND (p_as_of IS NULL OR j.updated_at <= p_as_of)
     ORDER BY j.id;
$$;

-- Cancels a job that has not started a step yet (pending, or queued waiting
-- for a worker or a retry): it becomes cancelled, which no bulk action retries,
-- and its queued messages go stale. A job in a step is refused: it may be
-- uploading; let it finish or fail. `retry JOB_ID` may still run it again.
CREATE OR REPLACE FUNCTION publisher_admin_cancel(p_job bigint)
RETURNS TABLE (changed boolean, job_id bigint, file_id uuid, message text)
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT * FROM publisher_admin_transition(p_job, 'cancelled');
$$;

-- Cancels them, each as publisher_admin_cancel does (a job that started a step meanwhile is
-- refused, unchanged). Returns every job it considered. Never more than a preview counted: with
-- p_as_of NULL it cancels nothing.
CREATE OR REPLACE FUNCTION publisher_admin_cancel_waiting(p_reason text, p_status text DEFAULT NULL,
                                                          p_file uuid DEFAULT NULL, p_key_like text DEFAULT NULL,
                                                          p_as_of timestamptz DEFAULT NULL)
RETURNS TABLE (changed boolean, job_id bigint, file_id uuid, message text)
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT t.* FROM publisher_admin_waiting_to_cancel(p_reason, p_status, p_file, p_key_like,
                                                      coalesce(p_as_of, '-infinity')) w
     CROSS JOIN LATERAL publisher_admin_transition(w.job_id, 'cancelled') t;
$$;

COMMIT;
