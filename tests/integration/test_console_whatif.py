"""What-if scoring against a real run: 3,000 generated transactions go through `fraudstream run
--bounded` (MiniCluster) into Postgres; then 100 of them are sent, as on the wire, to the
console's `POST /api/score` (uvicorn on loopback, Basic auth), which rebuilds each card's state
from the card's earlier scored_transactions rows and scores the event.

What is compared with the stream's stored row:
- through the API, as deployed: every feature but `speed_from_prev_kmh` is the stream's, and
  whenever the answer says `exact`, so are the speed, the score and the decision. Since the
  sink stores merchant coordinates (migration 007) every answer must be exact; on a table
  without them (see jobs/console/whatif.py) the differences are printed, not asserted;
- the same rebuild and scoring code (`queries.card_history`, `whatif`) with the merchant
  coordinates the producer sent put into the history rows: all 100 scores, decisions and
  feature vectors equal the stream's, whatever the table stores.

The cards are tokenized with a key of this run only, so no other run's rows join their history;
the job reads a control topic of its own, so it scores with the registry's default model.
"""

from __future__ import annotations

import base64
import json
import math
import random
import secrets
import string
import time
import uuid

import httpx
import psycopg
import pytest

from deploy.local.kafka import CONTROL_TOPIC_CONFIG
from deploy.local.kafka import create_topics as create_stack_topics
from jobs.console import queries, whatif
from jobs.console.app import BackgroundServer, create_app
from jobs.console.auth import ConsoleAuth
from jobs.console.routes_api import ScorerCache
from models.features import FEATURE_NAMES
from schemas.card_token import CardTokenizer
from schemas.parse import parse_transaction
from tests.integration.jobs.harness import create_topics, delete_topics, produce, run_job_cli
from tests.integration.jobs.streams import Record, valid_records

pytestmark = pytest.mark.integration

N_EVENTS = 3_000
SAMPLE = 100
JOB_TIMEOUT_S = 600
PASSWORD = "what-if password"
SPEED = "speed_from_prev_kmh"


@pytest.fixture(scope="module")
def run(stack, tmp_path_factory):
    """Produce the stream, run the job once; the stored rows of every event."""
    run_id = uuid.uuid4().hex[:8]
    tokenizer = CardTokenizer(secrets.token_bytes(32))  # card tokens of this run only
    records = _renamed(valid_records(tokenizer, run_id, N_EVENTS, raw_pan_every=0), tokenizer)
    topics = create_topics(stack.kafka_bootstrap, "console-whatif")
    control = f"console-whatif-control-{run_id}"
    create_stack_topics(stack.kafka_bootstrap, (control,), 1, CONTROL_TOPIC_CONFIG)
    log_path = tmp_path_factory.mktemp("whatif-job") / "job.log"
    try:
        produce(stack.kafka_bootstrap, topics.source, records)
        wall = run_job_cli(
            {"source_topic": topics.source, "dlq_topic": topics.dlq,
             "alerts_topic": topics.alerts, "control_topic": control,
             "group_id": f"console-whatif-{run_id}", "parallelism": 2,
             "bundle_size": 200, "bundle_time_ms": 100, "checkpoint_interval_ms": 10000},
            log_path, JOB_TIMEOUT_S)
    finally:
        delete_topics(stack.kafka_bootstrap, topics)
        from confluent_kafka.admin import AdminClient

        AdminClient({"bootstrap.servers": stack.kafka_bootstrap}).delete_topics([control])
    ids = [r.txn.transaction_id for r in records]
    with psycopg.connect(stack.pg_conninfo("analyst")) as conn:
        rows = conn.execute(
            "SELECT transaction_id, score, decision, features, model_version, is_late"
            " FROM scored_transactions WHERE transaction_id = ANY(%s)", (ids,)).fetchall()
    stored = {r[0]: r for r in rows}
    assert len(stored) == N_EVENTS, f"{N_EVENTS - len(stored)} events not scored ({log_path})"
    print(f"\njob: {N_EVENTS} events in {wall:.1f} s wall")
    return records, stored


def _renamed(records: list[Record], tokenizer: CardTokenizer) -> list[Record]:
    """The records with ids of letters and a counter: a generated id can hold a run of 12+
    digits that the parser redacts with a placeholder keyed by the card key, which the job's
    key (not this run's) makes, so such an id could not be found again."""
    tag = "".join(random.choices(string.ascii_lowercase, k=10))
    out = []
    for i, record in enumerate(records):
        wire = json.loads(record.value)
        wire["transaction_id"] = f"cw-{tag}-n{i}"
        value = json.dumps(wire, separators=(",", ":")).encode()
        out.append(Record(record.key, value, parse_transaction(value, tokenizer)))
    return out


