"""Every statement the benchmarks run against the job tables, by name. Jobs are
requested exactly as the application does: a row in publish_jobs."""

#: n files with the same RAID key (one active job per file: each job needs its own).
ADD_FILES = "INSERT INTO auction_files (raid_key) SELECT %s FROM generate_series(1, %s) RETURNING id::text"
#: One job, one autocommit statement: one NOTIFY.
REQUEST_ONE = "INSERT INTO publish_jobs (file_id) VALUES (%s) RETURNING id"
#: A burst: many jobs in one statement (one NOTIFY each, delivered at commit).
REQUEST_MANY = "INSERT INTO publish_jobs (file_id) SELECT unnest(%s::uuid[]) RETURNING id"
#: The database's own timestamps of each job's life.
JOB_TIMES = """
    SELECT id, status, last_error, created_at, queued_at, started_at, completed_at
      FROM publish_jobs WHERE id = ANY(%s) ORDER BY id
"""
