"""Live model and rule changes on the real stack, the job running unbounded on the cluster.

One job, one story (each phase's events are produced after the change, then read back from
Postgres): refusals (a malformed rule and a mismatched model by the CLI; a mismatched model
published to the topic directly, by the job, which keeps scoring and counts it), a promotion
(model_version of later events within 2 s), a shadow (a shadow score for every later event),
a rule (alerts with its reason within 2 s), then a cancel and a restore from the latest
checkpoint that keeps all three. Across it: no event lost or duplicated (scored rows and the
exactly-once alerts topic) and no job restart (REST `numRestarts`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.control_topic import publish
from deploy.local.kafka import CONTROL_TOPIC_CONFIG, create_topics
from models.control import ControlMessage
from schemas.card_token import CardTokenizer
from tests.integration.jobs.harness import produce
from tests.integration.jobs.recovery import (
    last_checkpoint_triggered_ms,
    read_committed_keys,
    wait_for,
)
from tests.integration.jobs.streams import valid_records
from tests.model_variants import copy_default, variant_bytes, write_variant

pytestmark = [pytest.mark.integration, pytest.mark.flink_cluster]

REPO = Path(__file__).resolve().parents[2]
PHASES = ("before", "promoted", "shadowed", "ruled", "restored")
PER_PHASE = 200
APPLY_WITHIN_S = 2.0


@pytest.fixture(scope="module")
def world(stack, flink_cluster, tmp_path_factory):
    """Topics, a registry with two variants, and the environment the CLI and the job share."""
    flink_cluster.ensure_taskmanagers()
    run = uuid.uuid4().hex[:8]
    names = {k: f"test-live-{k}-{run}" for k in ("src", "dlq", "alerts", "control")}
    create_topics(stack.kafka_bootstrap, (names["src"], names["dlq"], names["alerts"]), 2)
    create_topics(stack.kafka_bootstrap, (names["control"],), 1, CONTROL_TOPIC_CONFIG)
    registry = tmp_path_factory.mktemp("registry")
    default = copy_default(registry)
    write_variant(registry, "live-v2", threshold=0.3)
    write_variant(registry, "live-bad", drop_last_feature=True)
    records = valid_records(CardTokenizer(stack.card_token_key.reveal().encode()), run,
                            PER_PHASE * len(PHASES))
    home = stack.home / "flink" / "live-control" / run
    env = {"FRAUDSTREAM_MODEL_REGISTRY": str(registry),
           "FRAUDSTREAM_CONTROL_TOPIC": names["control"]}
    yield {"run": run, "topics": names, "registry": registry, "default": default,
           "records": records, "env": env, "home": home}
    from confluent_kafka.admin import AdminClient

    AdminClient({"bootstrap.servers": stack.kafka_bootstrap}).delete_topics(list(names.values()))


def _cli(world, *args: str):
    """`fraudstream ARGS` in-process with the test's registry and control topic."""
    from jobs.cli import app

    return CliRunner().invoke(app, list(args), env=world["env"])


def _submit(world, flink_cluster, *extra: str) -> str:
    topics, home = world["topics"], world["home"]
    settings = {
        "source_topic": topics["src"], "dlq_topic": topics["dlq"],
        "alerts_topic": topics["alerts"], "control_topic": topics["control"],
        "group_id": f"test-live-{world['run']}", "bounded": "false", "parallelism": 2,
        "alerts_delivery": "exactly-once", "transactional_id_prefix": f"live-{world['run']}",
        "checkpoint_interval_ms": 2000, "checkpoint_dir": (home / "checkpoints").as_uri(),
        "savepoint_dir": (home / "savepoints").as_uri(), "job_name": "test-live-control",
    }
    cmd = [sys.executable, "-m", "jobs.cli", "submit", "--jobmanager",
           flink_cluster.address.removeprefix("http://"), *extra]
    for key, value in settings.items():
        cmd += ["--set", f"{key}={value}"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **world["env"]}, check=False)
    match = re.search(r"JobID\s+([0-9a-f]{32})", done.stdout + done.stderr)
    assert match, (done.stdout + done.stderr)[-3000:]
    return match.group(1)


def _phase(world, stack, conn, index: int) -> dict[str, tuple]:
    """Produce phase `index`'s events and wait until each is scored; their rows by id."""
    records = world["records"][index * PER_PHASE:(index + 1) * PER_PHASE]
    produce(stack.kafka_bootstrap, world["topics"]["src"], records)
    ids = [r.txn.transaction_id for r in records]
    query = ("SELECT transaction_id, model_version, decision, reasons::text FROM "
             "scored_transactions WHERE transaction_id = ANY(%s)")
    rows = wait_for(lambda: (lambda got: got if len(got) == len(ids) else None)(
        conn.execute(query, (ids,)).fetchall()), 120, f"{len(ids)} scored rows of phase {index}")
    return {r[0]: r for r in rows}


def _metric_sum(flink_cluster, job_id: str, suffix: str) -> float:
    """Sum over the scorer's subtasks of the operator metric ending in `suffix`."""
    for vertex in flink_cluster.rest(f"/jobs/{job_id}")["vertices"]:
        base = f"/jobs/{job_id}/vertices/{vertex['id']}/subtasks/metrics"
        names = [m["id"] for m in flink_cluster.rest(base) if m["id"].endswith(suffix)]
        if names:
            got = flink_cluster.rest(f"{base}?get={names[0]}&agg=sum")
            return float(got[0]["sum"])
    return 0.0


