"""The local standalone cluster's lib dir and config (no daemon started): flink-python and its
PEMJA must be on the daemons' classpath, or the second thread-mode job on a TaskManager fails
(tests/integration/test_cluster_thread_mode_resubmit.py runs the real thing)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pyflink")

from connectors.jars import REQUIRED_FLINK_JARS  # noqa: E402
from connectors.settings import StackSettings  # noqa: E402
from deploy.local.flink_cluster import FlinkCluster, flink_home  # noqa: E402


@pytest.fixture
def cluster(tmp_path) -> FlinkCluster:
    jars = tmp_path / "jars" / "flink"
    jars.mkdir(parents=True)
    for prefix in REQUIRED_FLINK_JARS:
        (jars / f"{prefix}1.0.jar").write_bytes(b"")
    return FlinkCluster(StackSettings(home=tmp_path / "home", jars_dir=tmp_path / "jars"))


def test_lib_dir_is_pyflink_lib_plus_flink_python(cluster):
    names = cluster.write_lib_dir()
    shipped = sorted(p.name for p in (flink_home() / "lib").glob("*.jar"))
    python_jar = [n for n in names if n.startswith("flink-python-")]
    assert len(python_jar) == 1
    assert sorted(set(names) - set(python_jar)) == shipped
    target = (cluster.lib_dir / python_jar[0]).resolve()
    assert target == (flink_home() / "opt" / python_jar[0]).resolve()
    assert cluster.write_lib_dir() == names  # rebuilt, not duplicated
    assert cluster.daemon_env()["FLINK_LIB_DIR"] == str(cluster.lib_dir)
    # the client (`bin/flink run`) keeps the stock lib/
    assert cluster.env().get("FLINK_LIB_DIR") != str(cluster.lib_dir)


def test_config_loads_pemja_parent_first(cluster):
    cluster.write_config()
    lines = (cluster.conf_dir / "config.yaml").read_text().splitlines()
    key = "classloader.parent-first-patterns.additional: "
    value = json.loads(next(ln for ln in lines if ln.startswith(key))[len(key) :])
    assert "pemja." in value


def test_config_spreads_slots_over_taskmanagers(cluster):
    # thread mode runs one CPython per TaskManager JVM: a parallelism-2 job must get one slot
    # on each TaskManager, or both subtasks share one GIL (measured: 1,982 vs 3,775 events/s)
    cluster.write_config()
    lines = (cluster.conf_dir / "config.yaml").read_text().splitlines()
    assert 'taskmanager.load-balance.mode: "SLOTS"' in lines


def test_a_daemon_is_found_once_its_child_has_become_java(cluster, monkeypatch):
    """flink-daemon.sh writes its forked child's pid at once; the child is bash until it execs
    java, and only then does its command line name our conf dir. Here the child execs after
    0.5 s: a single look found nothing and raised "TaskManager did not start"."""
    import signal
    import subprocess

    from deploy.local.procs import stop_process_groups

    children: list[subprocess.Popen] = []

    def fake_script(self, name: str, *args: str) -> None:
        child = subprocess.Popen(
            ["bash", "-c", 'sleep 0.5; exec -a "$MARK" sleep 30'],
            env={"MARK": f"java --configDir {cluster.conf_dir}", "PATH": "/usr/bin:/bin"},
            start_new_session=True,
        )
        children.append(child)
        pid_file = cluster._pid_file("taskexecutor")
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        with pid_file.open("a") as out:
            out.write(f"{child.pid}\n")

    monkeypatch.setattr(FlinkCluster, "write_lib_dir", lambda self: [])
    monkeypatch.setattr(FlinkCluster, "_script", fake_script)
    try:
        assert cluster.start_taskmanager(wait=False) == children[0].pid
        assert cluster.taskmanager_pids() == [children[0].pid]
    finally:
        stop_process_groups(children, ((signal.SIGKILL, 10),))
