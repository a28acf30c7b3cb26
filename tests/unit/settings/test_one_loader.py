"""The settings are few, declared once, read by one loader without side effects,
and documented with the loader's own defaults (docs/configuration.md, .env.example)."""

import re
from pathlib import Path

from publisher.settings.job import load_settings
from publisher.settings.ops import load_ops_settings
from publisher.settings.web import load_web_settings
from tests.unit.settings.test_job_settings import VALID

ROOT = Path(__file__).resolve().parents[3]


class _Recording(dict):
    """An environment that remembers every name asked of it."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.asked = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)


def test_there_are_at_most_30_settings_and_every_process_reads_only_those():
    from publisher.settings import schema

    names = [s.name for s in schema.SETTINGS]
    assert len(names) == len(set(names)), "a setting is declared twice"
    assert len(names) <= 30, names
    asked = set()
    for load in (load_settings, load_ops_settings, load_web_settings):
        environ = _Recording(VALID)
        load(environ)
        asked |= environ.asked
    assert asked <= set(names), f"read but not declared: {sorted(asked - set(names))}"


def test_loading_settings_creates_nothing_on_disk(tmp_path):
    scratch = tmp_path / "not-yet" / "scratch"
    env = dict(VALID, SCRATCH_DIR=str(scratch))
    for load in (load_settings, load_ops_settings, load_web_settings):
        load(env)
    assert list(tmp_path.iterdir()) == []


def _documented_rows():
    rows = {}
    settings_table = (ROOT / "docs" / "configuration.md").read_text().split("\n## ")[0]
    for line in settings_table.splitlines():
        m = re.match(r"\| `([A-Z][A-Z0-9_]+)` \| (.+?) \| ", line)
        if m:
            rows[m.group(1)] = m.group(2).strip("`")
    return rows


def _env_example_lines():
    lines = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = re.fullmatch(r"(# )?([A-Z][A-Z0-9_]+)=(.*)", line)
        if m:
            lines[m.group(2)] = (m.group(1) is None, m.group(3))
    return lines


def test_the_configuration_page_lists_exactly_the_settings_with_the_loaders_defaults():
    from publisher.settings import schema

    assert _documented_rows() == {s.name: s.shown_default for s in schema.SETTINGS}


def test_env_example_lists_exactly_the_settings_optional_ones_at_the_loaders_defaults():
    from publisher.settings import schema

    lines = _env_example_lines()
    assert set(lines) == {s.name for s in schema.SETTINGS}
    for s in schema.SETTINGS:
        active, value = lines[s.name]
        assert active is s.required, s.name
        if not s.required:
            assert value == s.default, s.name


def test_the_test_only_override_of_constants_names_only_constants():
    import json
    import subprocess
    import sys

    def run(overrides):
        return subprocess.run([sys.executable, "-c", "from publisher.settings import fixed; "
                               "print(fixed.JOB_LEASE_SECONDS, fixed.ORIGIN_DOWNLOAD_TIMEOUT)"],
                              cwd=ROOT, env={"PUBLISHER_TEST_FIXED": json.dumps(overrides)},
                              capture_output=True, text=True, timeout=60)

    shortened = run({"JOB_LEASE_SECONDS": "5", "MAX_SOURCE_BYTES": 1024 * 1024})
    assert shortened.stdout.split() == ["5", "61.0"], shortened.stderr
    refused = run({"LOG_LEVEL": "debug"})
    assert refused.returncode != 0 and "names no constant: LOG_LEVEL" in refused.stderr
