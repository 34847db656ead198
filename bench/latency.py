"""Latency: produce at a fixed rate, measure each alert from the transaction's Kafka timestamp
(CreateTime, set explicitly by the producer) to the alert's arrival at a consumer of the
engine's alerts topic.

Called by `fraudstream bench latency|all` once per engine: the engine runs unbounded on a fresh
source topic; for each rate of the sweep: warm-up (until the first alert, then `warmup_s`),
a measured phase of `duration_s`, then a drain of up to `drain_s` (until the engine has
persisted a row for every event produced). Samples are the alerts of transactions produced
in the measured phase. A step that does not drain in time or whose p50 exceeds
`saturation_p50_ms` is marked saturated and ends the sweep.

Producer and alert consumer run in this process (their CPU competes with the engine on a
2-core box; the result notes it). Clock: one machine, `time.time()` on both sides.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.engines import (
    CLUSTER_ENGINES,
    EngineProcess,
    EngineTarget,
    ended_reason,
    engine_ended,
    start_engine,
    stop_engine,
)
from bench.procmon import ProcessMonitor
from bench.stats import latency_timeline, rate, summarize_latencies
from bench.throughput import infra_pids, process_rows


@dataclass(frozen=True)
class LatencyPlan:
    rates: tuple[int, ...] = (5000,)
    duration_s: float = 30.0
    warmup_s: float = 150.0  # a fresh job's JIT compiles for ~3 minutes (bench/README)
    drain_s: float = 20.0
    startup_timeout_s: float = 240.0
    # Produced while the engine starts (until its first alert). Producing at the first step's
    # rate instead left a backlog of a whole start-up (30-60 s of events) that the measured
    # phase then drained: p95 5.9 s at 1,000/s on a MiniCluster that keeps up with 2,000/s.
    startup_rate: float = 50.0
    # After warm-up, keep producing (up to catch_up_s) until the engine is at most max_lag_s of
    # events behind (persisted rows lag the JDBC flush interval, 1 s); then measure.
    max_lag_s: float = 3.0
    catch_up_s: float = 120.0
    saturation_p50_ms: float = 5000.0
    mode: str = "probe"
    share: float = 0.1  # expected share of events that alert (probe model)
    min_samples: int = 1000
    max_duration_s: float = 120.0

    def duration_for(self, events_per_s: float) -> float:
        """Measured seconds at this rate: long enough for `min_samples` alerts, capped."""
        needed = self.min_samples / max(events_per_s * self.share, 1e-9) * 1.15
        return min(max(self.duration_s, needed), self.max_duration_s)


def lag_in_seconds(produced: int, persisted: int, events_per_s: float) -> float:
    """How far behind the engine is, in seconds of production at `events_per_s`."""
    return max(produced - persisted, 0) / max(events_per_s, 1e-9)


def throttled(predicate: Callable[[], bool], every_s: float) -> Callable[[], bool]:
    """`predicate` evaluated at most once per `every_s`; in between the last answer is kept.

    `PacedProducer.produce_for` calls its `until` in a tight loop; a row count per call
    would load Postgres.
    """
    last = {"at": -1e18, "value": False}

    def check() -> bool:
        now = time.monotonic()
        if now - last["at"] >= every_s:
            last["at"], last["value"] = now, bool(predicate())
        return last["value"]

    return check


class AlertCollector(threading.Thread):
    """Consumes the alerts topic from the beginning; records (transaction id, arrival ms)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(name="alert-collector", daemon=True)
        from confluent_kafka import Consumer

        self._consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-alerts-{topic}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 5,
            "isolation.level": "read_uncommitted",
        })
        self._topic = topic
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self._halt = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        self._consumer.subscribe([self._topic])
        try:
            while not self._halt.is_set():
                msgs = self._consumer.consume(500, 0.05)
                now_ms = time.time() * 1000.0
                for msg in msgs:
                    if msg.error():
                        continue
                    try:
                        txn_id = json.loads(msg.value())["transaction_id"]
                    except (ValueError, KeyError, TypeError):
                        continue
                    # First arrival counts (at-least-once delivery may repeat an alert).
                    self.arrivals.setdefault(txn_id, now_ms)
                    self.count += 1
        except Exception as exc:  # noqa: BLE001 - reported in the result
            self.error = str(exc)
        finally:
            self._consumer.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


