import shutil
import tempfile
from pathlib import Path

import psycopg2
import pytest

from devstack import postgres
from devstack.origin import Origin
from devstack.s3 import SeaweedS3
from tests.support.stack import TOKEN, Stack

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
CORPUS = FIXTURES / "corpus"

#: Markers by directory: where a test sits says what it needs. unit/ and sql/ need at
#: most a database; system/ and faults/ start the whole system (listener, workers,
#: S3, origin); deploy/ checks the deployment files and the installed package.
DIRECTORY_MARKERS = {"unit": ("unit",), "sql": ("sql",), "system": ("e2e",), "faults": ("e2e", "faults"),
                     "deploy": ("deploy",)}


def pytest_collection_modifyitems(items):
    for item in items:
        directory = Path(str(item.fspath)).resolve().relative_to(TESTS).parts[0]
        for name in DIRECTORY_MARKERS.get(directory, ()):
            item.add_marker(getattr(pytest.mark, name))


@pytest.fixture(scope="session")
def pg_server():
    # An embedded server's data lives under the project: pytest's own temporary
    # folders are private to this user (0700), which the server's user cannot enter.
    server = postgres.start(Path(__file__).resolve().parent.parent / ".run")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed"), bucket="media").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def origin_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("raid")
    for path in CORPUS.iterdir():
        shutil.copy(path, root / path.name)
    return root


@pytest.fixture(scope="session")
def origin(origin_root):
    server = Origin(origin_root, TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def broker(request):
    """The broker of the systems a test makes: "postgres" unless the test
    parametrizes it (`@pytest.mark.parametrize("broker", BROKERS, indirect=True)`)."""
    return getattr(request, "param", "postgres")


@pytest.fixture
def make_stack(pg_server, s3, origin, tmp_path, broker):
    stacks = []

    def make(**env):
        stack = Stack(pg_server, s3, origin, Path(tempfile.mkdtemp(dir=tmp_path)), broker=broker, **env)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture
def stack(make_stack):
    """A running system: listener and two worker processes of three threads."""
    s = make_stack()
    s.start_workers()
    s.start_listener()
    return s


@pytest.fixture
def schema_db(pg_server):
    """A fresh database with sql/ applied: (autocommit connection, URL)."""
    url = pg_server.create_database()
    pg_server.apply_sql(url)
    conn = psycopg2.connect(url)
    conn.autocommit = True
    yield conn, url
    conn.close()
    pg_server.drop_database(url)
