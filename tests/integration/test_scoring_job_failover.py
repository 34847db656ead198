"""Acceptance 4: fault tolerance on the standalone cluster.

The job is submitted with `fraudstream submit` (unbounded, checkpoints every 2 s). After the
first completed checkpoint and first rows in Postgres, the TaskManager running the scoring
operator is killed (SIGKILL) and more traffic is produced. The job must restart from its last
checkpoint on the remaining slots, and afterwards every transaction is in
`scored_transactions` exactly once and every alert decision has its row in `alerts` (and its
message on the alerts topic, where duplicates are allowed: at-least-once). The killed
TaskManager is restored at the end.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

from schemas.card_token import CardTokenizer
from tests.integration.jobs.harness import REPO, create_topics, delete_topics, produce, read_topic
from tests.integration.jobs.streams import valid_records

pytestmark = [pytest.mark.integration, pytest.mark.flink_cluster]

N_BEFORE, N_AFTER = 1_500, 1_500


def _wait(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _scored_count(conn, ids) -> int:
    return conn.execute(
        "SELECT count(*) FROM scored_transactions WHERE transaction_id = ANY(%s)", (ids,)
    ).fetchone()[0]


def _taskmanager_pid_of_job(cluster, job_id: str) -> int:
    """The pid of a TaskManager that runs a subtask of the job's scoring vertex."""
    job = cluster.rest(f"/jobs/{job_id}")
    vertex = next(v for v in job["vertices"] if "score-shard" in v["name"])
    tms = cluster.rest(f"/jobs/{job_id}/vertices/{vertex['id']}/taskmanagers")["taskmanagers"]
    # `endpoint` is host:data-port of the TaskManager; the process listening there is it
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    live = set(cluster.taskmanager_pids())
    for tm in tms:
        port = int(tm["endpoint"].rsplit(":", 1)[1])
        for line in listening.splitlines():
            if f":{port} " in line:
                m = re.search(r"pid=(\d+)", line)
                if m and int(m.group(1)) in live:
                    return int(m.group(1))
    raise AssertionError(f"no live TaskManager pid for {tms}")


def test_killed_taskmanager_restarts_from_checkpoint_without_loss_or_duplicates(
    stack, flink_cluster
):
    import psycopg

    run_id = uuid.uuid4().hex[:8]
    tokenizer = CardTokenizer(stack.card_token_key.encode())
    records = valid_records(tokenizer, run_id, N_BEFORE + N_AFTER, raw_pan_every=0)
    ids = [r.txn.transaction_id for r in records]
    topics = create_topics(stack.kafka_bootstrap, "job-failover")
    job_id = None
    killed = False
    try:
        produce(stack.kafka_bootstrap, topics.source, records[:N_BEFORE])
        cmd = [
            sys.executable, "-m", "jobs.cli", "submit",
            "--jobmanager", flink_cluster.address,
            "--set", f"source_topic={topics.source}",
            "--set", f"dlq_topic={topics.dlq}",
            "--set", f"alerts_topic={topics.alerts}",
            "--set", f"group_id=job-failover-{run_id}",
            "--set", "parallelism=2",
            "--set", "checkpoint_interval_ms=2000",
            "--set", "restart_attempts=30",
            "--set", "restart_delay_ms=2000",
            "--set", "bundle_size=100",
            "--set", "bundle_time_ms=100",
            "--set", f"checkpoint_dir={(stack.home / 'flink' / 'checkpoints').as_uri()}",
        ]
        out = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
            env=dict(os.environ), check=False,
        )
        match = re.search(r"JobID\s+([0-9a-f]{32})", out.stdout + out.stderr)
        assert match, (out.stdout + out.stderr)[-3000:]
        job_id = match.group(1)

        with psycopg.connect(stack.pg_conninfo("writer"), autocommit=True) as conn:
            _wait(lambda: _scored_count(conn, ids) > 0, 240, "first scored rows")
            _wait(
                lambda: flink_cluster.rest(f"/jobs/{job_id}/checkpoints")["counts"]["completed"]
                > 0,
                120,
                "a completed checkpoint",
            )
            pid = _taskmanager_pid_of_job(flink_cluster, job_id)
            os.kill(pid, signal.SIGKILL)
            killed = True
            produce(stack.kafka_bootstrap, topics.source, records[N_BEFORE:])
            _wait(lambda: _scored_count(conn, ids) == len(ids), 300, "all rows after failover")
            # let the sinks settle (a checkpoint after the last rows) before reading
            time.sleep(3)
            checkpoints = flink_cluster.rest(f"/jobs/{job_id}/checkpoints")
            restored = (checkpoints.get("latest") or {}).get("restored")
            assert restored and restored.get("id") is not None, checkpoints.get("latest")

            rows = conn.execute(
                "SELECT transaction_id, decision FROM scored_transactions"
                " WHERE transaction_id = ANY(%s)",
                (ids,),
            ).fetchall()
            alerts = {
                r[0]
                for r in conn.execute(
                    "SELECT transaction_id FROM alerts WHERE transaction_id = ANY(%s)", (ids,)
                )
            }
        assert sorted(r[0] for r in rows) == sorted(ids)  # each exactly once, none missing
        alert_decisions = {tid for tid, d in rows if d == "alert"}
        assert alert_decisions == alerts, "no alert missing from (or extra in) the table"
        topic_ids = {k.decode() for k, _ in read_topic(stack.kafka_bootstrap, topics.alerts)}
        assert alert_decisions <= topic_ids  # at-least-once: every alert reached the topic
    finally:
        if job_id:
            try:
                flink_cluster.cancel_job(job_id)
            except Exception:  # noqa: BLE001 - the job may have failed already
                pass
        if killed:
            flink_cluster.ensure_taskmanagers()
        delete_topics(stack.kafka_bootstrap, topics)
