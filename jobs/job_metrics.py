"""The scoring job's own metrics, registered on Flink's metric groups (thread mode: PyFlink's
embedded `MetricGroup` wraps the Java one, so the cluster's reporters export them).

Cost rule: the functions count in Python while they handle a batch and touch Java once per
metric and batch (`Counter.inc(n)`, one PEMJA call each); nothing is called per event. A
histogram is a set of cumulative bucket counters (`le` label, Prometheus' convention, so
`histogram_quantile` works on them); a batch increments only the buckets it reaches.

Names as Prometheus shows them (the Flink reporter prefixes the operator's scope,
`flink_taskmanager_job_task_operator_`, and adds host/job/task/subtask labels):

parse-batch (`ParseMetrics`)
  fraudstream_events_in                     records read from Kafka (valid or not)
  fraudstream_events_valid                  records parsed into transactions
  fraudstream_reason_dead_letters{reason}   dead letters by `dead_letter_reason`
  fraudstream_parse_batches                 micro-batches (mean size: events_in / batches)
score-shard (`ScoreMetrics`)
  fraudstream_model_version_scored{model_version}  events scored, by champion version
  fraudstream_alerts                        events alerted (after analyst rules)
  fraudstream_late_events                   events at or behind the watermark
  fraudstream_rule_hits{rule}               events whose reasons carry RULE:<rule>
  fraudstream_le_score{le}                  model score histogram (SCORE_BUCKETS)
  fraudstream_le_decision_latency_ms{le}    wall clock at scoring - event time (LATENCY_BUCKETS_MS)
  fraudstream_score_batches                 scorer calls (mean size: scored / batches)
  fraudstream_state_bytes_written, fraudstream_state_writes   per-card state bytes written
  fraudstream_state_bytes_max               largest card state written by this subtask (gauge)
  controlRecordsApplied, controlRecordsRefused   control-topic records (kept from before)

`job_metrics=False` (JobConfig) registers only the two control counters. Registration never
stops the job: a metric group that cannot make them (a test fake, another runtime) disables
the job metrics with one warning.
"""

from __future__ import annotations

import json
import logging
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

GROUP = "fraudstream"
# What the Flink Prometheus reporter calls them (the operator scope's prefix included); the
# dashboard, the alerting rules and tests/integration/test_monitoring.py use these names.
PREFIX = "flink_taskmanager_job_task_operator_"
PROMETHEUS_NAMES = tuple(PREFIX + name for name in (
    "fraudstream_events_in", "fraudstream_events_valid", "fraudstream_reason_dead_letters",
    "fraudstream_parse_batches", "fraudstream_model_version_scored", "fraudstream_alerts",
    "fraudstream_late_events", "fraudstream_rule_hits", "fraudstream_le_score",
    "fraudstream_le_decision_latency_ms", "fraudstream_score_batches",
    "fraudstream_state_bytes_written", "fraudstream_state_writes", "fraudstream_state_bytes_max",
    "controlRecordsApplied", "controlRecordsRefused",
))
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
LATENCY_BUCKETS_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000)
INF = "+Inf"
RULE_PREFIX = "RULE:"
FUTURE = "event_time_future"


def bucket_label(bound: float) -> str:
    """The `le` label of a bucket bound: `0.1`, `250`, `+Inf` (what Prometheus parses)."""
    return INF if bound == float("inf") else f"{bound:g}"


def cumulative_counts(values: Iterable[float], bounds: Sequence[float]) -> list[int]:
    """Cumulative bucket counts of `values` for `bounds` (ascending) plus +Inf: element i
    counts the values <= bounds[i]; the last one counts all."""
    counts = [0] * (len(bounds) + 1)
    for value in values:
        counts[bisect_left(bounds, value)] += 1
    total = 0
    for i, count in enumerate(counts):
        total += count
        counts[i] = total
    return counts


def dead_letter_reason(field: str | None, reason: str) -> str:
    """A bounded label for a dead letter: `event_time_future`, the contract field at fault,
    `payload` (not JSON, too big, empty, not an object ...) or `other`."""
    from models.hot_path import FUTURE_REASON
    from schemas.parse import FIELDS

    if reason == FUTURE_REASON:
        return FUTURE
    if field in FIELDS:
        return str(field)
    if field in ("payload", "<payload>"):
        return "payload"
    return "other"


def rule_names(reasons_json: str) -> list[str]:
    """The analyst rules among an event's reasons (`RULE:<name>` codes), in order."""
    if RULE_PREFIX not in reasons_json:
        return []
    return [
        code[len(RULE_PREFIX):]
        for code in (r.get("code", "") for r in json.loads(reasons_json))
        if isinstance(code, str) and code.startswith(RULE_PREFIX)
    ]


