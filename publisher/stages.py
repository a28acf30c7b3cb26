"""The steps of a job, in order. The actors of these names are its steps
(actors/), and each is a stage of the state machine (sql/002_job_states.sql)."""

STAGES = ("fetch", "variant", "upload")

#: Each step's broker priority (Dramatiq runs a lower number first): a job that
#: got further is finished before new ones are started. The actors declare it,
#: and the listener, which sends first steps without importing the actors, reads it.
PRIORITY = {"fetch": 20, "variant": 10, "upload": 0}
