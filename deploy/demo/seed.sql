-- The compose `demo` profile's jobs: samples of tests/fixtures/corpus, which the
-- `raid` service serves, each published once (re-runnable: nothing twice).
INSERT INTO auction_files (raid_key)
SELECT key FROM unnest(ARRAY['progressive.jpg', 'adobe-rgb.jpg', 'exif-orientation-6.jpg', 'cmyk.jpg',
                             'large-photo-12mp.jpg']) AS key
WHERE NOT EXISTS (SELECT 1 FROM auction_files f WHERE f.raid_key = key);

INSERT INTO publish_jobs (file_id)
SELECT f.id FROM auction_files f
WHERE NOT EXISTS (SELECT 1 FROM publish_jobs j WHERE j.file_id = f.id);
