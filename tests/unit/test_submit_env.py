"""`fraudstream submit` gives `bin/flink` the local cluster's configuration (jobs.cli.run).

The job leaves options that the cluster configuration sets to the cluster; `bin/flink` reads the
configuration in FLINK_CONF_DIR, else PyFlink's template (parallelism.default 1), so a job sent
to the local 2-TaskManager cluster ran at parallelism 1 before `client_env`.
"""

from __future__ import annotations

from jobs.cli.run import client_env


def _home(tmp_path, with_conf: bool = True):
    conf = tmp_path / "flink" / "conf"
    if with_conf:
        conf.mkdir(parents=True)
        (conf / "config.yaml").write_text("parallelism.default: 2\n")
    return {"FRAUDSTREAM_HOME": str(tmp_path), "FRAUDSTREAM_FLINK_REST_PORT": "28999"}


def test_the_local_cluster_gets_its_own_configuration(tmp_path):
    env = _home(tmp_path)
    for address in ("127.0.0.1:28999", "localhost:28999"):
        assert client_env(address, env)["FLINK_CONF_DIR"] == str(tmp_path / "flink" / "conf")


def test_another_cluster_or_an_explicit_configuration_is_left_alone(tmp_path):
    env = _home(tmp_path)
    assert "FLINK_CONF_DIR" not in client_env("flink.example:8081", env)
    assert client_env("127.0.0.1:28999", {**env, "FLINK_CONF_DIR": "/etc/flink"})[
        "FLINK_CONF_DIR"] == "/etc/flink"


def test_no_local_cluster_configuration_means_no_override(tmp_path):
    assert "FLINK_CONF_DIR" not in client_env("127.0.0.1:28999", _home(tmp_path, False))
