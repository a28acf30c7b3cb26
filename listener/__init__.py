"""Intake: turns runnable publish_jobs rows into Dramatiq messages."""
