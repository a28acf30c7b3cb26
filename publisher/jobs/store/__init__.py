"""The job store: the only Python code that runs SQL against the job tables
(publish_jobs, auction_files, publish_job_events, publisher_workers,
publish_event_outbox, publisher_objects, publisher_settings) and calls the state
functions of sql/. The state machine itself is SQL (sql/002_job_states.sql);
this package names its states and outcomes (states) and calls it, one module per
concern:

- intake: the listener's claims and rescues, and the channel it LISTENs on;
- steps: what a worker asks and records around one step (begin, heartbeat, end,
  failure, start over), and its host's beat;
- finalize: the last step's result, published, in one transaction;
- actions: the operator's actions, backfill and republish requests;
- overview: what the operator and the gauges read;
- maintenance: retention and the purges;
- outbox: the webhook events;
- shared_settings: what the listener hands to plain SQL (publisher_settings);
- broker_queue: the broker messages waiting on a live host (publisher_workers).

The cursor the functions take is typed in cursor, the rows they return in rows,
states and outcomes in states. A test keeps SQL to the job tables out of every
other module (tests/unit/test_sql_owner.py).
"""
