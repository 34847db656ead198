"""Acceptance 4 and 5 (issue 2): up twice, down leaves nothing behind, data dirs reusable; a
taken port or a missing java fails fast with one clear line.

Each test runs `fraudstream` in a subprocess on its OWN home and ports, so the shared stack the
other tests use is never touched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from connectors.settings import DEFAULT_HOME, SECRET_VARS, load_settings
from deploy.local.procs import pid_alive, port_in_use
from deploy.local.stack import status

FRAUDSTREAM = [sys.executable, "-m", "jobs.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def private_env(stack):
    """Environment for a private stack: own home (under the shared home, so the `postgres` OS
    user can reach it), own free ports, the shared jar cache, no inherited secrets."""
    base = Path(os.environ.get("FRAUDSTREAM_HOME", DEFAULT_HOME))
    home = base / "test-homes" / uuid.uuid4().hex[:10]
    home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    env.update(
        FRAUDSTREAM_HOME=str(home),
        FRAUDSTREAM_JARS_DIR=str(stack.jars_dir),
        FRAUDSTREAM_KAFKA_PORT=str(_free_port()),
        FRAUDSTREAM_KAFKA_CONTROLLER_PORT=str(_free_port()),
        FRAUDSTREAM_PG_PORT=str(_free_port()),
        FRAUDSTREAM_FLINK_REST_PORT=str(_free_port()),
        FRAUDSTREAM_FLINK_RPC_PORT=str(_free_port()),
    )
    env.pop("FRAUDSTREAM_KAFKA_BOOTSTRAP", None)
    yield env
    # Whatever happened, stop this home's processes before deleting it.
    subprocess.run([*FRAUDSTREAM, "down"], env=env, capture_output=True, timeout=180)
    shutil.rmtree(home, ignore_errors=True)


def _fs(env: dict[str, str], *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*FRAUDSTREAM, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _ports(env: dict[str, str]) -> list[int]:
    return [
        int(env[k])
        for k in (
            "FRAUDSTREAM_KAFKA_PORT",
            "FRAUDSTREAM_KAFKA_CONTROLLER_PORT",
            "FRAUDSTREAM_PG_PORT",
            "FRAUDSTREAM_FLINK_REST_PORT",
            "FRAUDSTREAM_FLINK_RPC_PORT",
        )
    ]


@pytest.mark.flink_cluster
def test_up_twice_then_down_leaves_nothing_and_data_is_reusable(private_env):
    settings = load_settings(env=private_env)

    first = _fs(private_env, "up", "--flink-cluster", "--partitions", "2")
    assert first.returncode == 0, first.stderr + first.stdout
    running = {s.name: s.pids for s in status(settings)}
    assert all(running[name] for name in ("kafka", "postgres", "flink")), running
    pids = [p for group in running.values() for p in group]
    assert len(running["flink"]) == 3  # JobManager + 2 TaskManagers

    second = _fs(private_env, "up", "--flink-cluster")
    assert second.returncode == 0, second.stderr + second.stdout
    for name in ("kafka", "postgres", "flink"):
        assert f"{name}" in second.stdout and "already running" in second.stdout
    assert {s.name: s.pids for s in status(settings)} == running

    stopped = _fs(private_env, "down")
    assert stopped.returncode == 0, stopped.stderr + stopped.stdout
    assert [p for p in pids if pid_alive(p)] == []
    assert [p for p in _ports(private_env) if port_in_use(p)] == []
    assert not any(s.running for s in status(settings))

    again = _fs(private_env, "up")
    assert again.returncode == 0, again.stderr + again.stdout
    assert "topics    present" in again.stdout  # Kafka data dir reused
    assert "database  present" in again.stdout  # Postgres data dir reused
    assert "migrate   up to date" in again.stdout
    assert _fs(private_env, "down").returncode == 0
    assert not any(s.running for s in status(settings))


def test_up_fails_fast_naming_a_taken_kafka_port(private_env):
    port = int(private_env["FRAUDSTREAM_KAFKA_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = _fs(private_env, "up", timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "Kafka" in lines[0]
    assert "kafka.log" in lines[0]
    # Failed before starting anything.
    assert not any(s.running for s in status(load_settings(env=private_env)))


def test_up_without_java_is_one_clear_line(private_env):
    env = dict(private_env, PATH="/nonexistent")
    env.pop("JAVA_HOME", None)
    result = _fs(env, "up", timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "java not found" in lines[0], result.stderr
