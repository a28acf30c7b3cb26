"""Configuration read from the environment: every setting declared once (schema.py),
read by one loader (loader.py) into a view per kind of process (job.py, ops.py, web.py).
Values that are not settings are named constants with their reasons (fixed.py)."""
