-- Published variants name every format under "formats" (the webp object stays
-- at the top level too: the contract). Files published before variants had
-- several formats have the top-level webp object only; this gives them their
-- "formats", once, so every reader (contact sheet, maintenance) reads one shape.
-- Re-runnable: a variant that has "formats" is left as it is.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock(hashtext('media-publisher schema')) AS schema_locked \gset

UPDATE auction_files f
   SET variants = (
       SELECT jsonb_object_agg(name, CASE
                  WHEN jsonb_typeof(v) = 'object' AND NOT v ? 'formats'
                  THEN v || jsonb_build_object('formats', jsonb_build_object('webp', jsonb_build_object(
                           'url', v -> 'url', 'key', v -> 'key', 'bytes', v -> 'bytes',
                           'content_type', 'image/webp')))
                  ELSE v END)
         FROM jsonb_each(f.variants) AS e(name, v))
 WHERE jsonb_typeof(f.variants) = 'object'
   AND EXISTS (SELECT 1 FROM jsonb_each(f.variants) AS e(name, v)
                WHERE jsonb_typeof(v) = 'object' AND NOT v ? 'formats');

COMMIT;
