"""The steps of a job, in order. The actors of these names are its steps
(actors/), and each is a stage of the state machine (sql/002_job_states.sql:
the stage CHECK of publish_jobs and publisher_stage_order agree with this,
tests/unit/test_python_and_sql_agree.py)."""

from enum import StrEnum


class Stage(StrEnum):
    FETCH = "fetch"
    VARIANT = "variant"
    UPLOAD = "upload"


STAGES = tuple(s.value for s in Stage)

#: Each step's priority in a worker's queue (Dramatiq runs a lower number first): a
#: job that got further is finished before new ones are started. The actors declare
#: it, and a step handed to a process's threads is queued with it (jobs/local_steps.py).
PRIORITY = {Stage.FETCH.value: 20, Stage.VARIANT.value: 10, Stage.UPLOAD.value: 0}
