"""The project as it is installed in production: the built wheel in a fresh
virtualenv (dependencies from requirements.lock), run from outside the checkout,
where nothing of the source tree can be imported by accident."""

import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

from devstack import procs
from devstack.ports import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def run(args, **kwargs):
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_declared_dependencies_are_the_imported_ones():
    """deptry: every third-party import of the production code is declared, and
    every declared dependency is imported (pyproject.toml names the one exception)."""
    done = subprocess.run([str(procs.BIN / "deptry"), "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel, built once, installed into a fresh venv: (wheel path, venv bin)."""
    import shutil

    tmp = tmp_path_factory.mktemp("wheel")
    # From a copy: pip builds in the tree, and setuptools packs whatever an earlier build
    # left in build/lib (a module deleted since would ship). devstack/ stays in the copy.
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".run", "build", "*.egg-info", "__pycache__", "tests", "bench", "node_modules"))
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", tmp / "dist", source])
    wheel = next((tmp / "dist").glob("media_publisher-*.whl"))
    # uv installs like pip (hash-checked, from the same lock) in a few seconds, not half a minute.
    run([sys.executable, "-m", "venv", "--without-pip", tmp / "venv"])
    python = tmp / "venv" / "bin" / "python"
    uv = [procs.BIN / "uv", "pip", "install", "--quiet", "--python", python]
    run([*uv, "--require-hashes", "-r", ROOT / "requirements.lock"])
    run([*uv, "--no-deps", wheel])
    return wheel, tmp / "venv" / "bin"


def source_packages() -> set[str]:
    return {str(init.parent.relative_to(ROOT)).replace("/", ".")
            for top in ("publisher", "actors", "listener") for init in (ROOT / top).rglob("__init__.py")}


def test_the_wheel_holds_every_package_and_the_schema_but_not_devstack(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    packaged = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert "publisher.imaging" in source_packages()
    assert packaged == source_packages()
    schema_files = sorted(p.name for p in (ROOT / "sql").glob("*.sql"))
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("publisher/sql/")) == schema_files
    assert not any(n.startswith(("devstack/", "tests/", "bench/")) for n in names)
    page_files = sorted(str(p.relative_to(ROOT)) for d in ("templates", "static")
                        for p in (ROOT / "publisher" / "web" / d).iterdir())
    assert page_files and set(page_files) <= set(names)


@pytest.mark.e2e
def test_the_installed_wheel_publishes_a_job_from_outside_the_checkout(installed, make_stack, tmp_path):
    _, bin_dir = installed
    stack = make_stack()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**stack.env, "PATH": f"{bin_dir}:/usr/bin:/bin"}

    imported = subprocess.run([bin_dir / "python", "-c", "import publisher.imaging; print(publisher.imaging.__file__)"],
                              cwd=elsewhere, env=env, capture_output=True, text=True)
    assert imported.returncode == 0 and imported.stdout.startswith(str(bin_dir.parent)), imported.stderr
    assert subprocess.run([bin_dir / "python", "-c", "import devstack"], cwd=elsewhere, env=env,
                          capture_output=True).returncode != 0, "devstack is not installed"

    assert "publisher-admin" in run([bin_dir / "publisher-admin", "--help"], cwd=elsewhere, env=env).stdout
    # The schema ships in the wheel: migrate from it, and it matches what the checkout applied.
    run([bin_dir / "publisher-admin", "migrate"], cwd=elsewhere, env=env)
    assert "up to date" in run([bin_dir / "publisher-admin", "schema"], cwd=elsewhere, env=env).stdout

    stack.processes.append(procs.Process("workers", [bin_dir / "dramatiq", "actors", "--processes", "1",
                                                     "--threads", "2"], env, tmp_path / "workers.log", elsewhere))
    stack.processes.append(procs.Process("listener", [bin_dir / "python", "-m", "listener"], env,
                                         tmp_path / "listener.log", elsewhere))
    job = stack.wait_for(stack.publish("progressive.jpg"))
    assert job["status"] == "completed", job["last_error"]
    assert job["publish_status"] == "published" and job["variants"]

    # The page, from the wheel's console script: its templates and static files are installed.
    port = free_port()
    stack.processes.append(procs.Process("web", [bin_dir / "publisher-web"], {**env, "WEB_PORT": str(port)},
                                         tmp_path / "web.log", elsewhere))
    page = wait_until(lambda: _get(f"http://127.0.0.1:{port}/"), 30, "publisher-web to serve", 0.1)
    assert 'data-status="completed">1<' in page
    assert "function refresh" in _get(f"http://127.0.0.1:{port}/static/app.js")


def _get(url: str) -> str | None:
    try:
        return urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return None


def locked(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a `uv pip compile --generate-hashes` file."""
    import re

    entries, name = {}, None
    for line in path.read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", line):
            name = m.group(1).lower()
            entries[name] = (m.group(2), 0)
        elif name and line.strip().startswith("--hash=sha256:"):
            version, hashes = entries[name]
            entries[name] = (version, hashes + 1)
    return entries


def test_the_lock_files_pin_what_pyproject_declares_with_hashes():
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    prod, dev = locked(ROOT / "requirements.lock"), locked(ROOT / "requirements-dev.lock")
    for lock, declared in ((prod, project["dependencies"]),
                           (dev, project["dependencies"] + project["optional-dependencies"]["dev"])):
        for line in declared:
            req = Requirement(line)
            assert req.name.lower() in lock, f"{req.name} is not in the lock: make lock"
            assert lock[req.name.lower()][0] in req.specifier, f"{req.name}: lock and pyproject differ: make lock"
    assert all(hashes for _, hashes in [*prod.values(), *dev.values()]), "every requirement carries its hashes"
    # The dev lock is the production lock plus the dev tools, at the same versions.
    assert {name: dev[name] for name in prod} == prod
