"""Configuration read from the environment: a job's settings (job.py) and the
operating ones (ops.py), both through one loader (environment.py)."""
