"""Adapter tests for jobs.functions with small fakes (no JVM, no Flink runtime).

The fakes implement only what the functions use: `runtime_context.get_map_state` /
`get_state`, keyed `MapState` / `ValueState`, `ctx.timer_service()` (register event-time
timers, current watermark). `ShardHarness` plays Flink: it groups a batch by shard as
`ParseBatch` does, sets the current key, routes state per key, and fires due timers when the
watermark advances (a timer fires once and is then gone).
"""

from __future__ import annotations

import json
import pickle

import pytest

pytest.importorskip("pyflink")

from connectors.kafka import EVENT_TIME_AHEAD  # noqa: E402
from connectors.rows import REJECTED_FIELDS, SCORED_FIELDS, TXN_FIELDS, parsed_to_txn  # noqa: E402
from jobs.functions import (  # noqa: E402
    DLQ_TAG,
    ParseBatch,
    ScoreShard,
    scorer_subtask_of,
    shard_key,
    shard_of,
    sweep_time_ms,
)
from models import features as F  # noqa: E402
from models.hot_path import ParsedRecord  # noqa: E402
from schemas.alert import parse_alert  # noqa: E402
from schemas.card_token import KEY_ENV_VAR, MissingCardTokenKeyError  # noqa: E402
from tests.factories import ONE_DAY, ONE_HOUR, ONE_MINUTE, T0, txn  # noqa: E402
from tests.fakes import FakeScorer  # noqa: E402

MIN_WATERMARK = -(2**63)
SHARDS = 4



class FakeValueState:
    def __init__(self, store: dict, harness: ShardHarness):
        self._store, self._h = store, harness

    def value(self):
        return self._store.get(self._h.key)

    def update(self, value):
        self._store[self._h.key] = value

    def clear(self):
        self._store.pop(self._h.key, None)


class FakeMapState:
    """MapState of one operator: {shard: {card: bytes}}, scoped to the current key."""

    def __init__(self, store: dict, harness: ShardHarness):
        self._store, self._h = store, harness
        self.reads = 0

    def _map(self) -> dict:
        return self._store.setdefault(self._h.key, {})

    def get(self, card):
        self.reads += 1
        return self._map().get(card)

    def put_all(self, values):
        for card, value in values.items():
            assert isinstance(value, bytes), "state must hold bytes, never objects"
            self._map()[card] = value

    def items(self):
        return list(self._map().items())

    def remove(self, card):
        del self._map()[card]


class FakeTimerService:
    def __init__(self, harness: ShardHarness):
        self._h = harness

    def register_event_time_timer(self, t):
        self._h.timers.add((t, self._h.key))

    def current_watermark(self):
        return self._h.watermark


class FakeCtx:
    def __init__(self, harness):
        self._h = harness

    def timer_service(self):
        return FakeTimerService(self._h)

    def get_current_key(self):
        return self._h.key

    def get_broadcast_state(self, descriptor):
        return FakeBroadcastState(self._h.broadcast)


class FakeBroadcastState:
    """Flink's broadcast state surface the scorer uses (a dict per operator)."""

    def __init__(self, values: dict):
        self._values = values

    def items(self):
        return list(self._values.items())

    def put(self, key, value):
        self._values[key] = value

    def remove(self, key):
        self._values.pop(key, None)


class FakeCounter:
    def __init__(self):
        self.count = 0

    def inc(self, n: int = 1):
        self.count += n


def _key(card: str) -> int:
    return shard_key(shard_of(card, SHARDS), SHARDS)