def _restarts(flink_cluster, job_id: str) -> int:
    got = flink_cluster.rest(f"/jobs/{job_id}/metrics?get=numRestarts")
    return int(float(got[0]["value"])) if got else 0


def test_live_promotion_shadow_and_rules(world, stack, flink_cluster, pg_writer):
    job = _submit(world, flink_cluster)
    control = world["topics"]["control"]
    jobs = [job]
    try:
        rows = _phase(world, stack, pg_writer, 0)
        assert {r[1] for r in rows.values()} == {world["default"]}

        # refusals: the CLI refuses a mismatched model and a malformed rule ...
        refused = _cli(world, "model", "promote", "live-bad")
        assert refused.exit_code == 1 and "NOT compatible" in refused.output, refused.output
        bad_rule = _cli(world, "rules", "add", "broken", "--when", "amount > and count_1h")
        assert bad_rule.exit_code == 1 and "column" in bad_rule.output, bad_rule.output
        # ... and the job refuses a mismatched model published behind the CLI's back
        publish(stack.kafka_bootstrap, control, ControlMessage.promote(
            "live-bad", onnx=variant_bytes("live-bad", drop_last_feature=True)))
        wait_for(lambda: _metric_sum(flink_cluster, job, "controlRecordsRefused") >= 2, 30,
                 "both scorer subtasks to refuse the mismatched model")

        promoted = _cli(world, "model", "promote", "live-v2")
        assert promoted.exit_code == 0, promoted.output
        time.sleep(APPLY_WITHIN_S)
        rows = _phase(world, stack, pg_writer, 1)
        assert {r[1] for r in rows.values()} == {"live-v2"}

        shadowed = _cli(world, "model", "shadow", world["default"])
        assert shadowed.exit_code == 0, shadowed.output
        time.sleep(APPLY_WITHIN_S)
        rows = _phase(world, stack, pg_writer, 2)
        shadow = wait_for(lambda: pg_writer.execute(
            "SELECT count(*), count(DISTINCT transaction_id) FROM shadow_scores WHERE "
            "transaction_id = ANY(%s) AND challenger_version = %s AND champion_version = %s",
            (list(rows), world["default"], "live-v2")).fetchone() == (len(rows), len(rows)),
            30, "a shadow score for every event of the phase")
        assert shadow
        listed = _cli(world, "model", "list")
        assert listed.exit_code == 0, listed.output
        assert re.search(r"champion\W+live-v2", listed.output), listed.output
        compared = _cli(world, "model", "compare")
        assert compared.exit_code == 0, compared.output
        assert f"{len(rows)} events" in compared.output and "challenger" in compared.output

        added = _cli(world, "rules", "add", "every-amount", "--when", "amount >= 0")
        assert added.exit_code == 0, added.output
        listed = _cli(world, "rules", "list")
        assert "every-amount" in listed.output
        time.sleep(APPLY_WITHIN_S)
        rows = _phase(world, stack, pg_writer, 3)
        assert {r[2] for r in rows.values()} == {"alert"}
        assert all('"RULE:every-amount"' in r[3] for r in rows.values())
        assert _restarts(flink_cluster, job) == 0

        # restore from the latest checkpoint: promotion, shadow and rule all kept
        wait_for(lambda: flink_cluster.rest(f"/jobs/{job}/checkpoints")["counts"]["completed"]
                 > 0, 60, "a completed checkpoint")
        time.sleep(3)  # one more checkpoint after the rule: it is in broadcast state
        flink_cluster.cancel_job(job)
        wait_for(lambda: flink_cluster.rest(f"/jobs/{job}")["state"] == "CANCELED", 60,
                 "the cancel")
        jobs.append(_submit(world, flink_cluster, "--from-checkpoint", "latest"))
        rows = _phase(world, stack, pg_writer, 4)
        assert {r[1] for r in rows.values()} == {"live-v2"}
        assert all('"RULE:every-amount"' in r[3] for r in rows.values())
        disabled = _cli(world, "rules", "disable", "every-amount")
        assert disabled.exit_code == 0, disabled.output
        assert "every-amount" not in _cli(world, "rules", "list").output
        restored = pg_writer.execute(
            "SELECT count(*) FROM shadow_scores WHERE transaction_id = ANY(%s)",
            (list(rows),)).fetchone()[0]
        assert restored == len(rows)
        done_ms = time.time() * 1000
        wait_for(lambda: last_checkpoint_triggered_ms(flink_cluster, jobs[-1]) > done_ms, 60,
                 "a checkpoint after the last row (commits the last alerts)")
    finally:
        try:
            flink_cluster.cancel_job(jobs[-1])
        except Exception:  # noqa: BLE001 - already gone
            pass

    ids = [r.txn.transaction_id for r in world["records"]]
    scored = pg_writer.execute("SELECT count(*), count(DISTINCT transaction_id) FROM "
                               "scored_transactions WHERE transaction_id = ANY(%s)",
                               (ids,)).fetchone()
    assert scored == (len(ids), len(ids))
    alerted = {r[0] for r in pg_writer.execute(
        "SELECT transaction_id FROM alerts WHERE transaction_id = ANY(%s)", (ids,))}
    keys = read_committed_keys(stack.kafka_bootstrap, world["topics"]["alerts"])
    duplicated = {k: n for k, n in Counter(keys).items() if n > 1}
    assert not duplicated, f"{len(duplicated)} alerts twice on the topic"
    assert set(keys) == alerted
