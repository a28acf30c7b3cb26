-- The queue table of the Dramatiq Postgres broker (dramatiq-pg 0.12), written
-- to be re-runnable (the schema.sql that ships with dramatiq-pg is not).
BEGIN;
SET LOCAL client_min_messages = warning;
-- One deploy at a time; the lock is held to COMMIT.
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

CREATE SCHEMA IF NOT EXISTS dramatiq;

DO $$
BEGIN
    CREATE TYPE dramatiq.state AS ENUM ('queued', 'consumed', 'rejected', 'done');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE IF NOT EXISTS dramatiq.queue (
    message_id uuid PRIMARY KEY,
    queue_name text NOT NULL DEFAULT 'default',
    "state"    dramatiq.state,
    mtime      timestamptz DEFAULT (now() AT TIME ZONE 'UTC'),
    -- message as encoded by dramatiq.
    message    jsonb,
    "result"   jsonb,
    result_ttl timestamptz
);

-- The name PostgreSQL gives the original's unnamed index, so a database made
-- with dramatiq-pg's own schema.sql is recognised.
CREATE INDEX IF NOT EXISTS queue_state_mtime_idx ON dramatiq.queue ("state", mtime);

COMMIT;
