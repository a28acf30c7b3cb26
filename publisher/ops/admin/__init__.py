"""`publisher-admin` (or `python -m publisher.ops.admin`): see and fix the job queue.

Needs only DATABASE_URL (except `maintain`). The actions are SQL functions
(sql/002_job_states.sql) that take the same row locks as the workers; the
reads are publisher/jobs/store/overview.py, shared with the web page. Every command
takes --json; bulk commands (retry-failed, backfill, maintain) say what they
would do, take --dry-run, and ask before acting (--yes to skip).

cli (the parser, the exit codes, the dispatch), then one module per group of
commands: status, jobs (list, show, retry, cancel, retry-failed), catalogue
(backfill, republish), migrations (schema, migrate), maintain.
"""
