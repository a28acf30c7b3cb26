-- Which schema files a database has: publisher-admin migrate records each file
-- after applying it (publisher/schema.py); publisher-admin schema compares.
-- Re-runnable: creates what is missing.
BEGIN;
SET LOCAL client_min_messages = warning;
-- One deploy at a time; the lock is held to COMMIT.
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

CREATE TABLE IF NOT EXISTS publisher_schema_versions (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    -- sha256 of the file as applied: an edited file shows as pending again.
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

COMMIT;
