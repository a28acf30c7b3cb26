"""Each service connects as a login of its own role (docs/operations.md, Roles),
never as the schema owner: the workers that decode untrusted images as
publisher_worker, the listener as publisher_listener and publisher_maintenance,
the page as publisher_oncall; only the release step (migrate) as the owner.
Checked in the systemd units and in docker-compose.yml, whose logins
deploy/compose-logins.sql creates."""

import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from devstack import postgres
from devstack.run import read_env_file

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "deploy" / "systemd"
#: The group roles each long-running service's login is in, and no other.
SERVICE_ROLES = {"worker": {"publisher_worker"}, "listener": {"publisher_listener", "publisher_maintenance"},
                 "web": {"publisher_oncall"}}
GROUPS = {"publisher_worker", "publisher_listener", "publisher_maintenance", "publisher_oncall", "publisher_readonly"}
COMMON = "/etc/media-publisher.env"


def environment_files(unit: str) -> list[str]:
    return re.findall(r"^EnvironmentFile=(.+)$", (SYSTEMD / f"media-publisher-{unit}.service").read_text(), re.M)


@pytest.mark.parametrize("unit", ["migrate", "listener", "worker", "web"])
def test_each_systemd_unit_reads_its_own_database_url_after_the_common_settings(unit):
    files = environment_files(unit)
    # The common file first, then the unit's own: its DATABASE_URL wins over any in the common one.
    assert files[0] == COMMON and files[1:] == [f"/etc/media-publisher/{unit}.env"], files


def test_the_migrate_units_header_says_which_role_each_units_login_is_in():
    header = (SYSTEMD / "media-publisher-migrate.service").read_text().split("[Unit]")[0]
    for unit, roles in SERVICE_ROLES.items():
        line = next((x for x in header.splitlines() if f"/etc/media-publisher/{unit}.env" in x), "")
        assert all(role in line for role in roles), (unit, line)


def test_compose_services_connect_as_their_roles_logins_and_only_migrate_as_the_owner(schema_db):
    _, url = schema_db
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    owner = urlsplit(read_env_file(ROOT / ".env.compose")["DATABASE_URL"]).username
    assert "DATABASE_URL" not in services["migrate"].get("environment", {})  # the owner, from .env.compose
    # The logins exist before any service that uses them starts.
    logins = services["logins"]
    assert logins["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in SERVICE_ROLES:
        assert services[name]["depends_on"]["logins"]["condition"] == "service_completed_successfully"
    # compose-logins.sql, applied as compose applies it (twice: a second `up`), makes those logins.
    for _ in range(2):
        subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f",
                        str(ROOT / "deploy" / "compose-logins.sql")], check=True, capture_output=True)
    for name, roles in SERVICE_ROLES.items():
        user = urlsplit(services[name]["environment"]["DATABASE_URL"]).username
        assert user and user != owner, name
        member = {r["rolname"] for r in postgres.query(url, """
            SELECT g.rolname FROM pg_roles g WHERE g.rolname = ANY(%s) AND pg_has_role(%s, g.oid, 'MEMBER')""",
            (sorted(GROUPS), user))}
        assert member == roles, (name, member)
        attrs = postgres.query(url, "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s",
                               (user,))[0]
        assert not any(attrs.values()), (name, attrs)


UNITS = ("migrate", "listener", "worker", "web")


def unit_settings(unit: str) -> dict[str, str]:
    text = (SYSTEMD / f"media-publisher-{unit}.service").read_text()
    return dict(re.findall(r"^([A-Za-z]+)=(.*)$", text.split("[Service]", 1)[1].split("[Install]")[0], re.M))


def test_every_unit_runs_as_a_user_of_its_own_and_sees_no_other_process():
    """A worker that an image exploits must not read the listener's or the page's
    /proc/<pid>/environ (their logins' passwords, ADMIN_TOKEN): no two units share an OS
    user, and no unit sees the processes of another user (ProtectProc=invisible)."""
    users = []
    for unit in UNITS:
        service = unit_settings(unit)
        assert service.get("ProtectProc") == "invisible", unit
        if service.get("DynamicUser") == "yes":
            assert "User" not in service, unit  # systemd would then reuse a named user's uid
            users.append(f"dynamic:{unit}")
        else:
            users.append(service["User"])
    assert len(set(users)) == len(users), users
    # The worker's files (scratch, and the metrics files in its metrics/ folder) are in a state directory of its own.
    worker = unit_settings("worker")
    env = dict(pair.split("=", 1) for pair in worker["Environment"].split())
    state = "/var/lib/" + worker["StateDirectory"]
    assert env["SCRATCH_DIR"].startswith(state + "/")
    assert all(unit_settings(u).get("StateDirectory") != worker["StateDirectory"] for u in UNITS if u != "worker")


#: Secrets that one unit needs, and so only that unit's own environment file holds.
OWN_SECRETS = {"ADMIN_TOKEN": "web", "PUBLISH_WEBHOOK_SECRET": "listener", "PUBLISH_WEBHOOK_URL": "listener",
               "DATABASE_URL": None}


def test_the_install_header_puts_each_units_secrets_only_in_that_units_env_file():
    header = (SYSTEMD / "media-publisher-migrate.service").read_text().split("[Unit]")[0]
    # Each unit's entry: the line naming its file, and the indented lines that go on with it.
    entries = re.findall(r"^#   (/etc/media-publisher/\w+\.env .*(?:\n#     .*)*)", header, re.M)
    lines = {unit: next((e for e in entries if e.startswith(f"/etc/media-publisher/{unit}.env ")), "")
             for unit in UNITS}
    common = header.split(COMMON, 1)[1].split("\n#   /etc/media-publisher/", 1)[0]
    for secret, owner in OWN_SECRETS.items():
        assert re.search(rf"without[^.]*\b{secret}\b", common), (secret, common)
        for unit, line in lines.items():
            if secret == "DATABASE_URL":
                continue  # every unit has its own login
            assert (secret in line) == (unit == owner), (secret, unit, line)
