"""The benchmark peer's own logic around `models.hot_path` (no Kafka, no Postgres, no model):
its batch watermark and late flag, the rows and messages one batch produces, bounded-mode
progress, `--partitions`, and how `python-x2` splits a topic between its two processes."""

from __future__ import annotations

import json

import pytest

from bench.engines import (
    ENGINES,
    EngineProcess,
    EngineTarget,
    engine_command,
    engine_commands,
    split_partitions,
)
from bench.peer_pipeline import (
    NO_WATERMARK_MS,
    REJECTED_COLUMNS,
    SCORED_COLUMNS,
    BatchWatermark,
    BoundedProgress,
    PeerCore,
    aggregates_upsert_sql,
    parse_partitions,
    select_partitions,
)
from models import features as F
from models.hot_path import RawRecord, RecordParser
from schemas.card_token import CardTokenizer
from schemas.wire import to_json_bytes
from tests.factories import ONE_MINUTE, ONE_SECOND, T0, txn
from tests.fakes import FakeScorer

OOO = 5 * ONE_SECOND
CARD_A = "a" * 64
CARD_B = "b" * 64


def _core(max_payload: int = 256) -> PeerCore:
    parser = RecordParser("bench.t.transactions", CardTokenizer(b"k" * 32), max_payload)
    return PeerCore(parser, FakeScorer(), OOO)


_offsets = iter(range(10**9))


def _raw(*txns, partition: int = 0) -> list[RawRecord]:
    return [RawRecord(to_json_bytes(t), partition, next(_offsets)) for t in txns]


def _late(out) -> list[bool]:
    return [dict(zip(SCORED_COLUMNS, r, strict=True))["is_late"] for r in out.scored_rows]


# --- watermark and late rule -----------------------------------------------------------------
def test_watermark_is_flinks_bounded_out_of_orderness_before_the_batch():
    wm = BatchWatermark(OOO)
    assert wm.current_ms == NO_WATERMARK_MS
    core = _core()
    core.process(_raw(txn(card=CARD_A, at=T0 + ONE_MINUTE), txn(card=CARD_B, at=T0)))
    assert core.watermark.max_event_ms == T0 + ONE_MINUTE
    assert core.watermark.current_ms == T0 + ONE_MINUTE - OOO - 1


def test_nothing_in_the_first_batch_is_late_however_out_of_order():
    core = _core()
    out = core.process(_raw(txn(card=CARD_A, at=T0 + ONE_MINUTE), txn(card=CARD_A, at=T0)))
    assert _late(out) == [False, False]
    assert out.late == 0


def test_late_means_at_or_before_max_of_earlier_batches_minus_bound_minus_one():
    core = _core()
    top = T0 + ONE_MINUTE
    core.process(_raw(txn(card=CARD_A, at=top)))
    out = core.process(_raw(
        txn(card=CARD_B, at=top - OOO),      # exactly the bound: on time
        txn(card=CARD_B, at=top - OOO - 1),  # the watermark itself: late
        txn(card=CARD_A, at=T0),             # far behind: late
        txn(card=CARD_A, at=top + ONE_MINUTE),  # ahead: on time
    ))
    assert _late(out) == [False, True, True, False]
    assert out.late == 2
    # events of this batch move the watermark only for the next batch
    assert core.watermark.current_ms == top + ONE_MINUTE - OOO - 1


def test_watermark_never_moves_back_and_ignores_dead_letters():
    core = _core()
    core.process(_raw(txn(card=CARD_A, at=T0 + ONE_MINUTE)))
    before = core.watermark.current_ms
    core.process(_raw(txn(card=CARD_A, at=T0)) + [RawRecord(b"not json", 0, 999)])
    assert core.watermark.current_ms == before


def test_late_events_are_still_scored_and_update_the_card():
    core = _core()
    core.process(_raw(txn(card=CARD_A, at=T0 + ONE_MINUTE)))
    out = core.process(_raw(txn(card=CARD_A, at=T0, amount=900.0)))
    assert _late(out) == [True]
    assert len(out.alert_rows) == 1 and json.loads(out.alerts[0][1])["is_late"] is True
    assert CARD_A in core.states


