"""publisher-admin migrate runs psql as the schema owner: the owner's password
must never be on psql's command line, where `ps` shows it to every local user."""

import json
import stat
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from devstack import postgres
from publisher.ops import schema

PASSWORD = "s3cret-" + uuid.uuid4().hex


def _with_login(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1].replace("localhost", "127.0.0.1")
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def _recording_psql(tmp_path, real_psql: str):
    """A psql that writes its argv and PGPASSWORD down, then runs the real one."""
    record = tmp_path / "calls"
    fake = tmp_path / "psql"
    fake.write_text(f"""#!{sys.executable}
import json, os, sys
with open({str(record)!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv, "password": os.environ.get("PGPASSWORD")}}) + "\\n")
os.execv({real_psql!r}, [{real_psql!r}, *sys.argv[1:]])
""")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return str(fake), record


def test_migrate_hands_the_owners_password_to_psql_through_the_environment_not_argv(pg_server, tmp_path):
    owner = f"owner_{uuid.uuid4().hex[:8]}"
    postgres.query(pg_server.admin_url, f"CREATE ROLE {owner} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    url = pg_server.create_database()
    try:
        psql, record = _recording_psql(tmp_path, pg_server.psql)
        owner_url = _with_login(url, owner, PASSWORD)
        schema.apply(owner_url, psql=psql)

        calls = [json.loads(line) for line in record.read_text().splitlines()]
        assert len(calls) == len(schema.schema_files())
        for call in calls:
            assert not any(PASSWORD in arg for arg in call["argv"]), call["argv"]
            assert call["password"] == PASSWORD
        # The files were applied as the owner, the password given to psql.
        conn = psycopg2.connect(url)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM publisher_schema_versions")
            assert cur.fetchone()[0] == len(schema.schema_files())
        conn.close()
    finally:
        pg_server.drop_database(url)
        postgres.query(pg_server.admin_url, f"DROP ROLE IF EXISTS {owner}")
