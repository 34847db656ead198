"""Drift on the real stack: generated traffic through the real scoring job, then
`fraudstream drift compute | report | watch` over what it wrote.

Two days of generated traffic (4,000 cards, ~18k events, few fraud episodes) go into a
fresh topic; from hour 24 on every amount is multiplied by 4 (the "switch" a producer-side
change would make). The job runs bounded on an embedded MiniCluster and writes
scored_transactions with its features. `drift compute` must then put amount, log_amount and
sum_1h at PSI >= 0.25 in every drifted hour, keep them below 0.1 before the switch, and keep
features the switch does not touch (distance from home, 1-hour count, category one-hots)
below 0.1 throughout. Hours with fewer than MIN_ROWS events are not judged (PSI of few rows
is noisy), nor are the history features (every card starts cold in this stream).

The stream is placed in the first week of March of a random year 1991..2015 (a Monday, so the
generated stream is the same every run) whose hours hold no scored event yet; everything the
test wrote is deleted at the end.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from models.data.generator import GeneratorConfig, generate
from models.drift import CLOCK_FEATURES, DRIFT_THRESHOLD, SCORE, WATCH_THRESHOLD
from models.features import FEATURE_NAMES
from schemas.card_token import CardTokenizer
from schemas.wire import transaction_to_wire
from tests.integration.jobs.harness import (
    REPO,
    create_topics,
    delete_topics,
    produce,
    run_job_cli,
)
from tests.integration.jobs.streams import Record

pytestmark = pytest.mark.integration

CARDS, DAYS, SEED = 4000, 2, 11
SWITCH_HOURS = 24  # hours after the start at which amounts are scaled
AMOUNT_FACTOR = 4.0
MIN_ROWS = 200
AFFECTED = ("amount", "log_amount", "sum_1h")
UNAFFECTED = ("distance_from_home_km", "count_1h",  # and the category one-hots
              *(n for n in FEATURE_NAMES if n.startswith("category_") and n != "category_is_new"))
JOB_TIMEOUT_S = 600


def _first_monday_of_march(year: int) -> date:
    d = date(year, 3, 1)
    return d + timedelta(days=(7 - d.weekday()) % 7)


def _free_start(conn) -> date:
    years = list(range(1991, 2016))
    random.shuffle(years)
    for year in years:
        start = _first_monday_of_march(year)
        lo = datetime(start.year, start.month, start.day, tzinfo=UTC)
        busy = conn.execute(
            "SELECT 1 FROM scored_transactions WHERE event_time >= %s AND event_time < %s"
            " LIMIT 1", (lo, lo + timedelta(days=DAYS + 1))).fetchone()
        if busy is None:
            return start
    pytest.skip("no free year for the drift stream in this database")


def _records(tokenizer: CardTokenizer, run: str, start: date) -> tuple[list[Record], int]:
    cfg = GeneratorConfig(cards=CARDS, start=start, days=DAYS, seed=SEED,
                          episode_card_share=0.01)
    switch_ms = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()
                    * 1000) + SWITCH_HOURS * 3_600_000
    out = []
    for txn in generate(cfg, tokenizer):
        # ':' ends a digit chain (schemas.redact): with '-' the run's last digits and the id's
        # first ones could form a Luhn-valid 13..19-digit chain that the parser redacts
        txn = dataclasses.replace(txn, transaction_id=f"{run}:{txn.transaction_id}")
        if txn.event_time_ms >= switch_ms:
            txn = dataclasses.replace(txn, amount=round(txn.amount * AMOUNT_FACTOR, 2))
        value = json.dumps(transaction_to_wire(txn), separators=(",", ":")).encode()
        out.append(Record(txn.card_token.encode(), value, txn))
    return out, switch_ms


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"}, check=False)


@pytest.fixture(scope="module")
def drift_run(stack, tmp_path_factory):
    import psycopg

    from deploy.local.postgres import PostgresServer
    from models.registry import default_version

    run = f"drift-{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(PostgresServer(stack).admin_conninfo(stack.pg_database),
                            autocommit=True)
    start = _free_start(admin)
    records, switch_ms = _records(CardTokenizer(stack.card_token_key.reveal().encode()), run, start)
    lo = datetime(start.year, start.month, start.day, tzinfo=UTC)
    hi = lo + timedelta(days=DAYS)
    version = default_version()
    topics = create_topics(stack.kafka_bootstrap, "drift")
    tmp = tmp_path_factory.mktemp("drift")
    try:
        produce(stack.kafka_bootstrap, topics.source, records)
        wall = run_job_cli({
            "source_topic": topics.source, "dlq_topic": topics.dlq,
            "alerts_topic": topics.alerts, "group_id": run, "parallelism": 2,
            "checkpoint_interval_ms": 10_000,
        }, tmp / "job.log", JOB_TIMEOUT_S)
        scored_ids = {r[0] for r in admin.execute(
            "SELECT transaction_id FROM scored_transactions WHERE transaction_id LIKE %s",
            (f"{run}:%",))}
        scored = len(scored_ids)
        missing = [r.txn for r in records if r.txn.transaction_id not in scored_ids]
        t0 = time.monotonic()
        computed = _cli("drift", "compute", "--since", lo.isoformat(), "--until", hi.isoformat(),
                        "--model-version", version)
        compute_s = time.monotonic() - t0
        rows = admin.execute(
            "SELECT hour, feature, psi, rows FROM feature_drift WHERE model_version = %s"
            " AND hour >= %s AND hour < %s", (version, lo, hi)).fetchall()
        print(f"\ndrift: {len(records):,} events, job {wall:.0f} s, compute {compute_s:.1f} s")
        yield {"records": records, "scored": scored, "computed": computed, "rows": rows,
               "lo": lo, "hi": hi, "switch": datetime.fromtimestamp(switch_ms / 1000, UTC),
               "version": version, "tmp": tmp, "stack": stack,
               "missing": missing}
    finally:
        delete_topics(stack.kafka_bootstrap, topics)
        admin.execute("DELETE FROM feature_drift WHERE hour >= %s AND hour < %s", (lo, hi))
        admin.execute("DELETE FROM alerts WHERE transaction_id LIKE %s", (f"{run}:%",))
        admin.execute("DELETE FROM scored_transactions WHERE transaction_id LIKE %s",
                      (f"{run}:%",))
        admin.execute("DELETE FROM aggregates WHERE window_start >= %s AND window_start < %s",
                      (lo - timedelta(hours=1), hi + timedelta(hours=1)))
        admin.close()


def _by_hour(rows) -> dict[datetime, dict[str, tuple[float, int]]]:
    out: dict[datetime, dict[str, tuple[float, int]]] = {}
    for hour, feature, value, n in rows:
        out.setdefault(hour, {})[feature] = (value, n)
    return out


def test_every_event_is_scored_and_every_hour_has_a_psi_per_series(drift_run):
    missing = drift_run["missing"]
    assert not missing, [t.transaction_id for t in missing[:5]]
    assert drift_run["computed"].returncode == 0, drift_run["computed"].stderr
    hours = _by_hour(drift_run["rows"])
    assert len(hours) == DAYS * 24
    want = {*FEATURE_NAMES, SCORE} - set(CLOCK_FEATURES)
    for hour, series in hours.items():
        assert set(series) == want, hour
    assert sum(s[SCORE][1] for s in hours.values()) == drift_run["scored"] == len(
        drift_run["records"])


def test_affected_features_cross_the_drift_threshold_only_after_the_switch(drift_run):
    hours = _by_hour(drift_run["rows"])
    judged = {h: s for h, s in hours.items() if s[SCORE][1] >= MIN_ROWS}
    before = [h for h in judged if h < drift_run["switch"]]
    after = [h for h in judged if h >= drift_run["switch"]]
    assert len(before) >= 12 and len(after) >= 12, (len(before), len(after))
    report = []
    for h in sorted(judged):
        for name in AFFECTED:
            value = judged[h][name][0]
            drifted = h >= drift_run["switch"]
            ok = value >= DRIFT_THRESHOLD if drifted else value < WATCH_THRESHOLD
            if not ok:
                side = "after" if drifted else "before"
                report.append(f"{h:%d %H:00} {name} {value:.3f} ({side} the switch)")
    assert not report, report


def test_unaffected_features_stay_below_the_watch_level(drift_run):
    hours = _by_hour(drift_run["rows"])
    high = [f"{h:%d %H:00} {name} {s[name][0]:.3f}"
            for h, s in sorted(hours.items()) if s[SCORE][1] >= MIN_ROWS
            for name in UNAFFECTED if s[name][0] >= WATCH_THRESHOLD]
    assert not high, high


def test_compute_is_an_idempotent_upsert(drift_run):
    from connectors.drift_store import compute

    stack = drift_run["stack"]
    again = compute(stack, drift_run["lo"], drift_run["hi"], drift_run["version"])
    first = {(h, f): (round(p, 12), n) for h, f, p, n in drift_run["rows"]}
    second = {(r.hour, r.feature): (round(r.psi, 12), r.rows) for r in again.rows}
    assert second == first
    import psycopg

    with psycopg.connect(stack.pg_conninfo("analyst")) as conn:
        count = conn.execute(
            "SELECT count(*) FROM feature_drift WHERE model_version = %s AND hour >= %s"
            " AND hour < %s", (drift_run["version"], drift_run["lo"], drift_run["hi"])
        ).fetchone()[0]
    assert count == len(first)


def test_report_draws_the_hours_and_names_the_drifted_features(drift_run):
    out = drift_run["tmp"] / "drift.png"
    done = _cli("drift", "report", "--since", drift_run["lo"].isoformat(), "--until",
                drift_run["hi"].isoformat(), "--model-version", drift_run["version"],
                "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "48 hours" in done.stdout and "amount" in done.stdout
    if os.environ.get("FRAUDSTREAM_DOCS_DRIFT_PLOT"):  # refreshes the README's picture
        (REPO / "docs" / "drift.png").write_bytes(out.read_bytes())


def test_watch_serves_the_latest_psi_per_feature_to_prometheus(drift_run):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "drift", "watch", "--interval", "1", "--lookback",
         "1m", "--min-rows", str(MIN_ROWS), "--port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                text = ""
            if "fraudstream_drift_last_success_seconds 1" in text:
                break
            time.sleep(0.5)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "fraudstream_drift_last_success_seconds 1" in text, output[-3000:]
    assert 'fraudstream_feature_psi{feature="amount"' in text
    assert 'fraudstream_drift_watch_thresholds{level="drift"} 0.25' in text
