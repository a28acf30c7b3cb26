-- Image fidelity: what the front end needs beyond the variants, the recipe a
-- file was published with, and re-publishing files made by an older recipe.
-- Re-runnable: ADD COLUMN IF NOT EXISTS, CREATE OR REPLACE.
BEGIN;
SET LOCAL client_min_messages = warning;
-- One deploy at a time; the lock is held to COMMIT.
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

ALTER TABLE auction_files
    -- Short hash of everything that changes the published bytes (sizes, formats,
    -- quality, decoder versions): publisher/imaging/options.py Recipe.version.
    ADD COLUMN IF NOT EXISTS recipe         text,
    -- data:image/webp;base64,... of about 16 px: painted, blurred, before a variant loads.
    ADD COLUMN IF NOT EXISTS placeholder    text,
    -- #rrggbb, the dominant colour of the image.
    ADD COLUMN IF NOT EXISTS dominant_color text;

ALTER TABLE publish_jobs
    -- Set on jobs `python -m publisher.ops.republish` creates: the recipe they publish with.
    ADD COLUMN IF NOT EXISTS republish_recipe text;

CREATE INDEX IF NOT EXISTS auction_files_published_recipe_idx
    ON auction_files (recipe) WHERE publish_status = 'published' AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS publish_jobs_republish_idx
    ON publish_jobs (file_id, republish_recipe) WHERE republish_recipe IS NOT NULL;

-- The imaging facts are recorded by publisher_finalize (002), in the completion's own UPDATE.
DROP FUNCTION IF EXISTS publisher_record_imaging(bigint, uuid, text, text, text);

-- Published files whose recipe is not p_recipe, that have no active job and
-- were not re-published for p_recipe already: each file gets one re-publish
-- job per recipe (one that failed is reset by an operator; one that completed
-- with another recipe means the workers run another configuration).
CREATE OR REPLACE FUNCTION publisher_stale_files(p_recipe text)
RETURNS SETOF uuid LANGUAGE sql STABLE AS $$
    SELECT f.id FROM auction_files f
     WHERE f.publish_status = 'published' AND f.deleted_at IS NULL
       AND f.recipe IS DISTINCT FROM p_recipe
       AND NOT EXISTS (SELECT 1 FROM publish_jobs j WHERE j.file_id = f.id
                        AND (j.status IN ('pending', 'queued', 'processing') OR j.republish_recipe = p_recipe))
     ORDER BY f.published_at, f.id;
$$;

-- Files re-published for p_recipe whose job completed with another recipe:
-- the workers do not run the configuration the command was given.
CREATE OR REPLACE FUNCTION publisher_republish_mismatches(p_recipe text)
RETURNS TABLE (file_id uuid, recipe text) LANGUAGE sql STABLE AS $$
    SELECT DISTINCT f.id, f.recipe FROM auction_files f JOIN publish_jobs j ON j.file_id = f.id
     WHERE j.republish_recipe = p_recipe AND j.status = 'completed' AND f.recipe IS DISTINCT FROM p_recipe;
$$;

-- Up to p_limit re-publish jobs for files of another recipe. A file that got
-- a job meanwhile is skipped (the one-active-job index), never doubled.
CREATE OR REPLACE FUNCTION publisher_request_republish(p_recipe text, p_limit int)
RETURNS int LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH ins AS (
        INSERT INTO publish_jobs (file_id, republish_recipe, lane)  -- the backlog lane
        SELECT s.file_id, p_recipe, 2 FROM publisher_stale_files(p_recipe) AS s(file_id) LIMIT p_limit
        ON CONFLICT (file_id) WHERE status IN ('pending', 'queued', 'processing') DO NOTHING
        RETURNING 1
    )
    SELECT count(*)::int FROM ins;
$$;

COMMIT;