class ShardHarness:
    """Runs `ScoreShard` (subtask `subtask` of `parallelism`) over micro-batches with
    watermarks and timers; the current key is what the function sets, as in Flink."""

    def __init__(self, fn, cards: dict | None = None, sweeps: dict | None = None,
                 timers: set | None = None, subtask: int = 0, parallelism: int = 1,
                 broadcast: dict | None = None):
        self.fn, self.key, self.watermark = fn, None, MIN_WATERMARK
        self.broadcast: dict = {} if broadcast is None else dict(broadcast)
        self.counters: dict = {}
        self.subtask, self.parallelism = subtask, parallelism
        self.cards: dict = {} if cards is None else {k: dict(v) for k, v in cards.items()}
        self.sweeps: dict = {} if sweeps is None else dict(sweeps)
        self.timers: set = set() if timers is None else set(timers)
        harness = self

        class RuntimeContext:
            def get_map_state(self, descriptor):
                harness.map_state = FakeMapState(harness.cards, harness)
                return harness.map_state

            def get_state(self, descriptor):
                return FakeValueState(harness.sweeps, harness)

            def get_keyed_state_backend(self):
                return harness

            def get_index_of_this_subtask(self):
                return harness.subtask

            def get_number_of_parallel_subtasks(self):
                return harness.parallelism

            def get_metrics_group(self):
                return self

            def counter(self, name):
                return harness.counters.setdefault(name, FakeCounter())

        fn.open(RuntimeContext())

    def control(self, key, value):
        """One control-topic record on the broadcast input."""
        assert list(self.fn.process_broadcast_element((key, value), FakeCtx(self))) == []

    def set_current_key(self, key):
        self.key = key

    def process(self, *txns):
        """One micro-batch for this subtask, grouped by shard like ParseBatch; SCORED dicts."""
        groups: dict = {}
        for t in txns:
            groups.setdefault(_key(t.card_token), []).append(parsed_to_txn(ParsedRecord(t, 0, 7)))
        route = next(iter(groups))
        self.key = route
        out = []
        for batch in self.fn.process_element(
            (route, pickle.dumps(list(groups.items()))), FakeCtx(self)
        ):
            out += [_scored(r) for r in batch]
        assert self.key == route, "the route key must be current again when the call returns"
        return out

    def all_cards(self) -> dict:
        return {card: raw for shard in self.cards.values() for card, raw in shard.items()}

    def advance_watermark(self, wm):
        self.watermark = wm
        fired = []
        while True:
            due = sorted(x for x in self.timers if x[0] <= wm)
            if not due:
                return fired
            t, key = due[0]
            self.timers.discard(due[0])
            self.key = key
            fired.append((t, key))
            list(self.fn.on_timer(t, FakeCtx(self)) or ())


def _scored(row):
    return dict(zip(SCORED_FIELDS, tuple(row), strict=True))


def _new_fn():
    return ScoreShard(scorer_loader=lambda _path: FakeScorer())


# --- ScoreShard ------------------------------------------------------------------------------
def test_state_is_bytes_per_card_in_its_shard_and_one_sweep_timer_per_shard():
    h = ShardHarness(_new_fn())
    h.process(txn(card="a", at=T0), txn(card="a", at=T0 + ONE_MINUTE))
    h.process(txn(card="b", at=T0 + ONE_HOUR))
    assert set(h.all_cards()) == {"a", "b"}
    assert all(isinstance(v, bytes) for v in h.all_cards().values())
    assert _key("a") != _key("b")
    for card in ("a", "b"):
        assert card in h.cards[_key(card)]
    # one pending sweep per shard, at the first possible expiry rounded UP to the day
    assert sorted(h.timers) == sorted({
        (sweep_time_ms(T0 + ONE_MINUTE + F.PROFILE_LIFETIME_MS), _key("a")),
        (sweep_time_ms(T0 + ONE_HOUR + F.PROFILE_LIFETIME_MS), _key("b")),
    })
    assert len({key for _, key in h.timers}) == len(h.timers)


def test_each_card_is_read_once_per_batch():
    h = ShardHarness(_new_fn())
    h.process(txn(card="a", at=T0))
    h.map_state.reads = 0
    h.process(*[txn(card="a", at=T0 + i * ONE_MINUTE) for i in range(1, 6)])
    assert h.map_state.reads == 1


def test_sweep_time_rounds_up_to_the_day():
    assert sweep_time_ms(7 * ONE_DAY) == 7 * ONE_DAY
    assert sweep_time_ms(7 * ONE_DAY + 1) == 8 * ONE_DAY
    assert sweep_time_ms(8 * ONE_DAY - 1) == 8 * ONE_DAY


