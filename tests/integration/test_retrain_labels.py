"""From analyst labels to a candidate model on the real stack (issue 14.3).

~3,400 generated transactions (80 cards, 18 days, planted fraud; their own seed, moved into
a span before 2020 where the shared table holds no row; fresh topics and control topic) are
scored by `fraudstream run --bounded` on the embedded MiniCluster. Then:
- the rows the job stored rebuild exactly the transactions the parser produced;
- an analyst labels a few alerts (two against the record's ground truth) as the analyst role,
  exports them, and `fraudstream train --labels labels.csv` registers a candidate in a
  temporary registry (never the default) with its report comparing it with the default on
  the same test rows;
- `fraudstream retrain --when-due --min-labels 1` is not due (no label since that candidate);
  after one more label it is: it trains from the database's labels and publishes the
  candidate as the shadow on the test's control topic.
Every row the run wrote is deleted at the end (superuser), so runs never mix.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.integration.jobs.harness import create_topics, delete_topics, produce, run_job_cli
from tests.integration.jobs.streams import Record

pytestmark = pytest.mark.integration

# 80 cards x 18 days ~ 3,350 rows, ~130 frauds, each part of the time split holding fraud.
GENERATOR = dict(cards=80, start=date(2020, 3, 2), days=18, seed=1414, episode_card_share=0.2)
WEEK_MS = 7 * 86_400_000
JOB_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def scored(stack, tmp_path_factory):
    """Produce the stream, run the job once; yield what the tests need; delete the rows."""
    import psycopg

    from deploy.local.kafka import CONTROL_TOPIC_CONFIG
    from deploy.local.kafka import create_topics as create_control
    from deploy.local.postgres import PostgresServer
    from models.data.generator import GeneratorConfig, generate
    from schemas.card_token import CardTokenizer
    from schemas.parse import parse_transaction
    from schemas.wire import transaction_to_wire
    from tests.model_variants import copy_default

    run = uuid.uuid4().hex[:8]
    tokenizer = CardTokenizer(stack.card_token_key.reveal().encode())
    admin = PostgresServer(stack).admin_conninfo(stack.pg_database)
    shift = _empty_span(admin, random.Random(run))
    records, originals = [], []
    for t in generate(GeneratorConfig(**GENERATOR), tokenizer):
        # (the parser redacts a card-number-like digit run the prefix may form with the id:
        # the parsed transaction, not the prefix, names each row)
        t = dataclasses.replace(t, transaction_id=f"{run}-{t.transaction_id}",
                                event_time_ms=t.event_time_ms + shift)
        payload = json.dumps(transaction_to_wire(t)).encode()
        parsed = parse_transaction(payload, tokenizer)
        records.append(Record(parsed.card_token.encode(), payload, parsed))
        originals.append(parsed)
    topics = create_topics(stack.kafka_bootstrap, "retrain")
    control = f"test-retrain-control-{run}"
    create_control(stack.kafka_bootstrap, (control,), 1, CONTROL_TOPIC_CONFIG)
    registry = tmp_path_factory.mktemp("registry")
    default = copy_default(registry)
    try:
        produce(stack.kafka_bootstrap, topics.source, records)
        wall = run_job_cli(
            {"source_topic": topics.source, "dlq_topic": topics.dlq,
             "alerts_topic": topics.alerts, "control_topic": control,
             "group_id": f"retrain-{run}", "parallelism": 2, "bundle_size": 200,
             "bundle_time_ms": 100, "checkpoint_interval_ms": 5000},
            tmp_path_factory.mktemp("job") / "job.log", JOB_TIMEOUT_S)
        print(f"\njob: {len(records)} records in {wall:.1f} s wall (incl. JVM start)")
        yield {
            "run": run, "originals": originals, "registry": registry, "default": default,
            "control": control, "tmp": tmp_path_factory.mktemp("labels"),
            "since": _iso(min(t.event_time_ms for t in originals)),
            "until": _iso(max(t.event_time_ms for t in originals)),
            "env": {"FRAUDSTREAM_MODEL_REGISTRY": str(registry),
                    "FRAUDSTREAM_CONTROL_TOPIC": control},
        }
    finally:
        delete_topics(stack.kafka_bootstrap, topics)
        from confluent_kafka.admin import AdminClient

        AdminClient({"bootstrap.servers": stack.kafka_bootstrap}).delete_topics([control])
        with psycopg.connect(admin, autocommit=True) as conn:
            for table in ("scored_transactions", "alerts", "shadow_scores"):
                conn.execute(f"DELETE FROM {table} WHERE transaction_id = ANY(%s)",  # noqa: S608
                             ([t.transaction_id for t in originals],))


def _empty_span(admin: str, rng: random.Random) -> int:
    """A shift of whole weeks (weekday and hour kept) moving the generated days, with the
    history the features replay before them, into a span of 2001..2019 where the shared
    table holds no row: the join then sees this run's rows only."""
    import psycopg

    first = datetime(GENERATOR["start"].year, GENERATOR["start"].month,
                     GENERATOR["start"].day, tzinfo=UTC)
    with psycopg.connect(admin, autocommit=True) as conn:
        for _ in range(50):
            shift = -rng.randrange(52, 52 * 19) * WEEK_MS  # 2001..2019: training validates >= 2000
            lo = first + timedelta(milliseconds=shift) - timedelta(days=40)
            hi = lo + timedelta(days=40 + GENERATOR["days"] + 2)
            taken = conn.execute("SELECT EXISTS (SELECT 1 FROM scored_transactions"
                                 " WHERE event_time BETWEEN %s AND %s)", (lo, hi)).fetchone()
            if not taken[0]:
                return shift
    raise AssertionError("no empty span of 2001..2019 left in scored_transactions")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _cli(scored, *args: str):
    """`fraudstream ARGS` in-process (one import of scikit-learn and the validation suite
    for the three commands) with the test's registry and control topic."""
    from typer.testing import CliRunner

    from jobs.cli import app

    return CliRunner().invoke(app, list(args), env=scored["env"])


