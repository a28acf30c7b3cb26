-- What else grows without bound, and the functions maintenance purges it with:
-- the job history (publish_job_events), the webhook outbox (010), and the
-- objects in the bucket that no file publishes.
--
-- Every object the upload step PUTs is tracked in publisher_objects from before
-- the PUT until it is removed: 'uploading' (PUT, or about to be, by job_id),
-- 'published' (a file's variants name it), 'superseded' (a republish replaced
-- it; CDN caches and open pages may still ask for it). An object that is not
-- published leaves the bucket once it has been so for the grace period and its
-- job is no longer active: the objects of jobs that failed, were cancelled or
-- found their file deleted, and the superseded ones.
--
-- Removal and a re-run's PUT of the same content-addressed key cannot cross:
-- maintenance DELETEs the rows it removes and holds that transaction open across
-- the bucket's removal; an upload records its key (INSERT ... ON CONFLICT) before
-- the PUT, so it waits on that row until the removal committed, and only then
-- PUTs the object again.
-- Re-runnable: creates what is missing, never drops data (the table
-- publisher_superseded_objects of an earlier release is moved into publisher_objects).
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

-- Every object key a variants document names (each variant's key and each format's).
CREATE OR REPLACE FUNCTION publisher_variant_keys(p_variants jsonb) RETURNS SETOF text
LANGUAGE sql IMMUTABLE AS $$
    -- lax: a variant without a key, or a document of another shape, names nothing.
    SELECT k #>> '{}' FROM jsonb_path_query(coalesce(p_variants, '{}'), 'lax $.*.key') AS k
     WHERE jsonb_typeof(k) = 'string'
    UNION
    SELECT k #>> '{}' FROM jsonb_path_query(coalesce(p_variants, '{}'), 'lax $.*.formats.*.key') AS k
     WHERE jsonb_typeof(k) = 'string';
$$;

DO $$
BEGIN
    IF to_regclass('publisher_objects') IS NULL THEN
        CREATE TABLE publisher_objects (
            key     text PRIMARY KEY,
            file_id uuid NOT NULL,
            job_id  bigint,          -- the job that last PUT it; NULL when known from a file's variants only
            state   text NOT NULL CHECK (state IN ('uploading', 'published', 'superseded')),
            since   timestamptz NOT NULL DEFAULT now()
        );
        -- The objects published before objects were tracked.
        INSERT INTO publisher_objects (key, file_id, state)
        SELECT k, f.id, 'published' FROM auction_files f, publisher_variant_keys(f.variants) AS k
        ON CONFLICT (key) DO NOTHING;
    END IF;
    IF to_regclass('publisher_superseded_objects') IS NOT NULL THEN
        INSERT INTO publisher_objects (key, file_id, state, since)
        SELECT key, file_id, 'superseded', superseded_at FROM publisher_superseded_objects
        ON CONFLICT (key) DO UPDATE SET state = 'superseded', since = excluded.since
         WHERE publisher_objects.state <> 'uploading'
           AND publisher_objects.key NOT IN (SELECT publisher_variant_keys(f.variants) FROM auction_files f
                                              WHERE f.id = publisher_objects.file_id);
        DROP TABLE publisher_superseded_objects;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS publisher_objects_unpublished_idx ON publisher_objects (since) WHERE state <> 'published';
CREATE INDEX IF NOT EXISTS publisher_objects_file_idx ON publisher_objects (file_id);
DROP FUNCTION IF EXISTS publisher_superseded_due(interval, int);
DROP FUNCTION IF EXISTS publisher_forget_superseded(text[]);

