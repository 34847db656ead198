"""The job's own metrics (jobs/job_metrics.py) against a fake Flink metric group: what each
batch counts, that Java is called per batch and never per event, and that metrics can never
stop the job."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pytest

from jobs.job_metrics import (
    FUTURE,
    LATENCY_BUCKETS_MS,
    PREFIX,
    PROMETHEUS_NAMES,
    SCORE_BUCKETS,
    ParseMetrics,
    ScoreMetrics,
    bucket_label,
    cumulative_counts,
    dead_letter_reason,
    rule_names,
)
from models.hot_path import FUTURE_REASON

NOW_MS = 1_800_000_000_000


class FakeGroup:
    """A Flink metric group: `add_group`, `counter`, `distribution`; counts the calls that
    would cross into Java (registration and updates) in `calls`."""

    def __init__(self, root=None, path=()):
        self.root = root or self
        self.path = path
        if root is None:
            self.metrics: dict = {}
            self.calls = 0

    def add_group(self, key, value=None):
        return FakeGroup(self.root, (*self.path, (key, value)))

    def counter(self, name):
        return self.root.metrics.setdefault((self.path, name), FakeCounter(self.root))

    def distribution(self, name):
        return self.root.metrics.setdefault((self.path, name), FakeGauge(self.root))

    def get_metrics_group(self):  # doubles as the runtime context
        return self

    def value(self, name, **labels):
        """The metric `name` under group `fraudstream` with these key/value labels."""
        want = (("fraudstream", None), *((k, v) for k, v in labels.items()))
        for (path, metric), obj in self.metrics.items():
            if metric == name and path == want:
                return obj.value
        return None


class FakeCounter:
    def __init__(self, root):
        self.root, self.value = root, 0

    def inc(self, n=1):
        self.root.calls += 1
        self.value += n


class FakeGauge:
    def __init__(self, root):
        self.root, self.value = root, None

    def update(self, value):
        self.root.calls += 1
        self.value = value


@dataclass
class Txn:
    event_time_ms: int


@dataclass
class Scored:
    txn: Txn
    score: float
    is_alert: bool
    is_late: bool
    reasons_json: str
    model_version: str = "v1"


@dataclass
class Dead:
    field: str | None
    reason: str


def _reasons(*codes):
    return json.dumps([{"code": c, "feature": "f", "value": None, "contribution": None}
                       for c in codes])


def _scored(score=0.1, alert=False, late=False, age_ms=40, reasons=()):
    return Scored(Txn(NOW_MS - age_ms), score, alert, late, _reasons(*reasons))


def _score_metrics(enabled=True):
    group = FakeGroup()
    metrics = ScoreMetrics(enabled, clock_ms=lambda: NOW_MS)
    metrics.open(group)
    return metrics, group


def test_cumulative_counts_follow_prometheus_le_buckets():
    assert cumulative_counts([0.05, 0.1, 0.15, 0.95, 2.0], (0.1, 0.5, 1.0)) == [2, 3, 4, 5]
    assert cumulative_counts([], (1, 2)) == [0, 0, 0]
    assert bucket_label(0.1) == "0.1" and bucket_label(250) == "250"
    assert bucket_label(float("inf")) == "+Inf"


def test_dead_letter_reasons_are_a_bounded_set():
    assert dead_letter_reason("event_time", FUTURE_REASON) == FUTURE
    assert dead_letter_reason("amt", "must be a number") == "amt"
    assert dead_letter_reason("payload", "is not valid UTF-8") == "payload"
    assert dead_letter_reason("<payload>", "empty record") == "payload"
    assert dead_letter_reason("some_unknown_key_from_a_hostile_producer", "x") == "other"
    assert dead_letter_reason(None, "ValueError: parser bug") == "other"


def test_rule_names_come_from_rule_reasons_only():
    assert rule_names(_reasons("RULE:big-online", "amount_zscore", "RULE:night")) == [
        "big-online", "night"]
    assert rule_names(_reasons("amount_zscore")) == []


def test_parse_metrics_count_records_valid_and_dead_letters_by_reason():
    group = FakeGroup()
    metrics = ParseMetrics()
    metrics.open(group)
    dead = [Dead("amt", "x"), Dead("payload", "not JSON"), Dead("amt", "y")]
    metrics.batch(10, 7, dead)
    metrics.batch(5, 5, [])
    assert group.value("events_in") == 15
    assert group.value("events_valid") == 12
    assert group.value("parse_batches") == 2
    assert group.value("dead_letters", reason="amt") == 2
    assert group.value("dead_letters", reason="payload") == 1


def test_score_metrics_count_a_batch():
    metrics, group = _score_metrics()
    metrics.sized({"a": b"x" * 300, "b": b"x" * 500})
    metrics.batch([
        _scored(0.05, age_ms=20),
        _scored(0.95, alert=True, age_ms=700, reasons=("RULE:big", "amount_zscore")),
        _scored(0.45, late=True, age_ms=90_000),
        _scored(0.15, reasons=("RULE:small",)),
    ])
    assert group.value("scored", model_version="v1") == 4
    assert group.value("alerts") == 1
    assert group.value("late_events") == 1
    assert group.value("hits", rule="big") == 1 and group.value("hits", rule="small") == 1
    assert group.value("score_batches") == 1
    assert group.value("state_bytes_written") == 800 and group.value("state_writes") == 2
    assert group.value("state_bytes_max") == 500
    score = {b: group.value("score", le=bucket_label(b)) for b in SCORE_BUCKETS}
    assert score[0.1] == 1 and score[0.2] == 2 and score[0.5] == 3 and score[0.9] == 3
    assert group.value("score", le="+Inf") == 4
    latency = {b: group.value("decision_latency_ms", le=bucket_label(b))
               for b in LATENCY_BUCKETS_MS}
    # ages 20, 700, 90,000 and 40 ms
    assert latency[25] == 1 and latency[50] == 2 and latency[500] == 2 and latency[1000] == 3
    assert latency[60000] == 3 and group.value("decision_latency_ms", le="+Inf") == 4


def test_state_max_gauge_only_moves_up():
    metrics, group = _score_metrics()
    metrics.sized({"a": b"x" * 900})
    metrics.batch([_scored()])
    metrics.sized({"a": b"x" * 100})
    metrics.batch([_scored()])
    assert group.value("state_bytes_max") == 900
    assert group.value("state_writes") == 2


@pytest.mark.parametrize("size", [1, 10, 1000])
def test_java_calls_per_batch_do_not_grow_with_the_batch(size):
    """One counter update per metric and batch: at most every bucket of both histograms plus
    the plain counters, whatever the batch size."""
    metrics, group = _score_metrics()
    registered = group.calls
    batch = [_scored(score=i / size, alert=i % 3 == 0, age_ms=10 * i, reasons=("RULE:r",))
             for i in range(size)]
    metrics.sized({f"c{i}": b"x" * (i % 50 + 1) for i in range(size)})
    metrics.batch(batch)
    calls = group.calls - registered
    bound = len(SCORE_BUCKETS) + len(LATENCY_BUCKETS_MS) + 2 + 8  # buckets + counters
    assert calls <= bound
    assert group.value("scored", model_version="v1") == size


def test_disabled_job_metrics_register_only_the_control_counters():
    metrics, group = _score_metrics(enabled=False)
    metrics.sized({"a": b"x"})
    metrics.batch([_scored()])
    names = {name for _path, name in group.metrics}
    assert names == {"controlRecordsApplied", "controlRecordsRefused"}
    metrics.applied.inc()
    assert group.metrics[((), "controlRecordsApplied")].value == 1
    parse = ParseMetrics(False)
    parse.open(None)  # never touches the context
    parse.batch(3, 3, [])


def test_a_metric_group_that_cannot_make_them_disables_job_metrics_not_the_job(caplog):
    class CountersOnly:
        def get_metrics_group(self):
            return self

        def counter(self, name):
            return FakeCounter(FakeGroup())

    metrics = ScoreMetrics()
    with caplog.at_level(logging.WARNING, logger="jobs.job_metrics"):
        metrics.open(CountersOnly())
    assert "job metrics disabled" in caplog.text
    metrics.applied.inc()  # the control counters still work
    metrics.batch([_scored()])  # and the job keeps scoring
    parse = ParseMetrics()
    parse.open(None)
    parse.batch(1, 0, [Dead("amt", "x")])


def test_prometheus_names_are_what_the_functions_register():
    """The names tests and dashboards use: `fraudstream_<label key>_<metric>` for labelled
    metrics (Flink puts the key group into the name), `fraudstream_<metric>` otherwise."""
    metrics, group = _score_metrics()
    parse_group = FakeGroup()
    parse = ParseMetrics()
    parse.open(parse_group)
    parse.batch(2, 1, [Dead("amt", "x")])
    metrics.sized({"a": b"x"})
    metrics.batch([_scored(reasons=("RULE:r",))])
    seen = set()
    for root in (group, parse_group):
        for path, name in root.metrics:
            keys = [k for k, v in path if v is not None] + [name]
            scope = [k for k, _ in path[:1]]
            seen.add(PREFIX + "_".join([*scope, *keys]))
    assert seen == set(PROMETHEUS_NAMES) | {
        PREFIX + "controlRecordsApplied", PREFIX + "controlRecordsRefused"}