def test_stored_rows_rebuild_the_transactions_the_job_scored(scored, pg_analyst):
    from connectors.label_store import read_rows
    from models.training.labels import to_ms

    originals = {t.transaction_id: t for t in scored["originals"]}
    since = to_ms(datetime.fromisoformat(scored["since"]))
    until = to_ms(datetime.fromisoformat(scored["until"]))
    rows = [r for r in read_rows(pg_analyst, since, since, until)
            if r.transaction_id in originals]
    assert len(rows) == len(originals)
    assert all(r.txn == originals[r.transaction_id] for r in rows)  # every field, exactly
    assert sum(r.alerted for r in rows) > 10


def test_labels_to_a_candidate_then_retrain_when_due_shadows_it(scored, pg_analyst, stack):
    from connectors.control_topic import read_state
    from jobs.cli.review.repository import ReviewRepository
    from models.registry import default_version, list_versions, version_dir

    truth = {t.transaction_id: t.label for t in scored["originals"]}
    alerts = [r[0] for r in pg_analyst.execute(
        "SELECT transaction_id FROM alerts WHERE transaction_id = ANY(%s)"
        " ORDER BY event_time, transaction_id", (list(truth),)).fetchall()]
    frauds = [a for a in alerts if truth[a] == 1]
    legit = [a for a in alerts if truth[a] == 0]
    assert len(frauds) >= 4 and legit and len(alerts) > 8, (len(frauds), len(legit))
    # first and last alert as they are, two more true ones, two against the ground truth
    verdicts = {alerts[0]: truth[alerts[0]], alerts[-1]: truth[alerts[-1]],
                frauds[1]: 1, frauds[2]: 1}
    verdicts.update({frauds[3]: 0, legit[0]: 1})
    repo = ReviewRepository(pg_analyst)
    for tid, label in verdicts.items():
        repo.label(tid, "fraud" if label else "legit", reviewer="test-retrain",
                   at=datetime.now(UTC))
    path = scored["tmp"] / "labels.csv"
    with path.open("w", newline="") as fh:
        repo.export_labels(fh)
    exported = {r["transaction_id"] for r in csv.DictReader(path.open())}
    assert set(verdicts) <= exported  # other runs' labels lie outside the window

    window = ["--since", scored["since"], "--until", scored["until"], "--models",
              "logreg,random_forest", "--fraud-rate-max", "0.1"]
    done = _cli(scored, "train", "--labels", str(path), *window)
    assert done.exit_code == 0, done.output[-3000:]
    registry = scored["registry"]
    (version,) = [v for v in list_versions(registry) if v != scored["default"]]
    assert default_version(registry) == scored["default"]  # a candidate only
    meta = json.loads((version_dir(version, registry) / "metadata.json").read_text())
    labels = meta["labels"]
    n = len(scored["originals"])
    assert labels["labels_used"] == len(verdicts)
    assert labels["analyst_vs_ground_truth_disagreements"] == 2
    assert labels["training_rows"] == n and labels["rows_not_rebuildable"] == 0
    assert labels["truth"] == {"analyst label": len(verdicts),
                               "record's ground truth": n - len(verdicts),
                               "passed, taken as legit": 0,
                               "unreviewed alert, no ground truth": 0}
    comparison = meta["comparison"]
    assert comparison["rows"] == meta["training_data"]["test_rows"] > 0
    assert comparison["default"]["version"] == scored["default"]
    assert comparison["candidate"]["version"] == version
    for side in ("candidate", "default"):
        assert 0 < comparison[side]["metrics"]["pr_auc"] <= 1
        assert comparison[side]["at_threshold"]["cost"] > 0
    report = (version_dir(version, registry) / "report.md").read_text()
    assert "## Candidate vs the current default (same rows)" in report
    assert f"| current default | `{scored['default']}` |" in report
    assert f"fraudstream model promote {version}" in report
    assert f"candidate {version} (not the default)" in done.output

    retrain = ["retrain", "--when-due", "--min-labels", "1", *window]
    idle = _cli(scored, *retrain)
    assert idle.exit_code == 0, idle.output[-3000:]
    assert f"0 new labels since candidate {version}" in idle.output
    assert "not due: nothing trained" in idle.output
    assert list_versions(registry) == sorted([scored["default"], version])

    extra = next(a for a in alerts if a not in verdicts)
    repo.label(extra, "fraud" if truth[extra] else "legit", reviewer="test-retrain",
               at=datetime.now(UTC))
    due = _cli(scored, *retrain)
    assert due.exit_code == 0, due.output[-3000:]
    (second,) = set(list_versions(registry)) - {scored["default"], version}
    meta2 = json.loads((version_dir(second, registry) / "metadata.json").read_text())
    assert meta2["labels"]["source"] == "Postgres alerts"
    assert meta2["labels"]["labels_used"] == len(verdicts) + 1
    assert f"fraudstream model promote {second}" in due.output
    state = read_state(stack.kafka_bootstrap, scored["control"]).state
    assert state.shadow == second and state.champion is None
