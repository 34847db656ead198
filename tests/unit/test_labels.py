"""Retraining from analyst labels: a stored scored_transactions row rebuilds the Transaction
the job scored, the truth of each window row, the label join and its history replay, the
labels CSV. The run from labels to a registered candidate is in
tests/pipeline/test_label_training.py."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from models import features as F
from models.training.dataset import DatasetError
from models.training.labels import (
    STORED_COLUMNS,
    TRUTH_ANALYST,
    TRUTH_PASSED_LEGIT,
    TRUTH_RECORD,
    TRUTH_UNKNOWN,
    AnalystLabel,
    StoredRow,
    feature_table,
    from_ms,
    join_labels,
    label_window,
    read_labels_csv,
    stored_row,
    transaction_from_row,
    truth,
)
from tests.factories import txn

DAY = 86_400_000
T0 = 1_700_000_000_000


def _scored_row_as_stored(t, is_alert: bool) -> dict:
    """What the job's scored_transactions sink writes for `t`: the SCORED tuple of a real
    ScoredEvent, mapped to the table's columns as the sink's INSERT maps them."""
    pytest.importorskip("pyflink")
    from connectors.postgres_sinks import SCORED_SINK, SINK_TABLES
    from connectors.rows import SCORED_FIELDS, scored_to_tuple
    from models.hot_path import ScoredEvent

    event = ScoredEvent(t, 1, 42, 0.9 if is_alert else 0.1, is_alert, False, "[]", "{}",
                        "{}" if is_alert else None, "v1", 0.5)
    rec = dict(zip(SCORED_FIELDS, scored_to_tuple(event), strict=True))
    sink = next(s for s in SINK_TABLES if s.name == SCORED_SINK)
    derived = {"event_time": from_ms(rec["event_time_ms"]),
               "decision": "alert" if rec["is_alert"] else "pass"}
    return {c: derived[c] if c in derived else rec[c] for c in sink.column_names
            if c in derived or c in rec}


def test_every_column_the_rebuild_reads_is_one_the_job_writes():
    pytest.importorskip("pyflink")
    from connectors.postgres_sinks import SCORED_SINK, SINK_TABLES

    sink = next(s for s in SINK_TABLES if s.name == SCORED_SINK)
    assert set(STORED_COLUMNS) <= set(sink.column_names)
    assert "card_number" not in sink.column_names and "cc_num" not in sink.column_names


@pytest.mark.parametrize("optional", [
    {},
    {"gender": None, "birth_year": None, "zip": None, "state": None, "label": None},
    {"label": 1, "merchant_lat": 41.123456789012, "merchant_long": -73.98765432101,
     "amount": 0.1 + 0.2, "city_pop": 99_999_999},
])
def test_a_stored_row_rebuilds_the_transaction_exactly(optional):
    original = txn(card="tok-abc", at=T0 + 123, **{"amount": 12.34, **optional})
    for alerted in (False, True):
        row = _scored_row_as_stored(original, alerted)
        assert transaction_from_row(row) == original
        back = stored_row(row)
        assert (back.alerted, back.event_time_ms, back.txn) == (alerted, T0 + 123, original)


def test_generated_stream_round_trips_through_stored_rows():
    from models.data.generator import GeneratorConfig, generate
    from schemas.card_token import CardTokenizer

    stream = list(generate(GeneratorConfig(cards=5, days=3, seed=3), CardTokenizer(b"k")))
    assert stream and all(
        transaction_from_row(_scored_row_as_stored(t, bool(t.label))) == t for t in stream)


def test_a_row_written_before_migration_007_is_not_rebuilt():
    row = {"transaction_id": "old", "card_token": "c", "card_last4": "4242",
           "event_time": from_ms(T0), "amount": 5.0, "merchant": "m", "category": "home",
           "merchant_lat": None, "merchant_long": None, "home_lat": None, "home_long": None,
           "city_pop": None, "gender": None, "birth_year": None, "zip": None, "state": None,
           "label": None, "decision": "alert"}
    assert transaction_from_row(row) is None
    assert stored_row(row) == StoredRow("old", T0, True, None)


def _row(t, alerted=False):
    return StoredRow(t.transaction_id, t.event_time_ms, alerted, t)


def test_truth_prefers_the_analyst_then_the_record_then_a_pass():
    with_truth, without = txn(label=1), txn(label=None)
    assert truth(_row(with_truth, True), 0) == (0, TRUTH_ANALYST)
    assert truth(_row(with_truth, True), None) == (1, TRUTH_RECORD)
    assert truth(_row(without, False), None) == (0, TRUTH_PASSED_LEGIT)
    assert truth(_row(without, True), None) == (None, TRUTH_UNKNOWN)


def test_join_over_the_window_with_history_and_every_kind_of_label():
    history = txn(card="a", at=T0 - 3 * DAY, label=None)
    before_history = txn(card="a", at=T0 - 60 * DAY, label=None)
    labelled = txn(card="a", at=T0 + DAY, label=1, amount=900.0)  # analyst says legit
    unreviewed = txn(card="b", at=T0 + 2 * DAY, label=None)  # alert, nobody looked
    passed = txn(card="b", at=T0, label=None)
    truthful = txn(card="c", at=T0 + 2 * DAY, label=1)
    after = txn(card="c", at=T0 + 9 * DAY, label=0)
    old = StoredRow("pre-007", T0 + DAY, True, None)
    rows = [_row(labelled, True), _row(unreviewed, True), _row(passed), _row(truthful, True),
            _row(history), _row(before_history), _row(after), old]
    reviewed = datetime(2026, 5, 1, tzinfo=UTC)
    labels = [
        AnalystLabel(labelled.transaction_id, 0, labelled.event_time_ms, reviewed),
        AnalystLabel("outside", 1, T0 + 30 * DAY, datetime(2026, 6, 1, tzinfo=UTC)),
        AnalystLabel("pre-007", 1, T0 + DAY, None),
        AnalystLabel("nowhere", 1, None, None),
    ]
    start, end = label_window(labels, None, T0 + 5 * DAY)
    assert (start, end) == (T0 + DAY, T0 + 5 * DAY)
    start = T0  # the caller's --since
    w = join_labels(labels, rows, start, end, start - 35 * DAY)

    assert [t.transaction_id for t in w.txns] == [history.transaction_id,
                                                   passed.transaction_id,
                                                   labelled.transaction_id,
                                                   unreviewed.transaction_id,
                                                   truthful.transaction_id]
    assert w.training.tolist() == [False, True, True, False, True]
    assert [t.label for t, k in zip(w.txns, w.training, strict=True) if k] == [0, 0, 1]
    assert dict(w.sources) == {TRUTH_PASSED_LEGIT: 1, TRUTH_ANALYST: 1, TRUTH_UNKNOWN: 1,
                               TRUTH_RECORD: 1}
    assert (w.labels_given, w.labels_used, w.labels_outside, w.labels_unmatched) == (4, 1, 1, 2)
    assert (w.disagreements, w.not_rebuildable, w.history_rows) == (1, 1, 2)
    assert w.labels_through == reviewed  # only the labels used count
    assert w.summary()["truth"][TRUTH_UNKNOWN] == 1


def test_window_features_see_the_replayed_history_exactly_as_the_stream():
    cards = [f"card{i}" for i in range(3)]
    stream = [txn(card=cards[i % 3], at=T0 + i * 3_600_000, amount=10.0 + i,
                  merchant=f"m{i % 5}", label=int(i % 17 == 0)) for i in range(240)]
    start = T0 + 120 * 3_600_000
    rows = [_row(t) for t in reversed(stream)]  # any order in, event order out
    w = join_labels([AnalystLabel(stream[200].transaction_id, 1)], rows, start,
                    stream[-1].event_time_ms, T0 - DAY)
    table = feature_table(w)
    expected = [(t, f) for t, f in F.offline_features(stream) if t.event_time_ms >= start]
    assert len(table) == len(expected) == 120
    assert np.array_equal(table.x, np.asarray([f for _, f in expected], dtype=np.float32))
    assert table.y.tolist() == [1 if t.transaction_id == stream[200].transaction_id
                                else t.label for t, _ in expected]
    cold = join_labels([], [_row(t) for t in stream[120:]], start, stream[-1].event_time_ms,
                       start)
    assert not np.array_equal(feature_table(cold).x, table.x)  # history matters


def test_labels_csv_of_the_review_export(tmp_path):
    from jobs.cli.review.repository import EXPORT_COLUMNS

    path = tmp_path / "labels.csv"
    path.write_text(",".join(EXPORT_COLUMNS) + "\n"
                    "t1,fraud,2026-01-02T10:00:00+00:00,v1,0.9,2025-12-30T08:00:00+00:00\n"
                    "t2,legit,,v1,0.7,2025-12-31T08:00:00\n"
                    "t1,legit,2026-01-03T10:00:00+00:00,v1,0.9,2025-12-30T08:00:00+00:00\n")
    got = {lab.transaction_id: lab for lab in read_labels_csv(path)}
    assert got["t1"].label == 0 and got["t1"].reviewed_at == datetime(2026, 1, 3, 10, tzinfo=UTC)
    assert got["t2"] == AnalystLabel("t2", 0, int(datetime(2025, 12, 31, 8, tzinfo=UTC)
                                                  .timestamp() * 1000), None)
    path.write_text("transaction_id,label\nt1,maybe\n")
    with pytest.raises(DatasetError, match="line 2"):
        read_labels_csv(path)
    path.write_text("id,verdict\n")
    with pytest.raises(DatasetError, match="not a labels export"):
        read_labels_csv(path)


def test_no_label_in_the_window_is_refused():
    with pytest.raises(DatasetError, match="no analyst label"):
        label_window([AnalystLabel("t", 1, T0)], since_ms=T0 + 1)
    with pytest.raises(DatasetError):
        label_window([])
