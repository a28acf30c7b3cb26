-- Maintenance scheduled inside the database, where pg_cron is installed
-- (CREATE EXTENSION pg_cron, by a superuser, in the database cron.database_name
-- names). Without pg_cron this file does nothing and the listener runs the same
-- maintenance on its own schedule (MAINTENANCE_INTERVAL).
--
-- Only the database side is scheduled here: old completed jobs and broker rows.
-- Purging soft-deleted files also removes their objects from the bucket, which
-- the database cannot reach: the listener always does that part.
-- Retention: ALTER DATABASE <db> SET publisher.completed_job_retention = '90 days';
--            ALTER DATABASE <db> SET publisher.broker_retention = '24 hours';
-- Re-runnable: cron.schedule replaces a job of the same name.
BEGIN;
SET LOCAL client_min_messages = warning;
-- One deploy at a time; the lock is held to COMMIT.
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.schedule('media-publisher-purge-completed-jobs', '17 * * * *',
                              'SELECT publisher_purge_completed_jobs()');
        PERFORM cron.schedule('media-publisher-purge-broker-messages', '*/10 * * * *',
                              'SELECT publisher_purge_broker_messages()');
    END IF;
END $$;

COMMIT;
