-- The job state machine, named once, here.
--
--   pending ──claim──▶ queued ──begin_step──▶ processing ──finalize──▶ completed
--                        ▲                        │
--                        └──── transient failure ─┤ (retry_count < max_retries,
--                              or lease expired   │  a new attempt resumes at its stage)
--                                                 ▼
--                                               failed  (permanent error, or retries used up)
--   failed/completed ──operator sets pending, or raises max_retries──▶ pending
--
-- Every attempt carries a token (attempt_token). A message whose token is not
-- the job's current one is stale: it may run no step and finalize nothing.
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
    IF NEW.status = 'pending' AND OLD.status <> 'pending' THEN
        IF NOT retries_raised AND NEW.retry_count = OLD.retry_count THEN
            NEW.retry_count := 0;
        END IF;
        NEW.attempt_token := NULL;  -- in-flight messages of the old attempt go stale
        NEW.stage := 'fetch';
        NEW.step_started_at := NULL;
        NEW.lease_expires_at := NULL;
        NEW.next_attempt_at := NULL;
        NEW.completed_at := NULL;
        NEW.artifacts := NULL;
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS publish_jobs_before_update ON publish_jobs;
CREATE TRIGGER publish_jobs_before_update BEFORE UPDATE ON publish_jobs
    FOR EACH ROW EXECUTE FUNCTION publish_jobs_before_update();

-- A runnable job wakes the listener. The file follows its latest job.
CREATE OR REPLACE FUNCTION publish_jobs_notify_runnable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'pending' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'pending') THEN
        UPDATE auction_files SET publish_status = 'pending'
         WHERE id = NEW.file_id AND publish_status <> 'pending';
        PERFORM pg_notify('publish_jobs', NEW.id::text);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS publish_jobs_notify_runnable ON publish_jobs;
-- Not "UPDATE OF status": that misses a status set by the BEFORE trigger above.
CREATE TRIGGER publish_jobs_notify_runnable AFTER INSERT OR UPDATE ON publish_jobs
    FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION publish_jobs_notify_runnable();

-- pending -> queued. Run inside the transaction that also enqueues the
-- messages: if enqueueing fails, the claim rolls back and the job stays pending.
CREATE OR REPLACE FUNCTION publisher_claim_pending(p_limit int)
RETURNS TABLE (job_id bigint, attempt_token uuid, stage text)
LANGUAGE sql AS $$
    WITH picked AS (
        SELECT id FROM publish_jobs WHERE status = 'pending'
         ORDER BY id LIMIT p_limit FOR UPDATE SKIP LOCKED
    )
    UPDATE publish_jobs j
       SET status = 'queued', attempt_token = gen_random_uuid(), stage = 'fetch',
           queued_at = now(), last_error = NULL
      FROM picked WHERE j.id = picked.id
    RETURNING j.id, j.attempt_token, j.stage;
$$;

-- Marks a job failed for good, with its file.
CREATE OR REPLACE FUNCTION publisher_fail(p_job bigint, p_error text)
RETURNS void LANGUAGE sql AS $$
    WITH j AS (
        UPDATE publish_jobs
           SET status = 'failed', last_error = p_error, step_started_at = NULL,
               lease_expires_at = NULL, next_attempt_at = NULL
         WHERE id = p_job
        RETURNING file_id
    )
    UPDATE auction_files f SET publish_status = 'failed' FROM j WHERE f.id = j.file_id;
$$;

-- A worker starts a step. Returns
--   'run'    the worker owns the step and holds the lease;
--   'stale'  the message belongs to an older attempt, or the job is no longer active;
--   'busy'   another delivery of this attempt holds a live lease (a duplicate);
--   'done'   this attempt already finished this step (a duplicate delivered later);
--   'failed' the job failed here (file deleted, or a step that died used up the retries).
CREATE OR REPLACE FUNCTION publisher_begin_step(p_job bigint, p_token uuid, p_stage text, p_lease interval)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    j publish_jobs%ROWTYPE;
    file_deleted boolean;
