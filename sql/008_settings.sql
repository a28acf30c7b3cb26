-- Settings the running service hands to the database, so that plain SQL
-- (INSERT INTO publish_jobs (file_id) ...) follows the operators' environment.
BEGIN;
SET LOCAL client_min_messages = warning;
-- One deploy at a time; the lock is held to COMMIT.
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

CREATE TABLE IF NOT EXISTS publisher_settings (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- MAX_RETRIES, as the listener last wrote it; 5 until one has. PL/pgSQL, not SQL: a SQL
-- function the planner cannot inline (a subquery) is parsed and planned again at every
-- INSERT, where PL/pgSQL keeps its plan for the session.
CREATE OR REPLACE FUNCTION publisher_default_max_retries() RETURNS int
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce((SELECT value::int FROM publisher_settings WHERE name = 'max_retries'), 5);
END $$;

-- The column's default: every writer of publish_jobs (the systems that request
-- publishing, too) evaluates it with its own rights (000 revokes it by default).
GRANT EXECUTE ON FUNCTION publisher_default_max_retries() TO PUBLIC;

ALTER TABLE publish_jobs ALTER COLUMN max_retries SET DEFAULT publisher_default_max_retries();

COMMIT;
