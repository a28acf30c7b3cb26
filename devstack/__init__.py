"""Real local services for the tests, the benchmarks and the no-configuration `make run`:
PostgreSQL (the machine's, or a pip-installed one), SeaweedFS as the S3 server,
a RAID stand-in, and the project's own processes. Not used in production."""