BEGIN
    SELECT * INTO j FROM publish_jobs WHERE id = p_job FOR UPDATE;
    IF NOT FOUND OR j.attempt_token IS DISTINCT FROM p_token
       OR j.status NOT IN ('queued', 'processing') THEN
        RETURN 'stale';
    END IF;
    -- The job is past this step: running it again would move the job back.
    IF array_position(ARRAY['fetch', 'variant', 'upload'], p_stage)
       < array_position(ARRAY['fetch', 'variant', 'upload'], j.stage) THEN
        RETURN 'done';
    END IF;
    IF j.step_started_at IS NOT NULL THEN
        IF j.lease_expires_at > now() THEN
            RETURN 'busy';
        END IF;
        -- The previous run of this attempt died without a word (killed, out of
        -- memory). It counts, so a file that kills workers cannot loop forever.
        IF j.retry_count >= j.max_retries THEN
            PERFORM publisher_fail(p_job, format(
                'the %s step never finished (worker killed or out of memory?) %s times; giving up',
                j.stage, j.retry_count + 1));
            RETURN 'failed';
        END IF;
        j.retry_count := j.retry_count + 1;
        j.last_error := format('the %s step did not finish (worker killed or out of memory?)', j.stage);
    END IF;
    SELECT deleted_at IS NOT NULL INTO file_deleted FROM auction_files WHERE id = j.file_id;
    IF file_deleted THEN
        PERFORM publisher_fail(p_job, 'the file was deleted before it was published');
        RETURN 'failed';
    END IF;
    UPDATE publish_jobs
       SET status = 'processing', stage = p_stage, step_started_at = now(),
           lease_expires_at = now() + p_lease, next_attempt_at = NULL,
           retry_count = j.retry_count, last_error = j.last_error,
           started_at = CASE WHEN p_stage = 'fetch' THEN now() ELSE started_at END
     WHERE id = p_job;
    UPDATE auction_files SET publish_status = 'processing'
     WHERE id = j.file_id AND publish_status <> 'processing';
    RETURN 'run';
END $$;

-- Keeps the leases of the steps a worker is running alive.
CREATE OR REPLACE FUNCTION publisher_heartbeat(p_jobs bigint[], p_tokens uuid[], p_lease interval)
RETURNS int LANGUAGE sql AS $$
    WITH running AS (SELECT * FROM unnest(p_jobs, p_tokens) AS r(job_id, token)),
    renewed AS (
        UPDATE publish_jobs j SET lease_expires_at = now() + p_lease
          FROM running r
         WHERE j.id = r.job_id AND j.attempt_token = r.token
           AND j.status = 'processing' AND j.step_started_at IS NOT NULL
        RETURNING 1
    )
    SELECT count(*)::int FROM renewed;
$$;

-- A step finished; the next one is queued. The lease now covers the hand-off,
-- which normally takes moments: it only expires if the next message is lost.
CREATE OR REPLACE FUNCTION publisher_end_step(
    p_job bigint, p_token uuid, p_next_stage text, p_handoff interval, p_artifacts jsonb)
RETURNS boolean LANGUAGE sql AS $$
    WITH done AS (
        UPDATE publish_jobs
           SET stage = p_next_stage, step_started_at = NULL,
               lease_expires_at = now() + p_handoff,
               artifacts = coalesce(artifacts, '{}'::jsonb) || coalesce(p_artifacts, '{}'::jsonb)
         WHERE id = p_job AND attempt_token = p_token AND status = 'processing'
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM done);
$$;

-- A step raised. Returns 'retry' (the same step runs again after a backoff),
-- 'failed' (permanent, or retries used up) or 'stale'.
CREATE OR REPLACE FUNCTION publisher_record_failure(
    p_job bigint, p_token uuid, p_error text, p_permanent boolean)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    j publish_jobs%ROWTYPE;
