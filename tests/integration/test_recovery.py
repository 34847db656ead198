"""Stop, resume and upgrade with state, on the standalone cluster.

Each test runs the job over the same pre-filled topic of 100,000 transactions (parallelism 2,
checkpoints every 2 s, alerts EXACTLY-ONCE into a topic of its own), disrupts it several times,
each after a checkpoint completed since the last (the first at 15,000-25,000 rows), and checks
once the (resumed) job wrote every row and completed a checkpoint after that
(tests/integration/jobs/recovery.py):
- 0 lost rows: every transaction has its scored_transactions row (a primary key: no duplicate
  row can exist, so duplicates are counted on the topic);
- every alert decision has its alerts row, and no other;
- the alerts topic read with `read_committed` holds each alert exactly once (0 duplicates);
- every event, so also the first of each card after the recovery, has exactly its offline
  features (`models.features.offline_features`): state restored, not rebuilt from scratch.
Disruptions, two runs of the job: kill -9 of the TaskManager running the scorer, then Postgres
restarted, then the Kafka broker restarted (the same job recovers each time); kill -9 of
the JobManager, then a new one and `fraudstream submit --from-checkpoint latest`, then an upgrade
(`fraudstream stop` with a savepoint, then a changed job - parallelism 2 -> 1, other batch size
and name - from `submit --from-savepoint latest`). Two runs instead of one per disruption: each
run is ~100 s of the suite, and a loss or duplicate at any step still shows in the checks at
the end; what each step restored is checked right after it.
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
    Disruption,
    Outcome,
    Run,
    path_of,
    prepare_source,
    restored,
    run_with_disruptions,
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
          f"disrupted at {outcome.rows_at_disruptions} rows, jobs {outcome.job_ids}, "
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


def test_taskmanager_killed_then_postgres_then_broker_restarted(run, source, stack,
                                                                 flink_cluster):
    """One job through three failures it recovers from by itself."""
    from deploy.local.kafka import KafkaBroker
    from deploy.local.postgres import PostgresServer

    def kill_taskmanager(job_id: str) -> None:
        os.kill(taskmanager_pid_of_job(flink_cluster, job_id), signal.SIGKILL)
        assert restored(flink_cluster, job_id).get("id") is not None
        # the job runs on in the other TaskManager's two slots; starting a new TaskManager
        # here took ~20 s of the run, in which the rows meant for the next steps went by

    def restart_broker(job_id: str) -> None:
        broker = KafkaBroker(stack)
        broker.stop()
        broker.start()

    def restart_postgres(job_id: str) -> None:
        server = PostgresServer(stack)
        server.stop()
        server.start()

    try:
        # the slowest recovery (the broker's: exactly-once producers) last, so that each
        # step still comes well before the run's end
        outcome = run_with_disruptions(run, [Disruption(15_000, kill_taskmanager),
                                             Disruption(30_000, restart_postgres),
                                             Disruption(45_000, restart_broker)])
    finally:
        flink_cluster.ensure_taskmanagers()
    assert len(outcome.job_ids) == 1  # the same job throughout
    check(outcome, source)


def test_jobmanager_killed_and_resumed_then_upgraded_through_a_savepoint(run, source,
                                                                          flink_cluster):
    """The job lost with the JobManager, resumed from its latest retained checkpoint; later
    stopped with a savepoint and replaced by a changed job (parallelism 2 -> 1, another batch
    size and name) started from it."""
    def kill_jobmanager(job_id: str) -> str:
        flink_cluster.kill_jobmanager()
        flink_cluster.start_jobmanager()
        assert job_id not in {j["jid"] for j in flink_cluster.list_jobs()}  # no HA: lost
        resumed = run.submit(["--from-checkpoint", "latest"])
        assert str(path_of(run.checkpoint_dir)) in restored(flink_cluster,
                                                            resumed)["external_path"]
        return resumed

    def upgrade(job_id: str) -> str:
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
        changed = run.submit(
            ["--from-savepoint", "latest"],
            parallelism=1, batch_max_records=500, job_name=f"{run.name}-v2",
        )
        from_savepoint = restored(flink_cluster, changed)
        assert from_savepoint["is_savepoint"], from_savepoint
        assert str(path_of(savepoint)) in from_savepoint["external_path"], from_savepoint
        return changed

    outcome = run_with_disruptions(run, [Disruption(25_000, kill_jobmanager),
                                         Disruption(60_000, upgrade)])
    assert len(outcome.job_ids) == 3
    check(outcome, source)