def test_idle_cards_are_swept_after_the_profile_lifetime_and_the_sweep_stops():
    h = ShardHarness(_new_fn())
    # two cards in ONE shard: find a partner of "a"
    partner = next(c for c in (f"c{i}" for i in range(100))
                   if shard_of(c, SHARDS) == shard_of("a", SHARDS))
    h.process(txn(card="a", at=T0), txn(card=partner, at=T0 + 3 * ONE_DAY))
    h.advance_watermark(sweep_time_ms(T0 + F.PROFILE_LIFETIME_MS) - 1)
    assert set(h.all_cards()) == {"a", partner}
    h.advance_watermark(sweep_time_ms(T0 + F.PROFILE_LIFETIME_MS))
    assert set(h.all_cards()) == {partner}
    # the next sweep was set for the partner's expiry, and after it nothing is pending
    h.advance_watermark(sweep_time_ms(T0 + 3 * ONE_DAY + F.PROFILE_LIFETIME_MS))
    assert h.all_cards() == {} and h.timers == set() and h.sweeps == {}


def test_a_card_seen_again_after_expiry_starts_fresh_like_offline():
    stream = [txn(card="a", at=T0, amount=50.0), txn(card="a", at=T0 + 40 * ONE_DAY, amount=60.0)]
    h = ShardHarness(_new_fn())
    out = h.process(stream[0])
    h.advance_watermark(T0 + 35 * ONE_DAY)
    assert h.all_cards() == {}
    out += h.process(stream[1])
    offline = [v for _, v in F.offline_features(stream)]
    online = [list(json.loads(o["features_json"]).values()) for o in out]
    assert online == offline


def test_batches_give_the_offline_features_and_survive_a_savepoint():
    stream = [
        txn(card=c, at=T0 + i * 7 * ONE_MINUTE, amount=10.0 + 37 * i % 900)
        for i, c in enumerate(["a", "b", "a", "a", "c", "b", "a", "c", "a", "b"] * 3)
    ]
    expected = {t.transaction_id: v for t, v in F.offline_features(stream)}

    first = ShardHarness(_new_fn())
    half = len(stream) // 2
    out = first.process(*stream[:7]) + first.process(*stream[7:half])
    # "savepoint": the keyed state and pending timers, into a FRESH function instance
    second = ShardHarness(_new_fn(), first.cards, first.sweeps, first.timers)
    out += second.process(*stream[half:])

    online = {o["transaction_id"]: list(json.loads(o["features_json"]).values()) for o in out}
    assert online == expected
    assert len(out) == len(stream)


def test_scored_row_carries_score_decision_reasons_and_alert_message():
    h = ShardHarness(_new_fn())
    small, big = h.process(txn(card="a", amount=20.0), txn(card="a", amount=900.0,
                                                              at=T0 + ONE_MINUTE))
    assert (small["is_alert"], small["alert_json"], json.loads(small["reasons_json"])) == (
        False, None, []
    )
    assert big["is_alert"] and big["score"] == pytest.approx(0.9)
    assert big["model_version"] == "fake-1" and big["threshold"] == 0.5
    assert (big["source_partition"], big["source_offset"]) == (0, 7)
    alert = parse_alert(big["alert_json"])
    assert alert.transaction_id == big["transaction_id"]
    assert alert.card_masked == "****4242"
    assert [r.code for r in alert.reasons] == ["AMOUNT_HIGH"]
    assert alert.features == json.loads(big["features_json"])
    assert set(alert.features) == set(F.FEATURE_NAMES)


def test_one_model_call_per_micro_batch_across_shards():
    scorer = FakeScorer()
    h = ShardHarness(ScoreShard(scorer_loader=lambda _path: scorer))
    cards = [f"card-{i}" for i in range(40)]
    assert len({_key(c) for c in cards}) == SHARDS  # the batch spans every shard
    h.process(*[txn(card=c, at=T0 + i * ONE_MINUTE) for i, c in enumerate(cards)])
    assert scorer.calls == 1
    assert {card for card in h.all_cards()} == set(cards)
    assert all(card in h.cards[_key(card)] for card in cards)