BEGIN
    SELECT * INTO j FROM publish_jobs WHERE id = p_job FOR UPDATE;
    IF NOT FOUND OR j.attempt_token IS DISTINCT FROM p_token
       OR j.status NOT IN ('queued', 'processing') THEN
        RETURN 'stale';
    END IF;
    IF p_permanent OR j.retry_count >= j.max_retries THEN
        PERFORM publisher_fail(p_job, p_error);
        RETURN 'failed';
    END IF;
    UPDATE publish_jobs
       SET status = 'queued', retry_count = retry_count + 1, last_error = p_error,
           step_started_at = NULL, lease_expires_at = NULL
     WHERE id = p_job;
    RETURN 'retry';
END $$;

CREATE OR REPLACE FUNCTION publisher_schedule_retry(p_job bigint, p_token uuid, p_delay interval)
RETURNS void LANGUAGE sql AS $$
    UPDATE publish_jobs SET next_attempt_at = now() + p_delay
     WHERE id = p_job AND attempt_token = p_token AND status = 'queued';
$$;

-- The last step: job completed and file published, in one statement, and only
-- by the attempt that owns the job.
CREATE OR REPLACE FUNCTION publisher_finalize(
    p_job bigint, p_token uuid, p_variants jsonb, p_width int, p_height int)
RETURNS boolean LANGUAGE sql AS $$
    WITH j AS (
        UPDATE publish_jobs
           SET status = 'completed', completed_at = now(), step_started_at = NULL,
               lease_expires_at = NULL, next_attempt_at = NULL
         WHERE id = p_job AND attempt_token = p_token AND status = 'processing'
        RETURNING file_id
    ),
    f AS (
        UPDATE auction_files f
           SET publish_status = 'published', published_at = now(), variants = p_variants,
               width = p_width, height = p_height
          FROM j WHERE f.id = j.file_id
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM f);
$$;

-- Processing jobs whose lease ran out: the worker died or lost the database.
-- Each counts as a failed attempt; the survivors resume at the stage they
-- reached, under a new token.
-- Queued jobs untouched for p_handoff (past their next attempt time): their
-- message never reached a worker (the broker lost it, or a retry could not be
-- enqueued while the database was away). No attempt ran, so none is counted;
-- they are handed out again under a new token, and the old message, should it
-- turn up, is stale.
DROP FUNCTION IF EXISTS publisher_rescue_expired(int);
CREATE OR REPLACE FUNCTION publisher_rescue_expired(p_limit int, p_handoff interval DEFAULT '15 minutes')
RETURNS TABLE (job_id bigint, attempt_token uuid, stage text)
LANGUAGE plpgsql AS $$
DECLARE
    j publish_jobs%ROWTYPE;
BEGIN
    FOR j IN
        SELECT * FROM publish_jobs
         WHERE status = 'processing' AND lease_expires_at < now()
         ORDER BY lease_expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED
    LOOP
        IF j.retry_count >= j.max_retries THEN
            PERFORM publisher_fail(j.id, format(
                'no worker finished the %s step before its lease ran out, %s times; giving up',
                j.stage, j.retry_count + 1));
            CONTINUE;
        END IF;
        UPDATE publish_jobs p
           SET status = 'queued', attempt_token = gen_random_uuid(),
               retry_count = p.retry_count + 1, step_started_at = NULL, lease_expires_at = NULL,
               last_error = format('no worker finished the %s step before its lease ran out (worker lost?)', j.stage)
         WHERE p.id = j.id
        RETURNING p.id, p.attempt_token, p.stage INTO job_id, attempt_token, stage;
        RETURN NEXT;
    END LOOP;
    RETURN QUERY
        UPDATE publish_jobs p
           SET attempt_token = gen_random_uuid(), next_attempt_at = NULL, queued_at = now()
          FROM (SELECT id FROM publish_jobs
                 WHERE status = 'queued'
                   AND greatest(updated_at, next_attempt_at) < now() - p_handoff
                 ORDER BY id LIMIT p_limit FOR UPDATE SKIP LOCKED) lost
         WHERE p.id = lost.id
        RETURNING p.id, p.attempt_token, p.stage;
END $$;

COMMIT;
