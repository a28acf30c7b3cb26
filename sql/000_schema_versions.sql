-- Which schema files a database has: publisher-admin migrate records each file
-- after applying it (publisher/schema.py); publisher-admin schema compares.
-- Re-runnable: creates what is missing.
BEGIN;
SET LOCAL client_min_messages = warning;
-- One deploy at a time; the lock is held to COMMIT.
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

-- PostgreSQL lets PUBLIC execute every new function. migrate applies each file in
-- its own psql run, and the grants are set only by 900_roles.sql: a deploy that
-- stops in between (a file fails, the run is killed) would leave the new SECURITY
-- DEFINER functions callable by every role. So every function this role creates
-- from here on is executable by no one but its owner until 900 grants it; what
-- PUBLIC really needs is granted where it is created (008). Only new functions:
-- CREATE OR REPLACE keeps a function's rights.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

CREATE TABLE IF NOT EXISTS publisher_schema_versions (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    -- sha256 of the file as applied: an edited file shows as pending again.
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

COMMIT;