class _Labelled:
    """One counter per label value, made on first use: `group.add_group(key, value)`."""

    def __init__(self, group: Any, key: str, name: str) -> None:
        self._group, self._key, self._name = group, key, name
        self._counters: dict[str, Any] = {}

    def inc(self, value: str, n: int) -> None:
        counter = self._counters.get(value)
        if counter is None:
            counter = self._group.add_group(self._key, value).counter(self._name)
            self._counters[value] = counter
        counter.inc(n)


class _Histogram:
    """Cumulative bucket counters `<key=le>` of one metric name."""

    def __init__(self, group: Any, name: str, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        labels = [bucket_label(b) for b in self.bounds] + [INF]
        self._counters = [group.add_group("le", label).counter(name) for label in labels]

    def add(self, values: Iterable[float]) -> None:
        for counter, n in zip(self._counters, cumulative_counts(values, self.bounds),
                              strict=True):
            if n:
                counter.inc(n)


class _Metrics:
    """Shared: the switch, and registration that can never stop the job."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._on = False

    def open(self, runtime_context: Any) -> None:
        if not self.enabled:
            return
        try:
            self._register(runtime_context.get_metrics_group().add_group(GROUP))
            self._on = True
        except Exception as exc:  # noqa: BLE001 - metrics must never stop the job
            log.warning("job metrics disabled: %s: %s", type(exc).__name__, exc)

    def _register(self, group: Any) -> None:
        raise NotImplementedError


class ParseMetrics(_Metrics):
    """Metrics of `jobs.functions.ParseBatch`: one `batch` call per micro-batch."""

    def _register(self, group: Any) -> None:
        self._in = group.counter("events_in")
        self._valid = group.counter("events_valid")
        self._batches = group.counter("parse_batches")
        self._dead = _Labelled(group, "reason", "dead_letters")

    def batch(self, records: int, valid: int, dead: Sequence[Any]) -> None:
        if not self._on:
            return
        self._in.inc(records)
        self._batches.inc(1)
        if valid:
            self._valid.inc(valid)
        if dead:
            by_reason: dict[str, int] = {}
            for letter in dead:
                label = dead_letter_reason(letter.field, letter.reason)
                by_reason[label] = by_reason.get(label, 0) + 1
            for label, n in by_reason.items():
                self._dead.inc(label, n)


class ScoreMetrics(_Metrics):
    """Metrics of `jobs.functions.ScoreShard`. `sized` sees the state bytes written (returns
    them unchanged), `batch` the scored events of one call. The control counters are always
    registered (`open_control`), whatever `enabled` says."""

    def __init__(self, enabled: bool = True, clock_ms: Any = None) -> None:
        super().__init__(enabled)
        self._clock_ms = clock_ms  # None: the wall clock (tests inject one)
        self.applied: Any = None
        self.refused: Any = None
        self._sizes: list[int] = []
        self._max_state = 0

    def open(self, runtime_context: Any) -> None:
        group = runtime_context.get_metrics_group()
        self.applied = group.counter("controlRecordsApplied")
        self.refused = group.counter("controlRecordsRefused")
        super().open(runtime_context)

    def _register(self, group: Any) -> None:
        self._scored = _Labelled(group, "model_version", "scored")
        self._alerts = group.counter("alerts")
        self._late = group.counter("late_events")
        self._rules = _Labelled(group, "rule", "hits")
        self._score = _Histogram(group, "score", SCORE_BUCKETS)
        self._latency = _Histogram(group, "decision_latency_ms", LATENCY_BUCKETS_MS)
        self._batches = group.counter("score_batches")
        self._state_bytes = group.counter("state_bytes_written")
        self._state_writes = group.counter("state_writes")
        self._state_max = group.distribution("state_bytes_max")  # a gauge set from Python

    def sized(self, blobs: dict[str, bytes]) -> dict[str, bytes]:
        """Note the sizes of the card states about to be written; returns `blobs`."""
        if self._on:
            self._sizes.extend(map(len, blobs.values()))
        return blobs

    def batch(self, scored: Sequence[Any]) -> None:
        if not self._on:
            return
        now_ms = self._clock_ms() if self._clock_ms is not None else time.time() * 1000.0
        self._batches.inc(1)
        if scored:
            self._scored.inc(str(scored[0].model_version), len(scored))
            alerts = late = 0
            rules: dict[str, int] = {}
            for event in scored:
                alerts += event.is_alert
                late += event.is_late
                if RULE_PREFIX in event.reasons_json:
                    for name in rule_names(event.reasons_json):
                        rules[name] = rules.get(name, 0) + 1
            if alerts:
                self._alerts.inc(alerts)
            if late:
                self._late.inc(late)
            for name, n in rules.items():
                self._rules.inc(name, n)
            self._score.add(event.score for event in scored)
            self._latency.add(now_ms - event.txn.event_time_ms for event in scored)
        sizes, self._sizes = self._sizes, []
        if sizes:
            self._state_bytes.inc(sum(sizes))
            self._state_writes.inc(len(sizes))
            largest = max(sizes)
            if largest > self._max_state:
                self._max_state = largest
                self._state_max.update(largest)