# --- what one batch writes -------------------------------------------------------------------
def test_one_batch_gives_rows_alerts_and_dead_letters_from_the_shared_core():
    core = _core(max_payload=64)
    good = _raw(txn(card=CARD_A, amount=20.0), txn(card=CARD_B, amount=800.0), partition=3)
    pan = "4111111111111111"
    bad_payload = b'{"cc_num": "' + pan.encode() + b'", "amt": "lots"' + b" " * 500
    out = core.process(good + [RawRecord(bad_payload, 3, 77)])
    assert core.scorer.calls == 1  # one model call per batch

    scored = [dict(zip(SCORED_COLUMNS, r, strict=True)) for r in out.scored_rows]
    assert [s["decision"] for s in scored] == ["pass", "alert"]
    assert [s["source_partition"] for s in scored] == [3, 3]
    assert [s["source_offset"] for s in scored] == [good[0].offset, good[1].offset]
    assert scored[0]["model_version"] == "fake-1"
    assert set(json.loads(scored[0]["features"])) == set(F.FEATURE_NAMES)

    (alert_key, alert_value), = out.alerts
    alert = json.loads(alert_value)
    assert alert_key == alert["transaction_id"].encode() == scored[1]["transaction_id"].encode()
    assert alert["threshold"] == 0.5 and alert["source_partition"] == 3
    assert len(out.alert_rows) == 1 and out.alert_rows[0][2] == "****4242"

    (dlq_key, dlq_value), = out.dead_letters
    assert dlq_key == b"bench.t.transactions/3/77"
    (rejected,) = [dict(zip(REJECTED_COLUMNS, r, strict=True)) for r in out.rejected_rows]
    assert (rejected["source_partition"], rejected["source_offset"]) == (3, 77)
    assert rejected["payload_bytes"] == len(bad_payload)  # the original size
    assert len(rejected["raw_payload"].encode()) < len(bad_payload)  # the truncated preview
    message = json.loads(dlq_value)
    assert message["raw_payload"] == rejected["raw_payload"]
    assert pan not in dlq_value.decode() + rejected["raw_payload"] + rejected["reason"]
    # the raw bytes as the job keeps them: PAN-like runs redacted, everything else kept
    assert rejected["raw_exact"] is False and pan.encode() not in rejected["raw_bytes"]
    assert rejected["raw_bytes"].endswith(b'"amt": "lots"' + b" " * 500)


def test_a_tombstone_is_a_dead_letter_not_a_crash():
    out = _core().process([RawRecord(None, 1, 5)])
    assert out.scored_rows == [] and out.dead_letters[0][0] == b"bench.t.transactions/1/5"


# --- bounded mode and --partitions -----------------------------------------------------------
def test_bounded_progress_ends_when_every_chosen_partition_reached_its_start_end():
    progress = BoundedProgress({0: 3, 2: 0, 4: 10}, lows={4: 10})
    assert not progress.finished  # partitions 2 (empty) and 4 (all deleted) are done already
    progress.seen(0, 1)
    assert not progress.finished
    progress.seen(0, 2)
    assert progress.finished


def test_partitions_flag():
    assert parse_partitions("2,0") == (0, 2)
    assert parse_partitions(" 1 ") == (1,)
    for bad in ("", "a,b", "-1"):
        with pytest.raises(ValueError):
            parse_partitions(bad)
    assert select_partitions({3: None, 0: None, 1: None, 2: None}, None) == [0, 1, 2, 3]
    assert select_partitions([0, 1, 2, 3], (2, 0)) == [0, 2]
    with pytest.raises(ValueError, match=r"\[5\]"):
        select_partitions([0, 1, 2, 3], (1, 5))