def test_a_shard_of_another_subtask_is_refused_with_the_reason():
    keys = [shard_key(s, SHARDS) for s in range(SHARDS)]
    theirs = next(k for k in keys if scorer_subtask_of(k, 2) == 1)
    h = ShardHarness(_new_fn(), subtask=0, parallelism=2)
    row = parsed_to_txn(ParsedRecord(txn(card="a"), 0, 7))
    with pytest.raises(RuntimeError, match="another scorer parallelism"):
        list(h.fn.process_element((theirs, pickle.dumps([(theirs, [row])])), FakeCtx(h)))


def test_late_events_are_scored_and_flagged():
    h = ShardHarness(_new_fn())
    h.process(txn(card="a", at=T0 + ONE_HOUR))
    h.advance_watermark(T0 + ONE_HOUR)
    late, ontime = h.process(txn(card="a", at=T0), txn(card="a", at=T0 + 2 * ONE_HOUR))
    assert late["is_late"] is True
    assert ontime["is_late"] is False


# --- ParseBatch ------------------------------------------------------------------------------
class _NoCtx:
    pass


def _parser():
    fn = ParseBatch("transactions", max_payload_bytes=256, shards=SHARDS, scorer_parallelism=2)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(KEY_ENV_VAR, "k" * 32)
        fn.open(None)
    return fn


def test_parse_batch_reads_the_card_key_from_the_environment_at_open(monkeypatch):
    """Issue 10: the key is not pickled with the function (the job graph); a worker without
    it fails at open with an error naming the variable, never printing a key."""
    import cloudpickle

    secret = "fake-card-key-7f3c9e1d2b4a"
    monkeypatch.setenv(KEY_ENV_VAR, secret)
    fn = ParseBatch("transactions", max_payload_bytes=256, shards=SHARDS, scorer_parallelism=2)
    shipped = cloudpickle.dumps(fn)
    assert secret.encode() not in shipped
    worker = cloudpickle.loads(shipped)
    monkeypatch.delenv(KEY_ENV_VAR)
    with pytest.raises(MissingCardTokenKeyError, match=KEY_ENV_VAR):
        worker.open(None)
    monkeypatch.setenv(KEY_ENV_VAR, secret)
    worker.open(None)  # the same function opens once its worker has the key
    (out,) = list(worker.process_element([(b"{}", 0, 1, 0)], _NoCtx()))
    assert out[0] is DLQ_TAG


def _rejected(row):
    return dict(zip(REJECTED_FIELDS, row, strict=True))


def test_bad_records_go_to_the_side_output_redacted_with_position():
    fn = _parser()
    payload = b'{"cc_num": "4111111111111111", "amt": "lots"' + b" " * 5000
    (out,) = list(fn.process_element([(payload, 3, 42, 0)], _NoCtx()))
    tag, rows = out
    assert tag is DLQ_TAG
    (rec,) = [_rejected(r) for r in rows]
    assert (rec["source_topic"], rec["source_partition"], rec["source_offset"]) == (
        "transactions", 3, 42,
    )
    assert rec["dlq_key"] == "transactions/3/42"
    assert rec["reason"] and rec["payload_bytes"] == len(payload)
    assert "4111111111111111" not in rec["raw_payload"] + rec["dlq_json"] + rec["reason"]
    assert len(rec["raw_payload"].encode()) <= 256 + 32
    assert json.loads(rec["dlq_json"])["source_offset"] == 42


def test_null_payload_is_a_dead_letter_not_a_crash():
    (out,) = list(_parser().process_element([(None, 0, 1, 0)], _NoCtx()))
    assert out[0] is DLQ_TAG


