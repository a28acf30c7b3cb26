"""publisher-web: the operations page. Server-rendered (Starlette, Jinja2), over
the same reads and actions as publisher-admin (publisher/ops/)."""