# --- python-x2: the partition split ----------------------------------------------------------
def test_split_partitions_deals_round_robin_and_covers_each_partition_once():
    assert split_partitions([3, 1, 0, 2], 2) == [[0, 2], [1, 3]]
    assert split_partitions(range(5), 2) == [[0, 2, 4], [1, 3]]
    assert split_partitions([0], 1) == [[0]]
    for n in range(2, 13):
        shares = split_partitions(range(n), 2)
        assert sorted(p for share in shares for p in share) == list(range(n))
        assert abs(len(shares[0]) - len(shares[1])) <= 1


def test_split_refuses_fewer_partitions_than_processes():
    with pytest.raises(ValueError, match="at least 2 partitions"):
        split_partitions([0], 2)
    with pytest.raises(ValueError):
        split_partitions([0, 1], 0)


def _target(engine: str) -> EngineTarget:
    return EngineTarget(engine=engine, source_topic="bench.x.transactions", alerts_topic="a",
                        dlq_topic="d", pg_schema="bench_x", group_id="g", job_name="j",
                        bounded=True)


def test_python_x2_starts_two_peers_on_disjoint_halves_of_the_topic():
    assert "python-x2" in ENGINES
    cmds = engine_commands(_target("python-x2"), None, topic_partitions=[0, 1, 2, 3])
    assert len(cmds) == 2
    assert [c[c.index("--partitions") + 1] for c in cmds] == ["0,2", "1,3"]
    for cmd in cmds:
        assert cmd[1:3] == ["-m", "bench.peer_pipeline"] and "--bounded" in cmd
        assert cmd[cmd.index("--pg-schema") + 1] == "bench_x"
    with pytest.raises(ValueError):
        engine_commands(_target("python-x2"), None)  # the split needs the real partitions
    with pytest.raises(ValueError):
        engine_command(_target("python-x2"), None)
    (single,) = engine_commands(_target("python"), None, topic_partitions=[0, 1, 2, 3])
    assert "--partitions" not in single


class _Proc:
    def __init__(self, code, pid):
        self.code, self.pid = code, pid

    def poll(self):
        return self.code


@pytest.mark.parametrize("codes, expected", [
    ((None, None), None), ((0, None), None), ((0, 0), 0), ((None, 3), 3), ((0, -15), -15),
])
def test_a_two_process_engine_ends_when_both_end_or_one_fails(tmp_path, codes, expected):
    engine = EngineProcess(target=_target("python-x2"), proc=_Proc(codes[0], 11),
                           log_path=tmp_path / "x.log", other_procs=[_Proc(codes[1], 12)])
    assert engine.exited() == expected
    assert engine.pids == [11, 12]  # both accounted as the engine


def test_all_engines_include_python_x2():
    pytest.importorskip("typer")
    from bench.cli import _SHORT, _engines

    assert "python-x2" in _engines("all")
    assert _engines("python,python-x2,flink-cluster") == ["python", "python-x2", "flink-cluster"]
    assert set(_SHORT) == set(ENGINES)


# --- the loop, with fake Kafka and Postgres clients ------------------------------------------
class _Msg:
    def __init__(self, value, partition, offset):
        self._v, self._p, self._o = value, partition, offset

    def error(self):
        return None

    def value(self):
        return self._v

    def partition(self):
        return self._p

    def offset(self):
        return self._o


class _FakeKafka:
    """One topic with a few records per partition; records what the peer does, in order."""

    def __init__(self, topic, records_by_partition, log):
        self.topic, self.records, self.log = topic, records_by_partition, log
        self.assigned: list[int] = []
        self.produced: list[tuple[str, bytes, bytes]] = []

    def consumer(self, _conf):
        kafka = self

        class Consumer:
            def list_topics(self, topic, timeout):
                part = type("T", (), {"partitions": dict.fromkeys(kafka.records)})
                return type("M", (), {"topics": {topic: part}})

            def get_watermark_offsets(self, tp, timeout):
                return 0, len(kafka.records[tp.partition])

            def assign(self, tps):
                kafka.assigned = [tp.partition for tp in tps]
                self._queue = [_Msg(v, p, o) for p in kafka.assigned
                               for o, v in enumerate(kafka.records[p])]

            def consume(self, n, timeout):
                batch, self._queue = self._queue[:n], self._queue[n:]
                return batch

            def commit(self, asynchronous):
                kafka.log.append("commit")

            def close(self):
                kafka.log.append("close")

        return Consumer()

    def producer(self, _conf):
        kafka = self

        class Producer:
            def produce(self, topic, key, value):
                kafka.produced.append((topic, key, value))

            def poll(self, _t):
                pass

            def flush(self, _t):
                kafka.log.append("flush")

        return Producer()


