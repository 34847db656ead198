"""Issue 13, clone anywhere: a stack home the `postgres` OS user cannot reach (a checkout under
/root or in a `mktemp -d` dir, mode 0700) still gets a working Postgres, kept outside the home;
`down` stops it there, `up` finds it again, `down --purge` removes it.

Only Postgres is started (library calls), on this test's own home and free ports; the shared
stack is never touched. Needs root (the case only exists when `up` runs as root) and Debian's
postgresql package.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

import psycopg
import pytest

from connectors.settings import load_settings
from deploy.local.postgres import OS_USER, PostgresServer, outside_root
from deploy.local.stack import down, ensure_secrets, status

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def private_home():
    """A `tempfile.mkdtemp()` home (mode 0700, owned by root) with its own free ports."""
    if os.geteuid() != 0:
        pytest.skip("the postgres OS user only runs the server when `up` runs as root")
    if outside_root() is None:
        pytest.skip(f"no OS user {OS_USER!r} (Debian's postgresql package)")
    home = Path(tempfile.mkdtemp(prefix="fraudstream-clone-"))
    env = {
        "FRAUDSTREAM_HOME": str(home),
        "FRAUDSTREAM_JARS_DIR": str(home / "jars"),
        "FRAUDSTREAM_PG_PORT": str(_free_port()),
        "FRAUDSTREAM_KAFKA_PORT": str(_free_port()),
        "FRAUDSTREAM_KAFKA_CONTROLLER_PORT": str(_free_port()),
        "FRAUDSTREAM_FLINK_REST_PORT": str(_free_port()),
        "FRAUDSTREAM_FLINK_RPC_PORT": str(_free_port()),
    }
    ensure_secrets(home, env={})
    settings = load_settings(env=env)
    server = PostgresServer(settings)
    yield settings
    # Whatever happened: stop this home's server and remove its cluster, then the home.
    server.stop()
    if server.outside:
        shutil.rmtree(server.base, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


def test_postgres_of_a_0700_home_runs_outside_it_and_purge_removes_it(private_home):
    settings = private_home
    assert stat.S_IMODE(settings.home.stat().st_mode) == 0o700
    server = PostgresServer(settings)
    assert not server.home_reachable()

    server.start()
    assert server.is_running()
    outside = server.base
    assert outside == server.outside_dir() and outside.parent == outside_root()
    assert (settings.home / "postgres").resolve() == outside  # the record: a link
    assert stat.S_IMODE(outside.stat().st_mode) == 0o700
    assert outside.stat().st_uid == outside_root().parent.stat().st_uid  # the OS user's
    assert (outside / "home").read_text().strip() == str(settings.home)
    assert server.data_dir == outside / "data"

    assert server.ensure_database_and_roles()  # roles and database created
    with psycopg.connect(settings.pg_conninfo("analyst")) as conn:  # TCP, password
        assert conn.execute("SELECT current_user").fetchone() == (settings.analyst_user,)
    # Root's admin clients (bench/namespace.py) use the settings' socket dir: via the link.
    with psycopg.connect(
        host=str(settings.pg_socket_dir), port=settings.pg_port, user="postgres", dbname="postgres"
    ) as conn:
        assert conn.execute("SHOW data_directory").fetchone() == (str(outside / "data"),)

    rows = {row.name: row for row in status(settings)}
    assert rows["postgres"].running and rows["postgres"].log_file == outside / "postgres.log"

    # `down` stops it where it is and keeps the data; `up` (start) finds the same cluster.
    stopped = down(settings)
    assert stopped["postgres"] and not server.is_running()
    assert (outside / "data" / "PG_VERSION").is_file()
    server.start()
    assert server.ensure_database_and_roles() == []  # database and roles present

    # `down --purge` removes the cluster outside the home and the link to it.
    down(settings, purge=True)
    assert not outside.exists()
    assert not os.path.lexists(settings.home / "postgres")
    assert not any(s.running for s in status(settings))
