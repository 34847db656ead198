"""Unit tests for the stack's pure parts: settings, secrets file, jars lookup, migrations
discovery, Kafka cluster ids, port probing (no stack needed)."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from connectors.jars import JarsMissingError, flink_jar_paths, flink_jar_urls
from connectors.settings import SettingsError, load_settings
from deploy.local.kafka import new_cluster_id
from deploy.local.migrate import MigrationError, discover
from deploy.local.procs import StackError, port_in_use, require_free_ports
from deploy.local.stack import ensure_secrets


def test_defaults_are_loopback_and_off_standard_ports(tmp_path):
    s = load_settings(env={"FRAUDSTREAM_HOME": str(tmp_path)})
    assert s.kafka_bootstrap == "127.0.0.1:29092"
    assert (s.pg_host, s.pg_port, s.pg_database) == ("127.0.0.1", 25432, "fraudstream")
    assert s.flink_rest_url == "http://127.0.0.1:28081"
    assert s.topics == ("transactions", "transactions.dlq", "fraud-alerts")
    assert s.jars_dir == tmp_path / "jars"
    assert s.jdbc_url() == (
        "jdbc:postgresql://127.0.0.1:25432/fraudstream"
        "?stringtype=unspecified&reWriteBatchedInserts=true"
    )


def test_env_then_overrides_win(tmp_path):
    env = {
        "FRAUDSTREAM_HOME": str(tmp_path),
        "FRAUDSTREAM_KAFKA_PORT": "1234",
        "FRAUDSTREAM_PG_PORT": "2345",
    }
    s = load_settings(env=env, overrides={"pg_port": 3456, "kafka_partitions": None})
    assert (s.kafka_port, s.pg_port, s.kafka_partitions) == (1234, 3456, 4)


def test_bad_port_names_the_variable(tmp_path):
    with pytest.raises(SettingsError, match="FRAUDSTREAM_PG_PORT"):
        load_settings(env={"FRAUDSTREAM_HOME": str(tmp_path), "FRAUDSTREAM_PG_PORT": "x"})


def test_secrets_come_from_env_before_file_and_are_masked(tmp_path):
    (tmp_path / "secrets.env").write_text(
        "FRAUDSTREAM_PG_WRITER_PASSWORD=from-file\nFRAUDSTREAM_CARD_TOKEN_KEY=key-file\n"
    )
    env = {"FRAUDSTREAM_HOME": str(tmp_path), "FRAUDSTREAM_PG_WRITER_PASSWORD": "from-env"}
    s = load_settings(env=env)
    assert s.writer_password.reveal() == "from-env"
    assert s.card_token_key.reveal() == "key-file"
    for text in (repr(s), str(s.describe())):
        assert "from-env" not in text and "key-file" not in text
    assert s.describe()["writer_password"] == "****"
    assert "password=from-env" in s.pg_conninfo("writer")


def test_missing_secret_error_names_variable_and_fix(tmp_path):
    s = load_settings(env={"FRAUDSTREAM_HOME": str(tmp_path)})
    with pytest.raises(SettingsError, match="FRAUDSTREAM_PG_ANALYST_PASSWORD.*fraudstream up"):
        s.pg_conninfo("analyst")


def test_ensure_secrets_generates_missing_only_with_mode_0600(tmp_path):
    env = {"FRAUDSTREAM_CARD_TOKEN_KEY": "given"}
    generated = ensure_secrets(tmp_path, env)
    assert generated == ["FRAUDSTREAM_PG_WRITER_PASSWORD", "FRAUDSTREAM_PG_ANALYST_PASSWORD"]
    path = tmp_path / "secrets.env"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    before = path.read_text()
    assert ensure_secrets(tmp_path, env) == []
    assert path.read_text() == before
    s = load_settings(env={"FRAUDSTREAM_HOME": str(tmp_path)})
    assert len(s.writer_password.reveal()) >= 24 and s.writer_password != s.analyst_password


def test_flink_jars_missing_names_bootstrap(tmp_path):
    s = load_settings(env={"FRAUDSTREAM_HOME": str(tmp_path)})
    with pytest.raises(JarsMissingError, match="bootstrap.sh"):
        flink_jar_paths(s)
    folder = tmp_path / "jars" / "flink"
    folder.mkdir(parents=True)
    for name in (
        "flink-sql-connector-kafka-5.0.0-2.2.jar",
        "flink-connector-jdbc-core-4.0.0-2.0.jar",
        "postgresql-42.7.8.jar",
        "flink-connector-jdbc-postgres-4.0.0-2.0.jar",
    ):
        (folder / name).touch()
    with pytest.raises(JarsMissingError, match="fraudstream-flink-ops"):
        flink_jar_paths(s)
    (folder / "fraudstream-flink-ops.jar").touch()
    urls = flink_jar_urls(s)
    assert len(urls) == 5 and all(u.startswith("file:///") and u.endswith(".jar") for u in urls)


def test_migrations_are_discovered_in_version_order(tmp_path):
    for name in ("010_later.sql", "002_second.sql", "001_first.sql"):
        (tmp_path / name).write_text(f"-- {name}\n")
    found = discover(tmp_path)
    assert [(m.version, m.name) for m in found] == [(1, "first"), (2, "second"), (10, "later")]
    assert found[0].checksum != found[1].checksum


@pytest.mark.parametrize("bad", ["1_short.sql", "001-dash.sql", "abc_x.sql"])
def test_badly_named_migration_is_refused(tmp_path, bad):
    (tmp_path / bad).write_text("select 1;")
    with pytest.raises(MigrationError, match="NNN_name.sql"):
        discover(tmp_path)


def test_duplicate_migration_version_is_refused(tmp_path):
    (tmp_path / "003_a.sql").write_text("select 1;")
    (tmp_path / "003_b.sql").write_text("select 2;")
    with pytest.raises(MigrationError, match="version 3"):
        discover(tmp_path)


def test_repository_migrations_start_with_core_tables_and_grants():
    names = [(m.version, m.name) for m in discover()]
    assert names[:2] == [(1, "core_tables"), (2, "roles_and_grants")]


def test_cluster_id_is_22_char_base64url():
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert set(cid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_taken_port_is_detected_and_named(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_in_use(port)
        with pytest.raises(StackError, match=f"Kafka port 127.0.0.1:{port}.*kafka.log"):
            require_free_ports([("Kafka", port)], tmp_path / "kafka.log")
    assert not port_in_use(port)