def test_peer_loop_reads_only_its_partitions_and_commits_after_postgres(monkeypatch):
    confluent_kafka = pytest.importorskip("confluent_kafka")
    import bench.peer_pipeline as peer
    from models.scoring import Scorer

    log: list = []
    records = {p: [to_json_bytes(txn(card=f"{p:02x}" * 32, at=T0 + i * ONE_MINUTE,
                                     amount=900.0 if i == 1 else 10.0)) for i in range(3)]
               for p in range(4)}
    records[2].append(b"not json")
    kafka = _FakeKafka("src", records, log)
    monkeypatch.setattr(confluent_kafka, "Consumer", kafka.consumer)
    monkeypatch.setattr(confluent_kafka, "Producer", kafka.producer)
    monkeypatch.setattr(Scorer, "load", staticmethod(lambda _path: FakeScorer()))

    class _Pg:
        def __init__(self, conninfo, schema, merge_aggregates=False):
            log.append(("pg-open", merge_aggregates))

        def write(self, scored, alerts, rejected, aggregates):
            log.append(("pg", len(scored), len(alerts), len(rejected), len(aggregates)))

        def close(self):
            log.append("pg-close")

    monkeypatch.setattr(peer, "PostgresWriter", _Pg)
    cfg = peer.PeerConfig(kafka_bootstrap="x", topic="src", alerts_topic="alerts",
                          dlq_topic="dlq", pg_conninfo="x", bounded=True, max_batch=4,
                          card_token_key="k" * 32, partitions=(0, 2))
    pipeline = peer.PeerPipeline(cfg)
    counters = pipeline.run()
    assert kafka.assigned == [0, 2]
    assert counters["consumed"] == 7 and counters["scored"] == 6 and counters["rejected"] == 1
    assert counters["alerts"] == 2 and counters["batches"] == 2
    assert len(pipeline.states) == 2  # one card per partition
    # every batch: Postgres first, then the offset commit; the loop ends by itself (bounded).
    # Aggregates: batch 1 (T0, +1m, +2m, T0) moves the watermark to T0+2m-5s-1, which closes
    # the T0 minute (2 events: 1 category + 1 merchant row); batch 2 closes none; the end of
    # input closes the last two minutes. A share of the topic adds to the rows (merge).
    assert log == [("pg-open", True), ("pg", 4, 1, 0, 2), "commit", ("pg", 2, 1, 1, 0),
                   "commit", ("pg", 0, 0, 0, 4), "flush", "close", "pg-close"]
    assert counters["aggregate_rows"] == 6 and counters["window_dropped"] == 0
    topics = [t for t, _k, _v in kafka.produced]
    assert topics.count("alerts") == 2 and topics.count("dlq") == 1
    (dlq_key,) = [k for t, k, _v in kafka.produced if t == "dlq"]
    assert dlq_key == b"src/2/3"


def test_aggregates_upsert_replaces_alone_and_adds_as_a_share():
    alone = aggregates_upsert_sql(merge=False)
    assert "ON CONFLICT (window_start, dimension, key) DO UPDATE" in alone
    assert "txn_count = EXCLUDED.txn_count" in alone and "ORDER BY" not in alone
    share = aggregates_upsert_sql(merge=True)
    assert "ON CONFLICT (window_start, dimension, key) DO UPDATE" in share
    assert "txn_count = aggregates.txn_count + EXCLUDED.txn_count" in share
    assert "alert_count = aggregates.alert_count + EXCLUDED.alert_count" in share
    assert "ORDER BY window_start, dimension, key ON CONFLICT" in share  # same lock order