def test_valid_records_leave_one_output_per_scorer_subtask_grouped_by_shard():
    wire = pytest.importorskip("schemas.wire")
    cards = [f"{i:02x}" * 32 for i in range(12)]
    batch = [(wire.to_json_bytes(txn(card=c, amount=12.5)), 1, 9 + i, T0)
             for i, c in enumerate(cards)]
    batch.insert(3, (b"not json", 1, 100, 0))
    batch.append((wire.to_json_bytes(txn(card=cards[0])), 1, 200, EVENT_TIME_AHEAD))
    out = list(_parser().process_element(batch, _NoCtx()))
    dead = [o for o in out if o[0] is DLQ_TAG]
    routed = [o for o in out if o[0] is not DLQ_TAG]
    assert len(dead) == 1 and len(dead[0][1]) == 2  # not json + refused by the future guard
    assert [_rejected(r)["source_offset"] for r in dead[0][1]] == [100, 200]
    seen, subtasks = [], []
    for route, blob in routed:
        subtask = scorer_subtask_of(route, 2)
        subtasks.append(subtask)
        for key, txns in pickle.loads(blob):
            assert scorer_subtask_of(key, 2) == subtask  # every shard of the call is its own
            rows = [dict(zip(TXN_FIELDS, r, strict=True)) for r in txns]
            assert {shard_key(shard_of(r["card_token"], SHARDS), SHARDS) for r in rows} == {key}
            seen += [(r["source_partition"], r["source_offset"]) for r in rows]
    assert sorted(seen) == [(1, 9 + i) for i in range(12)]
    assert sorted(subtasks) == [0, 1]  # one output per scorer subtask, both present here


# --- ScoreShard: the control input -----------------------------------------------------------
def _control_record(message):
    key, value = message.to_record()
    return key.decode(), value.decode()


def test_a_rule_applies_from_the_next_batch_with_its_reason():
    from models.control import ControlMessage
    from models.rules import Rule

    h = ShardHarness(_new_fn())
    assert [r["is_alert"] for r in h.process(txn(card="a", amount=120.0, at=T0))] == [False]
    h.control(*_control_record(ControlMessage.put_rule(Rule("over-100", "amount > 100"))))
    (row,) = h.process(txn(card="a", amount=120.0, at=T0 + ONE_MINUTE))
    assert row["is_alert"] is True
    assert json.loads(row["reasons_json"])[0]["code"] == "RULE:over-100"
    assert parse_alert(row["alert_json"]).reasons[0].code == "RULE:over-100"
    assert h.counters["controlRecordsApplied"].count == 1
    assert set(h.broadcast) == {"rule:over-100"}


def test_a_refused_record_is_counted_and_not_kept():
    from models.control import ControlMessage

    h = ShardHarness(_new_fn())
    h.control(*_control_record(ControlMessage.promote("nothing-attached")))
    h.control("rule:x", "{not json")
    (row,) = h.process(txn(card="a", amount=700.0, at=T0))
    assert row["model_version"] == FakeScorer.model_version and row["is_alert"] is True
    assert h.counters["controlRecordsRefused"].count == 2
    assert h.broadcast == {}


def test_promotion_shadow_and_rules_survive_a_restore():
    """A restored subtask (same broadcast state, fresh function) scores like before."""
    from models.control import ControlMessage
    from models.rules import Rule
    from tests.model_variants import variant_bytes

    onnx = variant_bytes("test-v2")
    h = ShardHarness(_new_fn())
    for message in (ControlMessage.promote("test-v2", onnx=onnx),
                    ControlMessage.shadow("test-v2", onnx=onnx),
                    ControlMessage.put_rule(Rule("tiny", "amount < 1", action="alert"))):
        h.control(*_control_record(message))
    restored = ShardHarness(_new_fn(), cards=h.cards, sweeps=h.sweeps, timers=h.timers,
                            broadcast=h.broadcast)
    for harness in (h, restored):
        (row,) = harness.process(txn(card="b", amount=0.5, at=T0 + ONE_DAY))
        assert row["model_version"] == "test-v2"
        assert row["shadow_version"] == "test-v2" and row["shadow_score"] == row["score"]
        assert row["is_alert"] is True and "RULE:tiny" in row["reasons_json"]