-- Whether p_key is an object of file p_file: a plain name right in the file's
-- folder, '<prefix><file id>/<name>'. SQL does not know OBJECT_PREFIX (the worker
-- and the listener read it from their environment, and may change it), so the
-- prefix is checked by its grammar, the one OBJECT_PREFIX must have
-- (publisher/settings/job.py): segments of letters, digits, '.', '-', '_', none
-- starting with '.' (no '.' or '..'), each ending in '/', or nothing. And no
-- segment of it names a file (a uuid): a key in the folder of file A nested in
-- that of file B would go when B is purged (maintenance removes B's folder).
-- The same rule in Python: listener/maintenance.py (in_folder_of).
CREATE OR REPLACE FUNCTION publisher_key_in_folder(p_key text, p_file uuid) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(length(p_key) <= 1024
                    AND substring(p_key FROM '^((?:[A-Za-z0-9_-][A-Za-z0-9._-]*/)*)'
                                             || p_file::text || '/[A-Za-z0-9_-][A-Za-z0-9._-]*$')
                        !~* '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
                    false);
$$;

-- The upload step records each key, in a transaction of its own, before it PUTs
-- it: only for the attempt that runs the job's upload step, and only a key under
-- the job's file (a worker cannot get another file's object removed). A key that
-- is published stays published. Waits while maintenance is removing the key
-- (publisher_take_unpublished_objects): the PUT then follows the removal.
CREATE OR REPLACE FUNCTION publisher_track_object(p_job bigint, p_token uuid, p_key text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    file uuid;
BEGIN
    SELECT j.file_id INTO file FROM publish_jobs j
     WHERE j.id = p_job AND j.attempt_token = p_token AND j.status = 'processing' AND j.stage = 'upload'
       AND j.step_started_at IS NOT NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % attempt % runs no upload step: no object may be put for it', p_job, p_token
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT publisher_key_in_folder(p_key, file) THEN
        RAISE EXCEPTION 'key % is not under the folder of file %', p_key, file
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO publisher_objects (key, file_id, job_id, state) VALUES (p_key, file, p_job, 'uploading')
    ON CONFLICT (key) DO UPDATE
       SET job_id = excluded.job_id, since = now(),
           state = CASE WHEN publisher_objects.state = 'published' THEN 'published' ELSE 'uploading' END
     WHERE publisher_objects.file_id = excluded.file_id;
END $$;

-- A file's variants changed (a job finalized, or a file was published by other
-- means): the keys they name are published; the keys they no longer name are
-- superseded from now on.
CREATE OR REPLACE FUNCTION auction_files_track_published() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO publisher_objects (key, file_id, state)
    SELECT k, NEW.id, 'superseded' FROM publisher_variant_keys(OLD.variants) AS k
     WHERE k NOT IN (SELECT publisher_variant_keys(NEW.variants))
    ON CONFLICT (key) DO UPDATE SET state = 'superseded', since = now()
     WHERE publisher_objects.file_id = excluded.file_id AND publisher_objects.state = 'published';
    INSERT INTO publisher_objects (key, file_id, state)
    SELECT k, NEW.id, 'published' FROM publisher_variant_keys(NEW.variants) AS k
    ON CONFLICT (key) DO UPDATE SET state = 'published', since = now()
     WHERE publisher_objects.file_id = excluded.file_id AND publisher_objects.state <> 'published';
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS auction_files_note_superseded ON auction_files;
DROP FUNCTION IF EXISTS auction_files_note_superseded();
DROP TRIGGER IF EXISTS auction_files_track_published ON auction_files;
CREATE TRIGGER auction_files_track_published AFTER UPDATE OF variants ON auction_files
    FOR EACH ROW WHEN (OLD.variants IS DISTINCT FROM NEW.variants)
    EXECUTE FUNCTION auction_files_track_published();

-- Takes up to p_limit objects due for removal from the bucket: not published, so
-- for longer than p_grace (at least an hour), their job no longer active, and not
-- named by their file's variants. Their rows are deleted in the caller's
-- transaction, which removes the objects before it commits (a failure rolls the
-- rows back for the next round). A key locked by an upload recording it is skipped.
-- A key outside its file's folder (named by variants written by hand or by an
-- earlier release: maybe another file's object, or a shared one) is forgotten,
-- never handed out for removal: we did not PUT it.
CREATE OR REPLACE FUNCTION publisher_take_unpublished_objects(p_grace interval, p_limit int)
RETURNS TABLE (key text) LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH taken AS (
        DELETE FROM publisher_objects o WHERE o.key IN (
            SELECT c.key FROM publisher_objects c
             WHERE c.state <> 'published' AND c.since < now() - publisher_at_least(p_grace, interval '1 hour')
               AND NOT EXISTS (SELECT 1 FROM publish_jobs j WHERE j.id = c.job_id
                                AND j.status IN ('pending', 'queued', 'processing'))
               AND NOT EXISTS (SELECT 1 FROM auction_files f WHERE f.id = c.file_id
                                AND c.key IN (SELECT publisher_variant_keys(f.variants)))
             ORDER BY c.since LIMIT p_limit FOR UPDATE OF c SKIP LOCKED)
        RETURNING o.key, o.file_id
    )
    SELECT t.key FROM taken t WHERE publisher_key_in_folder(t.key, t.file_id);
$$;

CREATE OR REPLACE FUNCTION publisher_purge_job_events(p_older interval, p_limit int)
RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH gone AS (
        -- = ANY(ARRAY(...)), as in publisher_purge_completed_jobs: never a scan of the whole table
        DELETE FROM publish_job_events WHERE id = ANY(ARRAY(
            SELECT id FROM publish_job_events WHERE at < now() - publisher_at_least(p_older, interval '1 day')
             ORDER BY at LIMIT p_limit))
        RETURNING 1)
    SELECT count(*)::int FROM gone;
$$;

-- Delivered or given-up webhook events; one still being tried is kept whatever its age.
CREATE OR REPLACE FUNCTION publisher_purge_event_outbox(p_older interval, p_limit int)
RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM publish_event_outbox WHERE id = ANY(ARRAY(
            SELECT id FROM publish_event_outbox
             WHERE coalesce(delivered_at, gave_up_at) < now() - publisher_at_least(p_older, interval '1 day')
             ORDER BY id LIMIT p_limit))
        RETURNING 1)
    SELECT count(*)::int FROM gone;
$$;

COMMIT;
