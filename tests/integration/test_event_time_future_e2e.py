"""Issue 10, point 2 on the real job: a record far in the future cannot move the watermark.

One partition carries 600 generated transactions in event-time order; after the 200th comes a
VALID transaction dated three days after its neighbours (another card). `fraudstream run
--bounded` (MiniCluster, parallelism 1) consumes it. Before the guard, that record advanced the
partition's watermark by three days: the 400 records after it were flagged late and left out
of the aggregates. Now it is dead-lettered ("event_time in the future") and nothing is late.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from models.hot_path import FUTURE_REASON
from schemas.card_token import CardTokenizer
from schemas.wire import transaction_to_wire
from tests.integration.jobs.harness import (
    create_topics,
    delete_topics,
    produce,
    run_job_cli,
)
from tests.integration.jobs.streams import Record, _dumps, valid_records

pytestmark = pytest.mark.integration

N_VALID = 600
FUTURE_AT = 200
THREE_DAYS_MS = 3 * 86_400_000


def test_a_future_record_is_dead_lettered_and_never_makes_later_records_late(stack, tmp_path):
    import psycopg

    run_id = uuid.uuid4().hex[:8]
    tokenizer = CardTokenizer(stack.card_token_key.reveal().encode())
    valid = valid_records(tokenizer, run_id, N_VALID, raw_pan_every=0)
    base = valid[FUTURE_AT - 1].txn
    future_txn = dataclasses.replace(
        base, transaction_id=f"{run_id}-future",
        event_time_ms=base.event_time_ms + THREE_DAYS_MS,
    )
    future = Record(b"future", _dumps(transaction_to_wire(future_txn)), None)
    records = [*valid[:FUTURE_AT], future, *valid[FUTURE_AT:]]

    topics = create_topics(stack.kafka_bootstrap, "job-future", partitions=1)
    try:
        positions = produce(stack.kafka_bootstrap, topics.source, records)
        run_job_cli(
            {
                "source_topic": topics.source,
                "dlq_topic": topics.dlq,
                "alerts_topic": topics.alerts,
                "group_id": f"job-future-{run_id}",
                "parallelism": 1,
                "checkpoint_interval_ms": 2000,
            },
            tmp_path / "job.log",
            600,
        )
        ids = [r.txn.transaction_id for r in valid]
        t_min = min(r.txn.event_time_ms for r in valid)
        t_max = max(r.txn.event_time_ms for r in valid)
        with psycopg.connect(stack.pg_conninfo("writer"), autocommit=True) as conn:
            late, scored = conn.execute(
                "SELECT count(*) FILTER (WHERE is_late), count(*) FROM scored_transactions"
                " WHERE transaction_id = ANY(%s)", (ids,),
            ).fetchone()
            future_scored = conn.execute(
                "SELECT count(*) FROM scored_transactions WHERE transaction_id = %s",
                (future_txn.transaction_id,),
            ).fetchone()[0]
            rejected = conn.execute(
                "SELECT source_partition, source_offset, reason, field FROM rejected_events"
                " WHERE source_topic = %s", (topics.source,),
            ).fetchall()
            counted = conn.execute(
                "SELECT sum(txn_count) FROM aggregates WHERE dimension = 'category'"
                " AND window_start >= to_timestamp(%s / 1000.0) - interval '1 minute'"
                " AND window_start <= to_timestamp(%s / 1000.0)", (t_min, t_max),
            ).fetchone()[0]
    finally:
        delete_topics(stack.kafka_bootstrap, topics)

    assert rejected == [(*positions[FUTURE_AT], FUTURE_REASON, "event_time")]
    assert future_scored == 0
    assert scored == N_VALID
    assert late == 0, f"{late} records after the future one were flagged late"
    assert int(counted or 0) == N_VALID
