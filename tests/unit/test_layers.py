"""The layers of the code, as the import-linter contracts in pyproject.toml draw
them, and what importing the entry points does."""

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.settings.test_job_settings import VALID

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_dependencies_point_one_way_and_no_package_has_an_import_circle():
    result = subprocess.run([BIN / "lint-imports", "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _imported(code: str) -> dict:
    # A database nobody listens on: building the runtime would not fail, but using it would.
    env = dict(VALID, PATH="/usr/bin:/bin", DATABASE_URL="postgresql://publisher@127.0.0.1:9/none")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_importing_the_actors_declares_them_and_builds_no_runtime():
    seen = _imported(
        "import json, sys, actors\n"
        "from publisher.app.runtime import process_runtime\n"
        "print(json.dumps({'actors': sorted(actors.broker.get_declared_actors()),\n"
        "                  'runtimes_built': process_runtime.cache_info().currsize,\n"
        "                  'prometheus_client': 'prometheus_client' in sys.modules}))")
    assert seen == {"actors": ["fetch", "upload", "variant"], "runtimes_built": 0, "prometheus_client": False}


def test_the_listener_does_not_import_the_actors():
    seen = _imported("import json, sys, listener.__main__\n"
                     "print(json.dumps({'actors': 'actors' in sys.modules}))")
    assert seen == {"actors": False}


def test_every_package_of_publisher_is_a_layer_of_the_contract():
    # A package outside the layers escapes the contract: it could import anything.
    import tomllib

    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    layered = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    packages = {f"publisher.{p.name}" for p in (ROOT / "publisher").iterdir() if (p / "__init__.py").exists()}
    modules = {f"publisher.{p.stem}" for p in (ROOT / "publisher").glob("*.py") if p.stem != "__init__"}
    assert packages | modules <= layered
