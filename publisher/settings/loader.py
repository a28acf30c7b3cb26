"""The one loader: builds a view of the settings (a frozen dataclass whose fields name
their setting, publisher/settings/schema.py) from the environment or a given mapping.

Every problem is collected, then named together in one ConfigError. Loading reads the
environment and looks at the file system; it creates nothing.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from environs import EnvValidationError

from publisher.settings.environment import reader
from publisher.settings.schema import BY_NAME

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

View = TypeVar("View", bound="DataclassInstance")


class ConfigError(Exception):
    """The environment is missing or has invalid variables; the message names each."""


def load(view: type[View], environ: Mapping[str, str] | None = None) -> View:
    """`view` read from `environ` (default: the process's environment); ConfigError naming
    every problem, those of the view's own cross-checks (its `problems(values)`) included."""
    source = os.environ if environ is None else environ
    fields = [(f.name, BY_NAME[f.metadata["setting"]], f.metadata["optional"])
              for f in dataclasses.fields(view) if "setting" in f.metadata]
    given: dict[str, str] = {}
    for _, setting, optional in fields:
        value = source.get(setting.name)
        default = "" if optional else setting.default
        if value is None and default is not None:
            value = default
        if value is not None:
            given[setting.name] = value
    env = reader(given)
    values: dict[str, Any] = {}
    for attr, setting, optional in fields:
        validate = None if optional and not given.get(setting.name) else setting.validate
        values[attr] = getattr(env, setting.read)(setting.name, validate=validate)
    errors: dict[str, list] = {}
    try:
        env.seal()
    except EnvValidationError as e:
        if not isinstance(e.error_messages, Mapping):  # a list only comes from an eager reader's first error
            raise
        errors = {name: list(messages) for name, messages in e.error_messages.items()}
    cross_checks: Callable[[dict], dict] | None = getattr(view, "problems", None)
    for name, messages in (cross_checks(values) if cross_checks else {}).items():
        errors.setdefault(name, messages)
    if errors:
        raise ConfigError(describe(errors))
    for attr, setting, _ in fields:
        if setting.convert and values[attr] is not None:
            values[attr] = setting.convert(values[attr])
    return view(**values)


def describe(errors: Mapping[str, list]) -> str:
    lines = ["invalid configuration:"]
    for name in sorted(errors):
        messages = "; ".join(str(m) for m in errors[name])
        if "not set" in messages:
            messages = "missing (required)"
        lines.append(f"  {name}: {messages}")
    return "\n".join(lines)


def or_exit(load_view: Callable[[], View]) -> View:
    """load_view()'s validated settings; on a bad environment, one clear message and exit status 2."""
    try:
        return load_view()
    except ConfigError as e:
        print(f"media-publisher: {e}", file=sys.stderr)
        raise SystemExit(2) from None