@pytest.fixture(scope="module")
def sample(run):
    """80 events spread over the stream plus 20 of its alerts (first events of a card too)."""
    records, stored = run
    spread = records[:: N_EVENTS // 80][:80]
    chosen = {r.txn.transaction_id for r in spread}
    alerts = [r for r in records if stored[r.txn.transaction_id][2] == "alert"
              and r.txn.transaction_id not in chosen]
    picked = spread + alerts[:: max(1, len(alerts) // 20)][: SAMPLE - len(spread)]
    assert len(picked) == SAMPLE
    return picked


@pytest.fixture(scope="module")
def api(stack):
    app = create_app(stack, ConsoleAuth({"analyst": PASSWORD}, secrets.token_urlsafe(32)))
    server = BackgroundServer(app).start()
    basic = base64.b64encode(f"analyst:{PASSWORD}".encode()).decode()
    with httpx.Client(base_url=server.url, timeout=60,
                      headers={"Authorization": f"Basic {basic}"}) as client:
        yield client
    server.stop()


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_api_scores_stored_events_as_the_stream_did(run, sample, api, stack):
    _, stored = run
    exact = approximated = decision_differs = 0
    diffs: list[float] = []
    started = time.monotonic()
    for record in sample:
        txn = record.txn
        response = api.post("/api/score", content=record.value,
                            headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        got = response.json()
        _, score, decision, features, model_version, _ = stored[txn.transaction_id]
        assert got["model_version"] == model_version
        assert got["transaction_id"] == txn.transaction_id and got["scored_by"] == "analyst"
        wrong = [n for n in FEATURE_NAMES if n != SPEED
                 and not _same(got["features"][n], features[n])]
        detail = [(n, got["features"][n], features[n]) for n in wrong]
        assert not wrong, f"{txn.transaction_id}: {detail}"
        if got["exact"]:
            exact += 1
            assert _same(got["features"][SPEED], features[SPEED])
            assert abs(got["score"] - score) <= 1e-9 and got["decision"] == decision
        else:
            approximated += 1
            assert got["approximations"] and SPEED in got["approximations"][0]
            diffs.append(abs(got["score"] - score))
            decision_differs += got["decision"] != decision
    took = time.monotonic() - started
    close = sum(d <= 1e-6 for d in diffs)
    print(f"\nwhat-if API, {SAMPLE} stored events in {took:.1f} s: {exact} exact (score equal "
          f"within 1e-9); {approximated} with the previous location approximated: score "
          f"within 1e-6 for {close}, max |diff| {max(diffs, default=0):.4f}, median "
          f"{sorted(diffs)[len(diffs) // 2] if diffs else 0:.2e}, decision differs for "
          f"{decision_differs}")
    assert exact >= 1, "first events of a card need no previous location"
    with psycopg.connect(stack.pg_conninfo("analyst")) as conn:
        if queries.has_location_columns(conn):  # this run's rows all carry coordinates
            assert exact == SAMPLE


def test_rebuild_with_stored_coordinates_is_exact(run, sample, stack):
    """The same rebuild with the producer's merchant coordinates in the history rows (what
    the API answers when scored_transactions stores them), independent of the table."""
    records, stored = run
    by_id = {r.txn.transaction_id: r.txn for r in records}
    scorer = ScorerCache().get(None)  # the default model, as the API loads it
    with psycopg.connect(stack.pg_conninfo("analyst"), autocommit=True) as conn:
        for record in sample:
            txn = record.txn
            rows = queries.card_history(conn, txn.card_token, txn.event_time_ms, False)
            rows = [whatif.HistoryRow(r.transaction_id, r.event_time_ms, r.amount, r.merchant,
                                      r.category, r.source_offset, r.is_late,
                                      by_id[r.transaction_id].merchant_lat,
                                      by_id[r.transaction_id].merchant_long) for r in rows]
            rebuilt = whatif.rebuild_state(whatif.history_before(rows, txn), txn)
            got = whatif.score_what_if(txn, rebuilt, scorer)
            _, score, decision, features, _, _ = stored[txn.transaction_id]
            assert got["exact"] is True
            assert abs(got["score"] - score) <= 1e-9, txn.transaction_id
            assert got["decision"] == decision
            assert all(_same(got["features"][n], features[n]) for n in FEATURE_NAMES)