class PacedProducer:
    """Produces the dataset's payloads at a fixed rate, stamping CreateTime explicitly.

    `keep_sent=False` leaves `self.sent` empty (a long soak needs only the counts).
    """

    def __init__(self, bootstrap: str, topic: str, pairs: Sequence[tuple[bytes, bytes]],
                 ids: Sequence[str], keep_sent: bool = True) -> None:
        from confluent_kafka import Producer

        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "linger.ms": 1,
            "acks": 1,
            "queue.buffering.max.messages": 1_000_000,
        })
        self._topic = topic
        self._pairs = pairs
        self._ids = ids
        self._next = 0
        self._keep_sent = keep_sent
        self.total = 0
        self.sent: dict[str, float] = {}

    def produce_for(self, events_per_s: float, seconds: float,
                    record: dict[str, float] | None = None,
                    until: Callable[[], bool] | None = None) -> tuple[int, float]:
        """Produce at `events_per_s` for `seconds` (or until `until()`); return (count, secs).

        Sent (transaction id -> CreateTime ms) go to `self.sent` and to `record` if given.
        The dataset is cycled when exhausted; repeated records get a new transaction id
        (`unique_id`) so every alert matches exactly one send.
        """
        start = time.monotonic()
        produced = 0
        n = len(self._pairs)
        while True:
            now = time.monotonic()
            elapsed = now - start
            if elapsed >= seconds or (until is not None and until()):
                break
            due = int(elapsed * events_per_s)
            while produced < due:
                i = self._next % n
                cycle = self._next // n
                key, value = self._pairs[i]
                txn_id = self._ids[i]
                if cycle:
                    txn_id, value = unique_id(txn_id, value, cycle)
                ts = time.time() * 1000.0
                while True:
                    try:
                        self._producer.produce(self._topic, value=value, key=key,
                                               timestamp=int(ts))
                        break
                    except BufferError:
                        self._producer.poll(0.01)
                if self._keep_sent:
                    self.sent[txn_id] = ts
                if record is not None:
                    record[txn_id] = ts
                self._next += 1
                self.total += 1
                produced += 1
            self._producer.poll(0)
            time.sleep(0.0005)
        self._producer.flush(30)
        return produced, time.monotonic() - start


def unique_id(txn_id: str, value: bytes, cycle: int) -> tuple[str, bytes]:
    """The payload with `-c<cycle>` appended to its transaction id (ids stay <= 64 chars)."""
    new_id = f"{txn_id}-c{cycle}"
    old = b'"transaction_id":"' + txn_id.encode() + b'"'
    if old not in value:
        raise ValueError("wire payload does not hold the transaction id in compact form")
    return new_id, value.replace(old, b'"transaction_id":"' + new_id.encode() + b'"', 1)


def transaction_ids(pairs: Sequence[tuple[bytes, bytes]]) -> list[str]:
    """The transaction id of each wire payload (for matching alerts to send times)."""
    return [json.loads(value)["transaction_id"] for _key, value in pairs]


@contextmanager
def running_engine(target: EngineTarget, settings: Any, log_dir: Path,
                   monitor: ProcessMonitor) -> Iterator[EngineProcess]:
    """Start the engine with `monitor` following its processes (group "engine"; for
    flink-cluster also the standing JobManager/TaskManagers); on leaving, however that happens
    (error, Ctrl-C), stop the engine (`stop_engine`: cancel the cluster job, SIGTERM the
    process groups) and then the monitor. Every process of the engine (two for python-x2) is
    tracked as "engine".
    """
    if target.engine in CLUSTER_ENGINES:
        monitor.track("engine", infra_pids()["flink-cluster"])
    monitor.start()
    try:
        engine = start_engine(target, settings, log_dir)
    except BaseException:
        monitor.stop()
        raise
    monitor.track("engine", engine.pids)
    try:
        yield engine
    finally:
        try:
            stop_engine(engine)
        finally:
            monitor.stop()


