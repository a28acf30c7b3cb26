"""What the benchmark actors hand over: whatever their own upload reads, merged into
the job's artifacts as the real steps' results are (publisher/jobs/handoff.py's
StepResult: the lifecycle calls to_json() and traffic() on it)."""


class Handed:
    def __init__(self, artifacts: dict):
        self.artifacts = artifacts

    def to_json(self) -> dict:
        return self.artifacts

    def traffic(self) -> dict[str, int]:
        return {}  # the benchmarks do not count bytes
