"""The job core: the state changes around every step (lifecycle.py), the job store,
the only Python that runs SQL against the job tables (store/), what the steps hand each other (handoff.py), where steps
run (locality.py, scratch.py) and the brokers that carry them."""