def run_latency(
    target: EngineTarget, plan: LatencyPlan, settings: Any, pairs: Sequence[tuple[bytes, bytes]],
    log_dir: Path, count_scored: Callable[[], int],
    status: Callable[[str], None] | None = None,
) -> list[dict]:
    """Run the sweep on one engine; one result dict per rate step (see module docstring).

    `count_scored()` returns the rows the engine has persisted so far (drain detection).
    """
    say = status or (lambda _msg: None)
    sys.setswitchinterval(0.001)  # keep the collector's arrival stamps close to real arrival
    ids = transaction_ids(pairs)
    collector = AlertCollector(settings.kafka_bootstrap, target.alerts_topic)
    collector.start()
    producer = PacedProducer(settings.kafka_bootstrap, target.source_topic, pairs, ids)
    monitor = ProcessMonitor(interval_s=1.0)
    results: list[dict] = []
    try:
        with running_engine(target, settings, log_dir, monitor) as engine:
            _sweep(target, plan, engine, producer, collector, count_scored, results, say)
    finally:
        collector.stop()
    procs = process_rows(monitor)
    for step in results:
        step["processes"] = procs
        step["log"] = str(engine.log_path)
    return results


def _sweep(target: EngineTarget, plan: LatencyPlan, engine: EngineProcess,
           producer: PacedProducer, collector: AlertCollector, count_scored: Callable[[], int],
           results: list[dict], say: Callable[[str], None]) -> None:
    """The rate steps of `run_latency` on a started engine; appends one dict per step."""
    say(f"{target.engine}: starting, producing {plan.startup_rate:g}/s until the first alert")
    _, waited = producer.produce_for(
        plan.startup_rate, plan.startup_timeout_s,
        until=lambda: collector.count > 0 or engine_ended(engine),
    )
    if collector.count == 0:
        results.append({"ok": False, "target_rate": plan.rates[0], "mode": plan.mode,
                        "error": f"no alert within {waited:.0f} s of start",
                        "log_tail": engine.log_tail()})
        return
    for step_rate in plan.rates:
        if engine_ended(engine):
            results.append({"ok": False, "target_rate": step_rate, "mode": plan.mode,
                            "error": ended_reason(engine),
                            "log_tail": engine.log_tail()})
            break
        say(f"{target.engine}: {step_rate}/s warm-up {plan.warmup_s:.0f} s")
        producer.produce_for(step_rate, plan.warmup_s)
        lag = lag_in_seconds(producer.total, count_scored(), step_rate)
        if lag > plan.max_lag_s:
            say(f"{target.engine}: {step_rate}/s {lag:.1f} s behind after warm-up; "
                f"producing until caught up (at most {plan.catch_up_s:.0f} s)")
            caught_up = throttled(
                lambda r=step_rate: lag_in_seconds(producer.total, count_scored(), r)
                <= plan.max_lag_s, every_s=1.0)
            producer.produce_for(step_rate, plan.catch_up_s, until=caught_up)
            lag = lag_in_seconds(producer.total, count_scored(), step_rate)
        duration = plan.duration_for(step_rate)
        say(f"{target.engine}: {step_rate}/s measuring {duration:.0f} s")
        measured: dict[str, float] = {}
        sent, secs = producer.produce_for(step_rate, duration, record=measured)
        # Drained = the engine has persisted a scored row for everything produced so far
        # (alerts are sent before or with the rows); then one more second for delivery.
        deadline = time.monotonic() + plan.drain_s
        drained = False
        while time.monotonic() < deadline:
            if count_scored() >= producer.total:
                drained = True
                break
            time.sleep(0.5)
        time.sleep(1.0)
        timed = [(ts / 1000.0, collector.arrivals[t] - ts) for t, ts in measured.items()
                 if t in collector.arrivals]
        latencies = [lat for _, lat in timed]
        step: dict[str, Any] = {
            "lag_s_at_measure_start": round(lag, 2),
            "drained": drained,
            "target_rate": step_rate,
            "achieved_rate": rate(sent, secs),
            "produced": sent,
            "mode": plan.mode,
        }
        if not latencies:
            step.update(ok=False, error="no alerts for the measured phase")
            results.append(step)
            break
        summary = summarize_latencies(latencies)
        step.update(ok=True, summary=summary.as_dict(),
                    alert_share=len(latencies) / max(sent, 1),
                    timeline=latency_timeline(timed))
        step["saturated"] = (not drained) or summary.p50_ms > plan.saturation_p50_ms
        results.append(step)
        say(f"{target.engine}: {step_rate}/s p50 {summary.p50_ms:.1f} ms "
            f"p99 {summary.p99_ms:.1f} ms ({summary.count} samples)")
        if step["saturated"]:
            break
