"""The clients of the services a job talks to: PostgreSQL, the S3 bucket, the RAID origin."""
