"""Memory soak: run an engine unbounded at a fixed rate for minutes, sample every engine
process's RSS, and judge whether memory stays flat while the engine keeps up (issue 5:
"process memory flat over a 10-minute run at 70 % of the measured maximum rate").

Called by `fraudstream bench soak` (and `bench all --soak-s N`) once per engine, on a fresh
source topic and Postgres schema. Timeline:
1. start-up: the engine is launched (`latency.running_engine`, the same start and clean stop
   as the latency mode) and the harness produces at a trickle (`startup_rate`, 50/s) until the
   engine has persisted its first row, so the soak does not begin with a start-up backlog
   (Flink takes 1-3 minutes to start on this box);
2. soak: `PacedProducer` (latency mode's fixed-rate producer) at `rate` for `duration_s`;
   t = 0 is the start of this phase; the first `warmup_s` are not judged;
3. drain: up to `drain_s` until the engine has persisted a row for every event produced, then
   the persisted and alert counts (exact `count(*)` in the run's own schema, as throughput
   counts), then the clean stop.

RSS of each engine process (and its descendants: JVM, Python workers) is sampled every
`sample_s` by `ProcessMonitor` (`/proc`); persisted rows every `sample_s` on a thread. The
figures and the verdict are `bench.soak_stats`. The JVM heap is not sampled: RSS is what the
machine pays, and a heap that grows shows in RSS once it passes its committed size.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.engines import EngineProcess, EngineTarget, ended_reason, engine_ended
from bench.latency import PacedProducer, running_engine, transaction_ids
from bench.procmon import ProcessMonitor
from bench.soak_stats import (
    Tolerance,
    in_window,
    kept_up,
    soak_verdict,
    sum_series,
    summarize_rss,
)
from bench.stats import linear_slope, rate


@dataclass(frozen=True)
class SoakPlan:
    rate: int
    duration_s: float = 600.0
    warmup_s: float = 60.0
    sample_s: float = 5.0
    edge_s: float = 30.0
    startup_rate: float = 50.0
    startup_timeout_s: float = 300.0
    drain_s: float = 10.0
    tolerance: Tolerance = field(default_factory=Tolerance)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"soak rate must be positive, got {self.rate}")
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"warm-up ({self.warmup_s} s) leaves no measured window in a "
                             f"{self.duration_s} s soak")


class RowSampler(threading.Thread):
    """Calls `count()` every `interval_s`; keeps (monotonic time, rows) and the latest count."""

    def __init__(self, count: Callable[[], int], interval_s: float,
                 on_sample: Callable[[float, int], None] | None = None) -> None:
        super().__init__(name="soak-rows", daemon=True)
        self._count = count
        self._interval = interval_s
        self._on_sample = on_sample
        self._halt = threading.Event()
        self.points: list[tuple[float, int]] = []
        self.latest = 0
        self.error: str | None = None

    def run(self) -> None:
        while True:
            try:
                n = self._count()
            except Exception as exc:  # noqa: BLE001 - reported in the result
                self.error = str(exc)
            else:
                now = time.monotonic()
                self.points.append((now, n))
                self.latest = n
                if self._on_sample:
                    self._on_sample(now, n)
            if self._halt.wait(self._interval):
                return

    def stop(self) -> None:
        self._halt.set()
        self.join(30)


def run_soak(
    target: EngineTarget, plan: SoakPlan, settings: Any, pairs: Sequence[tuple[bytes, bytes]],
    log_dir: Path, count_rows: Callable[[str], int],
    status: Callable[[str], None] | None = None,
) -> dict:
    """Soak one engine (see module docstring); never raises for an engine failure.

    `count_rows(table)` is the exact row count of one of the engine's own tables.
    """
    say = status or (lambda _msg: None)
    producer = PacedProducer(settings.kafka_bootstrap, target.source_topic, pairs,
                             transaction_ids(pairs), keep_sent=False)
    monitor = ProcessMonitor(interval_s=plan.sample_s, keep_series=True)
    soak_start: float | None = None
    error: str | None = None
    counts: dict[str, Any] = {}
    sent, secs = 0, 0.0

    def progress(now: float, rows: int) -> None:
        phase = ("start-up" if soak_start is None
                 else f"{now - soak_start:.0f}/{plan.duration_s:.0f} s at {plan.rate}/s")
        say(f"soak {target.engine}: {phase}, {rows:,} of {producer.total:,} rows persisted")

    sampler = RowSampler(lambda: count_rows("scored_transactions"), plan.sample_s, progress)
    launched = time.monotonic()
    with running_engine(target, settings, log_dir, monitor) as engine:
        sampler.start()
        try:
            _, waited = producer.produce_for(
                plan.startup_rate, plan.startup_timeout_s,
                until=lambda: sampler.latest > 0 or engine_ended(engine),
            )
            if engine_ended(engine):
                error = f"{ended_reason(engine)} during start-up"
            elif sampler.latest <= 0:
                error = f"no row persisted within {waited:.0f} s of start"
            else:
                counts["startup_s"] = round(time.monotonic() - launched, 2)
                counts["produced_before_soak"] = producer.total
                soak_start = time.monotonic()
                sent, secs = producer.produce_for(plan.rate, plan.duration_s,
                                                  until=lambda: engine_ended(engine))
                counts["persisted_at_end_of_production"] = count_rows("scored_transactions")
                deadline = time.monotonic() + plan.drain_s
                while (count_rows("scored_transactions") < producer.total
                       and time.monotonic() < deadline and not engine_ended(engine)):
                    time.sleep(0.5)
                counts["persisted"] = count_rows("scored_transactions")
                counts["alerts"] = count_rows("alerts")
                if engine_ended(engine):
                    error = f"{ended_reason(engine)} after {secs:.0f} s of the soak"
        finally:
            sampler.stop()
    origin = soak_start if soak_start is not None else launched
    return soak_result(target, plan, monitor, sampler, engine, origin, soak_start is not None,
                       producer.total, sent, secs, counts, error)


def soak_result(target: EngineTarget, plan: SoakPlan, monitor: ProcessMonitor,
                sampler: RowSampler, engine: EngineProcess, origin: float, soaked: bool,
                produced_total: int, sent: int, secs: float, counts: dict[str, Any],
                error: str | None) -> dict:
    """The result dict: every sample (t = seconds since the soak began) and every figure."""
    offset = monitor.started_at - origin
    processes = []
    judged = []
    for rec in sorted(monitor.records(), key=lambda r: (r.group, -r.peak_rss_bytes)):
        series = [(round(t + offset, 2) + 0.0, rss) for t, rss in rec.rss_series]  # no -0.0
        summary = summarize_rss(series, plan.warmup_s, plan.duration_s, plan.edge_s,
                                plan.tolerance)
        if rec.group == "engine":
            judged.append(summary)
        processes.append({
            "group": rec.group, "name": rec.name, "pid": rec.pid,
            "cpu_s": round(rec.cpu_seconds, 3), "peak_rss_bytes": rec.peak_rss_bytes,
            "summary": summary.as_dict(), "samples": series,
        })
    engine_series = [p["samples"] for p in processes if p["group"] == "engine"]
    total_samples = sum_series(engine_series)
    total = summarize_rss(total_samples, plan.warmup_s, plan.duration_s, plan.edge_s,
                          plan.tolerance)
    rows = [(round(t - origin, 2) + 0.0, n) for t, n in sampler.points]
    window_rows = in_window(rows, plan.warmup_s, plan.duration_s)
    persisted = counts.get("persisted", sampler.latest)
    result: dict[str, Any] = {
        "ok": error is None and soaked,
        "engine": target.engine,
        "target_rate": plan.rate,
        "achieved_rate": rate(sent, secs) if secs > 0 else None,
        "duration_s": plan.duration_s,
        "soaked_s": round(secs, 2),
        "warmup_s": plan.warmup_s,
        "sample_s": plan.sample_s,
        "edge_s": plan.edge_s,
        "startup_rate": plan.startup_rate,
        "tolerance": plan.tolerance.as_dict(),
        "job_settings": dict(target.job_settings),
        "produced": sent,
        "produced_total": produced_total,
        **counts,
        "persisted": persisted,
        "persisted_share": persisted / produced_total if produced_total else None,
        "kept_up": kept_up(produced_total, persisted, plan.tolerance.min_persisted_share),
        "persist_rate_in_window": linear_slope(window_rows),
        "total": {"summary": total.as_dict(), "samples": total_samples},
        "processes": processes,
        "rows": rows,
        "exit_code": engine.exited(),
        "log": str(engine.log_path),
    }
    if sampler.error:
        result["row_count_error"] = sampler.error
    result["verdict"] = soak_verdict(total, judged, produced_total, persisted,
                                     plan.tolerance, error)
    if error is not None:
        result["error"] = error
        result["log_tail"] = engine.log_tail()
    return result
