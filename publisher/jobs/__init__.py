"""The job core: the state changes around every step (lifecycle.py), the SQL that
makes them (queries.py), what the steps hand each other (handoff.py), where steps
run (locality.py, scratch.py) and the brokers that carry them."""
