"""Issue 10 point 4: stop, resume and upgrade with state, on the standalone cluster.

Each test runs the job over the same pre-filled topic of 100,000 transactions (parallelism 2,
checkpoints every 2 s, alerts EXACTLY-ONCE into a topic of its own), disrupts it after 25,000
rows and a completed checkpoint, and checks once the (resumed) job wrote every row and
completed a checkpoint after that (tests/integration/jobs/recovery.py):
- 0 lost rows: every transaction has its scored_transactions row (a primary key: no duplicate
  row can exist, so duplicates are counted on the topic);
- every alert decision has its alerts row, and no other;
- the alerts topic read with `read_committed` holds each alert exactly once (0 duplicates);
- every event, so also the first of each card after the recovery, has exactly its offline
  features (`models.features.offline_features`): state restored, not rebuilt from scratch.
Disruptions: kill -9 of the TaskManager running the scorer; kill -9 of the JobManager, then a
new one and `fraudstream submit --from-checkpoint latest`; the Kafka broker restarted; Postgres
restarted; an upgrade (`fraudstream stop` with a savepoint, then a changed job - parallelism
2 -> 1, other batch size and name - from `submit --from-savepoint latest`).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from models.features import FEATURE_NAMES, offline_features
from tests.integration.jobs.harness import REPO
from tests.integration.jobs.recovery import (
    EVENTS,
    Outcome,
    Run,
    path_of,
    prepare_source,
    run_with_disruption,
    taskmanager_pid_of_job,
)

pytestmark = [pytest.mark.integration, pytest.mark.flink_cluster]

COUNTS = {n for n in FEATURE_NAMES if n.startswith("count") or n == "card_txn_count"}


@pytest.fixture(scope="module")
def source(stack):
    from confluent_kafka.admin import AdminClient

    from deploy.local.kafka import create_topics

    topic = f"test-recovery-src-{os.getpid()}-{int(time.time())}"
    create_topics(stack.kafka_bootstrap, (topic,), 4)
    try:
        src = prepare_source(stack, topic)
        src.offline = {t.transaction_id: v for t, v in offline_features(src.txns)}
        yield src
    finally:
        AdminClient({"bootstrap.servers": stack.kafka_bootstrap}).delete_topics([topic])


@pytest.fixture
def run(request, stack, flink_cluster, source, topic_factory):
    flink_cluster.ensure_taskmanagers()
    name = request.node.name.removeprefix("test_")[:20].replace("_", "-")
    run = Run(stack, flink_cluster, source, name, alerts_topic=topic_factory("recovery-alerts"))
    yield run
    shutil.rmtree(path_of(run.checkpoint_dir).parent, ignore_errors=True)


def check(outcome: Outcome, source) -> None:
    print(f"\n{len(outcome.rows)} rows, {len(outcome.topic_keys)} alerts on the topic, "
          f"disrupted at {outcome.rows_at_disruption} rows, jobs {outcome.job_ids}, "
          f"{outcome.seconds:.1f} s")
    ids = set(source.ids)
    got = {r[0] for r in outcome.rows}
    assert len(outcome.rows) == EVENTS and got == ids, f"lost {len(ids - got)} rows"
    decided = {r[0] for r in outcome.rows if r[1] == "alert"}
    assert decided, "no alert at all: the check below would prove nothing"
    assert outcome.alert_rows == decided
    dups = {k: n for k, n in Counter(outcome.topic_keys).items() if n > 1}
    assert not dups, f"{len(dups)} alerts duplicated on the topic, e.g. {list(dups.items())[:3]}"
    assert set(outcome.topic_keys) == decided
    mismatches = []
    for tid, _decision, features in outcome.rows:
        for name, want in zip(FEATURE_NAMES, source.offline[tid], strict=True):
            have = features[name]
            same = have == want if name in COUNTS else math.isclose(
                have, want, rel_tol=1e-9, abs_tol=1e-9)
            if not same:
                mismatches.append((tid, name, have, want))
    assert not mismatches, f"{len(mismatches)} feature mismatches, e.g. {mismatches[:5]}"


def test_taskmanager_killed(run, source, flink_cluster):
    def disrupt(job_id: str) -> None:
        os.kill(taskmanager_pid_of_job(flink_cluster, job_id), signal.SIGKILL)
        return None

    try:
        outcome = run_with_disruption(run, disrupt)
    finally:
        flink_cluster.ensure_taskmanagers()
    restored = flink_cluster.rest(f"/jobs/{outcome.job_ids[0]}/checkpoints")["latest"]["restored"]
    assert restored and restored.get("id") is not None, "the job did not restore a checkpoint"
    check(outcome, source)


def test_jobmanager_killed_then_resumed_from_latest_checkpoint(run, source, flink_cluster):
    def disrupt(job_id: str) -> str:
        flink_cluster.kill_jobmanager()
        flink_cluster.start_jobmanager()
        assert job_id not in {j["jid"] for j in flink_cluster.list_jobs()}  # no HA: lost
        return run.submit(["--from-checkpoint", "latest"])

    outcome = run_with_disruption(run, disrupt)
    restored = flink_cluster.rest(f"/jobs/{outcome.job_ids[1]}/checkpoints")["latest"]["restored"]
    assert restored and str(path_of(run.checkpoint_dir)) in restored["external_path"]
    check(outcome, source)


def test_kafka_broker_restarted(run, source, stack):
    from deploy.local.kafka import KafkaBroker

    def disrupt(job_id: str) -> None:
        broker = KafkaBroker(stack)
        broker.stop()
        broker.start()
        return None

    check(run_with_disruption(run, disrupt), source)


def test_postgres_restarted(run, source, stack):
    from deploy.local.postgres import PostgresServer

    def disrupt(job_id: str) -> None:
        server = PostgresServer(stack)
        server.stop()
        server.start()
        return None

    check(run_with_disruption(run, disrupt), source)


def test_upgrade_stop_with_savepoint_then_changed_job(run, source, flink_cluster):
    def disrupt(job_id: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "jobs.cli", "stop", job_id,
             "--jobmanager", flink_cluster.address.removeprefix("http://"),
             "--savepoint-dir", run.savepoint_dir],
            cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        savepoint = out.stdout.strip()
        assert (path_of(savepoint) / "_metadata").is_file(), out.stdout
        assert flink_cluster.job_state(job_id) == "FINISHED"  # stopped, not failed
        return run.submit(
            ["--from-savepoint", "latest"],
            parallelism=1, batch_max_records=500, job_name=f"{run.name}-v2",
        )

    outcome = run_with_disruption(run, disrupt)
    restored = flink_cluster.rest(f"/jobs/{outcome.job_ids[1]}/checkpoints")["latest"]["restored"]
    assert restored and restored["is_savepoint"], restored
    check(outcome, source)
