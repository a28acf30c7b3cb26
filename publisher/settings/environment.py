"""The one way settings read their variables: environs, over the process's
environment or over a given mapping (tests, tools reading an env file).

Readers are not eager: every problem is collected, then named together.
"""

from __future__ import annotations

from collections.abc import Mapping

from environs import Env


class _MappingEnv(Env):
    """environs reading a mapping instead of os.environ (its `_get_value` hook, the
    one its own FileAwareEnv overrides)."""

    def __init__(self, environ: Mapping[str, str]):
        super().__init__(eager=False)
        self._mapping = dict(environ)

    def _get_value(self, env_key, default):
        return self._mapping.get(env_key, default)


def reader(environ: Mapping[str, str] | None = None) -> Env:
    """A reader of the process's environment, or of `environ` when given."""
    return Env(eager=False) if environ is None else _MappingEnv(environ)
