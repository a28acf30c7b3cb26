"""Assembly: the runtime a process builds from its settings, and the broker with its middleware."""
