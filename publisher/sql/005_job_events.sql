-- An audit trail of job status transitions: one row each time a job's status
-- changes, written by the database itself whoever makes the change. It answers
-- "how many times was this job completed?" (exactly once per run, whatever was
-- killed or delivered twice) and "what happened to job N, and when?".
-- Re-runnable: creates what is missing, never drops data.
BEGIN;
SET LOCAL client_min_messages = warning;
-- One deploy at a time; the lock is held to COMMIT.
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

CREATE TABLE IF NOT EXISTS publish_job_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        bigint NOT NULL,
    file_id       uuid NOT NULL,
    from_status   text,            -- NULL for the job's creation
    to_status     text NOT NULL,
    stage         text,
    retry_count   int,
    attempt_token uuid,
    last_error    text,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS publish_job_events_job_idx ON publish_job_events (job_id, id);
-- Old events are deleted by age: DELETE FROM publish_job_events WHERE at < now() - interval '30 days'.
CREATE INDEX IF NOT EXISTS publish_job_events_at_idx ON publish_job_events (at);

CREATE OR REPLACE FUNCTION publish_jobs_record_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status THEN
        RETURN NULL;
    END IF;
    INSERT INTO publish_job_events (job_id, file_id, from_status, to_status, stage, retry_count,
                                    attempt_token, last_error)
    VALUES (NEW.id, NEW.file_id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END, NEW.status,
            NEW.stage, NEW.retry_count, NEW.attempt_token, NEW.last_error);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS publish_jobs_record_event ON publish_jobs;
CREATE TRIGGER publish_jobs_record_event AFTER INSERT OR UPDATE OF status ON publish_jobs
    FOR EACH ROW EXECUTE FUNCTION publish_jobs_record_event();

COMMIT;
