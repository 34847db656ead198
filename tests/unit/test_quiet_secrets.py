"""Quiet secrets: no secret value in the job's SQL, its pickled functions, the `flink run`
command line or anything `run`/`submit` print; secrets reach the job's processes through their
environment only. (The serialized job graph: tests/pipeline/test_job_graph_secrets.py.)

Every test uses distinctive fake secrets and looks for their bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.settings import JOB_SECRET_VARS, SECRET_VARS, Secret, StackSettings
from jobs.config import ConfigError, build_config
from tests.fake_secrets import ANALYST_PW, CARD_KEY, SECRETS_ENV, WRITER_PW, leaks


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A stack home whose secrets.env holds the fakes; the process environment has none."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "secrets.env").write_text("".join(f"{k}={v}\n" for k, v in SECRETS_ENV.items()))
    monkeypatch.setenv("FRAUDSTREAM_HOME", str(home))
    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    return home


def _config():
    return build_config({"write_scored": True}, environ=SECRETS_ENV, stack={})


def test_sink_ddl_names_the_password_variable_never_the_password():
    from connectors import kafka, postgres_sinks

    cfg = _config()
    assert cfg.pg_password.reveal() == WRITER_PW  # the client sees it; the job must not
    ddls = postgres_sinks.sink_ddls(cfg.postgres_sink_spec())
    assert len(ddls) == 5
    for ddl in ddls:
        assert not leaks(ddl)
        assert "'password-env' = 'FRAUDSTREAM_PG_WRITER_PASSWORD'" in ddl
        assert "'password' =" not in ddl
    others = [*kafka.sink_ddls(cfg.kafka_sink_spec()),
              kafka.source_table_ddl("src", cfg.kafka_source_spec())]
    assert not leaks("\n".join(others))


def test_secrets_are_refused_as_flags_without_being_echoed(home):
    from jobs.cli import app

    with pytest.raises(ConfigError, match="FRAUDSTREAM_CARD_TOKEN_KEY"):
        build_config({"card_token_key": CARD_KEY}, environ={}, stack={})
    for command in (["submit", "--dry-run"], ["run", "--show-config"]):
        for field, value in (("pg_password", WRITER_PW), ("card-token-key", CARD_KEY)):
            result = CliRunner().invoke(app, [*command, "--set", f"{field}={value}"])
            assert result.exit_code != 0, result.output
            assert "secret" in result.output
            assert not leaks(result.output)


def test_submit_prints_and_passes_no_secret(home, monkeypatch):
    from jobs.cli import app
    from jobs.cli.run import submit_command

    monkeypatch.setenv("FRAUDSTREAM_PG_WRITER_PASSWORD", WRITER_PW)  # exported, too
    result = CliRunner().invoke(app, ["submit", "--dry-run", "--parallelism", "1",
                                      "--set", "group_id=g1"])
    assert result.exit_code == 0, result.output
    assert "pg_password = *****" in result.output  # the client sees it, masked
    cmd_line = next(line for line in result.output.splitlines() if "/bin/flink run" in line)
    assert "--group-id g1" in cmd_line
    assert not leaks(result.output)
    argv = submit_command("127.0.0.1:1", {"parallelism": 1, "group_id": "g1"})
    assert not leaks(" ".join(argv))
    shown = CliRunner().invoke(app, ["run", "--show-config"])
    assert shown.exit_code == 0 and "card_token_key = *****" in shown.output
    assert not leaks(shown.output)


def test_run_puts_the_jobs_secrets_into_its_environment(home, monkeypatch):
    """`fraudstream run`: the MiniCluster's JVM inherits this environment when PyFlink starts
    it; the analyst password is not the job's and stays out."""
    from jobs.cli.run import export_job_secrets

    monkeypatch.setenv("FRAUDSTREAM_CARD_TOKEN_KEY", "exported-key-wins-0123456")
    assert export_job_secrets() == ["FRAUDSTREAM_PG_WRITER_PASSWORD"]
    assert os.environ["FRAUDSTREAM_PG_WRITER_PASSWORD"] == WRITER_PW
    assert os.environ["FRAUDSTREAM_CARD_TOKEN_KEY"] == "exported-key-wins-0123456"
    assert "FRAUDSTREAM_PG_ANALYST_PASSWORD" not in os.environ


def test_cluster_daemons_get_the_jobs_secrets_in_their_environment_only(tmp_path, monkeypatch):
    pytest.importorskip("pyflink")
    from connectors.jars import REQUIRED_FLINK_JARS
    from deploy.local.flink_cluster import FlinkCluster

    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    jars = tmp_path / "jars" / "flink"
    jars.mkdir(parents=True)
    for prefix in REQUIRED_FLINK_JARS:
        (jars / f"{prefix}1.0.jar").write_bytes(b"")
    cluster = FlinkCluster(StackSettings(
        home=tmp_path / "home", jars_dir=tmp_path / "jars", writer_password=Secret(WRITER_PW),
        analyst_password=Secret(ANALYST_PW), card_token_key=Secret(CARD_KEY),
    ))
    daemons = cluster.daemon_env()
    assert {k: daemons[k] for k in JOB_SECRET_VARS} == {
        "FRAUDSTREAM_PG_WRITER_PASSWORD": WRITER_PW, "FRAUDSTREAM_CARD_TOKEN_KEY": CARD_KEY}
    assert ANALYST_PW not in daemons.values()
    assert not leaks(" ".join(cluster.env().values()))  # the `flink run` client: none
    cluster.write_config()
    for path in cluster.conf_dir.iterdir():
        assert not leaks(path.read_bytes()), path
