-- What else grows without bound, and the functions maintenance purges it with:
-- the job history (publish_job_events), the webhook outbox (010), and the
-- objects a republish superseded, which stay in the bucket for a grace period
-- (CDN caches and open pages still point at them), then go.
-- Re-runnable: creates what is missing, never drops data.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

CREATE TABLE IF NOT EXISTS publisher_superseded_objects (
    key           text PRIMARY KEY,
    file_id       uuid NOT NULL,
    superseded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS publisher_superseded_objects_at_idx ON publisher_superseded_objects (superseded_at);

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

-- A file's variants changed (a republish finalized): the keys it no longer names
-- are superseded; a key it names again (the same bytes published again) is not.
CREATE OR REPLACE FUNCTION auction_files_note_superseded() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO publisher_superseded_objects (key, file_id)
    SELECT k, NEW.id FROM publisher_variant_keys(OLD.variants) AS k
     WHERE k NOT IN (SELECT publisher_variant_keys(NEW.variants))
    ON CONFLICT (key) DO UPDATE SET superseded_at = now();
    DELETE FROM publisher_superseded_objects WHERE key IN (SELECT publisher_variant_keys(NEW.variants));
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS auction_files_note_superseded ON auction_files;
CREATE TRIGGER auction_files_note_superseded AFTER UPDATE OF variants ON auction_files
    FOR EACH ROW WHEN (OLD.variants IS DISTINCT FROM NEW.variants)
    EXECUTE FUNCTION auction_files_note_superseded();

-- Superseded objects past the grace period that no file names now.
CREATE OR REPLACE FUNCTION publisher_superseded_due(p_grace interval, p_limit int)
RETURNS TABLE (key text) LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT s.key FROM publisher_superseded_objects s
     WHERE s.superseded_at < now() - p_grace
       AND NOT EXISTS (SELECT 1 FROM auction_files f
                        WHERE f.id = s.file_id AND s.key IN (SELECT publisher_variant_keys(f.variants)))
     ORDER BY s.superseded_at LIMIT p_limit;
$$;

-- The objects are gone from the bucket: forget them.
CREATE OR REPLACE FUNCTION publisher_forget_superseded(p_keys text[]) RETURNS int
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH gone AS (DELETE FROM publisher_superseded_objects WHERE key = ANY(p_keys) RETURNING 1)
    SELECT count(*)::int FROM gone;
$$;

CREATE OR REPLACE FUNCTION publisher_purge_job_events(p_older interval, p_limit int)
RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM publish_job_events WHERE id IN (
            SELECT id FROM publish_job_events WHERE at < now() - publisher_at_least(p_older, interval '1 day')
             ORDER BY at LIMIT p_limit)
        RETURNING 1)
    SELECT count(*)::int FROM gone;
$$;

-- Delivered or given-up webhook events; one still being tried is kept whatever its age.
CREATE OR REPLACE FUNCTION publisher_purge_event_outbox(p_older interval, p_limit int)
RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM publish_event_outbox WHERE id IN (
            SELECT id FROM publish_event_outbox
             WHERE coalesce(delivered_at, gave_up_at) < now() - publisher_at_least(p_older, interval '1 day')
             ORDER BY id LIMIT p_limit)
        RETURNING 1)
    SELECT count(*)::int FROM gone;
$$;

COMMIT;
