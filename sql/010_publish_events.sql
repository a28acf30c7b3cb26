-- Completion events: when a job ends (completed, failed, cancelled), the
-- transaction that ended it also sends NOTIFY publish_events with a JSON payload
-- (docs/events.md), and, when the listener has a webhook configured, writes the
-- same event to an outbox that the listener delivers from, at least once.
-- Re-runnable: creates what is missing, never drops data.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

CREATE TABLE IF NOT EXISTS publish_event_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    gave_up_at      timestamptz,
    last_error      text
);
CREATE INDEX IF NOT EXISTS publish_event_outbox_due_idx
    ON publish_event_outbox (next_attempt_at) WHERE delivered_at IS NULL AND gave_up_at IS NULL;

-- The event of a job that just ended, read at COMMIT (a deferred trigger), when
-- the file row holds what the same transaction finalized. PL/pgSQL, not SQL: a SQL
-- function the planner cannot inline is parsed and planned again at every call (every
-- job), where PL/pgSQL keeps its plan for the session.
CREATE OR REPLACE FUNCTION publisher_job_event(p_job bigint, p_event uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT jsonb_strip_nulls(jsonb_build_object(
               'event_id', p_event,
               'type', 'publish.' || j.status,
               'job_id', j.id,
               'file_id', j.file_id,
               'raid_key', f.raid_key,
               'status', j.status,
               'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'variants', CASE WHEN j.status = 'completed' THEN (
                   SELECT jsonb_object_agg(name, jsonb_build_object('url', v -> 'url', 'width', v -> 'width',
                                                                    'height', v -> 'height', 'bytes', v -> 'bytes'))
                     FROM jsonb_each(f.variants) AS e(name, v) WHERE jsonb_typeof(v) = 'object') END,
               'error', CASE WHEN j.status <> 'completed' THEN
                   jsonb_build_object('reason', j.failure_reason, 'message', j.last_error) END))
      FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id
     WHERE j.id = p_job);
END $$;

-- SECURITY DEFINER: whoever ends the job (a worker, an operator's cancel) need
-- not be granted the outbox.
CREATE OR REPLACE FUNCTION publish_jobs_send_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    event jsonb;
    status text;
BEGIN
    -- The job's status at COMMIT: a job ended and re-opened in one transaction sends nothing.
    SELECT j.status INTO status FROM publish_jobs j WHERE j.id = NEW.id;
    IF status IS DISTINCT FROM NEW.status THEN
        RETURN NULL;
    END IF;
    event := publisher_job_event(NEW.id, gen_random_uuid());
    -- A NOTIFY payload holds at most 8000 bytes: a larger event goes without its variants.
    IF octet_length(event::text) > 7900 THEN
        PERFORM pg_notify('publish_events', (event - 'variants' || '{"truncated": true}')::text);
    ELSE
        PERFORM pg_notify('publish_events', event::text);
    END IF;
    IF EXISTS (SELECT 1 FROM publisher_settings WHERE name = 'webhook' AND value = 'on') THEN
        INSERT INTO publish_event_outbox (event_id, payload) VALUES ((event ->> 'event_id')::uuid, event);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS publish_jobs_send_event ON publish_jobs;
CREATE CONSTRAINT TRIGGER publish_jobs_send_event AFTER UPDATE OF status ON publish_jobs
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION publish_jobs_send_event();

-- The listener's delivery: takes up to p_limit due events and holds them for
-- p_lease (another listener skips them meanwhile; a crash lets them come due again).
CREATE OR REPLACE FUNCTION publisher_webhook_take(p_limit int, p_lease interval)
RETURNS TABLE (id bigint, event_id uuid, payload jsonb, attempts int)
LANGUAGE sql AS $$
    UPDATE publish_event_outbox o SET next_attempt_at = now() + p_lease
      FROM (SELECT d.id FROM publish_event_outbox d
             WHERE d.delivered_at IS NULL AND d.gave_up_at IS NULL AND d.next_attempt_at <= now()
             ORDER BY d.id LIMIT p_limit FOR UPDATE SKIP LOCKED) due
     WHERE o.id = due.id
    RETURNING o.id, o.event_id, o.payload, o.attempts;
$$;

-- One delivery's outcome: delivered, or tried again after p_retry_in (NULL: given up).
CREATE OR REPLACE FUNCTION publisher_webhook_record(p_id bigint, p_delivered boolean, p_error text,
                                                    p_retry_in interval)
RETURNS void LANGUAGE sql AS $$
    UPDATE publish_event_outbox
       SET attempts = attempts + 1,
           delivered_at = CASE WHEN p_delivered THEN now() END,
           gave_up_at = CASE WHEN NOT p_delivered AND p_retry_in IS NULL THEN now() END,
           next_attempt_at = CASE WHEN NOT p_delivered AND p_retry_in IS NOT NULL THEN now() + p_retry_in
                                  ELSE next_attempt_at END,
           last_error = CASE WHEN p_delivered THEN NULL ELSE p_error END
     WHERE id = p_id;
$$;

COMMIT;
