"""Throughput: run an engine over a preloaded topic from the earliest offset until all N events
are scored AND persisted (rows in its own `scored_transactions`), and account its resources.

Called by `fraudstream bench throughput|all` once per engine, with the run's shared source topic
(preloaded once, read-only) and a fresh sink namespace per engine. Figures:
- wall_s: engine launch -> the N-th row visible in Postgres (includes start-up: JVM, job graph,
  model load); events_per_s = N / wall_s (the end-to-end figure of issue 5);
- steady_events_per_s: rows/s between 10 % and 90 % of N (processing speed without start-up);
- CPU seconds of the engine's processes (and of Kafka + Postgres) per 1,000 events;
- peak RSS of each process (sampled every 0.5 s).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.engines import (
    CLUSTER_ENGINES,
    EngineTarget,
    cluster_job,
    start_engine,
    stop_engine,
    taskmanagers,
)
from bench.procmon import ProcessMonitor, find_pids
from bench.stats import cpu_seconds_per_1000, rate, steady_cost_per_1000, steady_rate


def infra_pids() -> dict[str, list[int]]:
    """Pids of the shared stack's processes by group (read-only discovery by argv)."""

    def is_kafka(argv: list[str]) -> bool:
        return any(a == "kafka.Kafka" for a in argv)

    def is_postmaster(argv: list[str]) -> bool:
        return argv[0].endswith("/postgres") or (argv[0] == "postgres" and "-D" in argv)

    def is_flink_cluster(argv: list[str]) -> bool:
        return any("TaskManagerRunner" in a or "StandaloneSessionClusterEntrypoint" in a
                   for a in argv)

    return {
        "kafka": find_pids(is_kafka),
        "postgres": find_pids(is_postmaster),
        "flink-cluster": find_pids(is_flink_cluster),
    }


def process_rows(monitor: ProcessMonitor) -> list[dict]:
    return [
        {"group": r.group, "name": r.name, "pid": r.pid, "cpu_s": round(r.cpu_seconds, 3),
         "peak_rss_bytes": r.peak_rss_bytes}
        for r in sorted(monitor.records(), key=lambda r: (r.group, -r.peak_rss_bytes))
    ]


@dataclass(frozen=True)
class ThroughputPlan:
    events: int
    timeout_s: float = 1800.0
    poll_s: float = 1.0
    profile_s: float = 0.0  # > 0: py-spy the engine's Python for this long after 10 %


def run_throughput(
    target: EngineTarget, plan: ThroughputPlan, namespace: Any, settings: Any, admin: Any,
    log_dir: Path, progress: Any = None,
) -> dict:
    """Run one engine (bounded) until `plan.events` rows are persisted; return the figures.

    `namespace` is the engine's `BenchNamespace` (schema already created), `admin` an
    autocommit psycopg connection used for counting. Never raises for an engine failure: the
    result then has ok=False and the log tail. `progress(done, total)` is called each poll.
    """
    monitor = ProcessMonitor(interval_s=0.5)
    infra = infra_pids()
    monitor.track("kafka", infra["kafka"])
    monitor.track("postgres", infra["postgres"])
    cluster_info: dict[str, Any] = {}
    if target.engine in CLUSTER_ENGINES:
        monitor.track("engine", infra["flink-cluster"])
        try:
            tms = taskmanagers(settings.flink_rest_url)
            cluster_info = {"taskmanagers": len(tms),
                            "slots": sum(tm.get("slotsNumber", 0) for tm in tms)}
        except OSError as exc:
            return {"ok": False, "events": plan.events,
                    "error": f"standalone cluster not reachable ({exc}); "
                             "run `fraudstream up --flink-cluster`"}
    monitor.start()
    t0 = time.monotonic()
    try:
        engine = start_engine(target, settings, log_dir)
    except (OSError, RuntimeError, ValueError) as exc:  # e.g. python-x2 on a 1-partition topic
        monitor.stop()
        return {"ok": False, "engine": target.engine, "events": plan.events,
                "error": f"engine did not start: {exc}"}
    monitor.track("engine", engine.pids)  # every process of the engine (python-x2: two)
    progress_points: list[tuple[float, int]] = [(0.0, 0)]
    cpu_points: list[tuple[float, int, float]] = [(0.0, 0, 0.0)]
    error = None
    count = 0
    profiles: list[tuple[int, str, Any, Path]] = []
    try:
        while True:
            time.sleep(plan.poll_s)
            count = namespace.count_rows(admin, "scored_transactions")
            elapsed = time.monotonic() - t0
            progress_points.append((elapsed, count))
            cpu_points.append((elapsed, count, monitor.group_cpu("engine")))
            if plan.profile_s > 0 and not profiles and count >= 0.1 * plan.events:
                profiles = _start_profiles(monitor, plan.profile_s, log_dir)
            if progress:
                progress(count, plan.events)
            if count >= plan.events:
                break
            code = engine.exited()
            if code is not None and (code != 0 or target.engine not in CLUSTER_ENGINES):
                # Give a finished bounded engine one more poll for its last commit.
                time.sleep(plan.poll_s)
                count = namespace.count_rows(admin, "scored_transactions")
                if count >= plan.events:
                    progress_points.append((time.monotonic() - t0, count))
                    break
                error = f"engine exited with code {code} after {count:,} rows"
                break
            if target.engine in CLUSTER_ENGINES:
                job = cluster_job(engine)
                if job and job.get("state") in ("FAILED", "CANCELED"):
                    error = f"cluster job {job['state']} after {count:,} rows"
                    break
            if elapsed > plan.timeout_s:
                error = f"timeout after {elapsed:.0f} s with {count:,} rows"
                break
    finally:
        wall = progress_points[-1][0]
        # A bounded engine ends by itself once its last records are flushed.
        if target.engine not in CLUSTER_ENGINES and error is None:
            deadline = time.monotonic() + 60
            while engine.exited() is None and time.monotonic() < deadline:
                time.sleep(0.2)
        for _pid, _name, proc, _out in profiles:
            if proc is not None:
                proc.wait(plan.profile_s + 30)
        exit_code = stop_engine(engine)
        monitor.stop()
    processes = process_rows(monitor)
    result: dict[str, Any] = {
        "ok": error is None,
        "engine": target.engine,
        "events": plan.events,
        "rows_persisted": count,
        "job_settings": dict(target.job_settings),
        "exit_code": exit_code,
        "log": str(engine.log_path),
        "processes": processes,
        "progress": [(round(t, 2), n, round(c, 2)) for t, n, c in cpu_points],
        **cluster_info,
    }
    if profiles:
        result["profile"] = _summaries(profiles)
    if error is not None:
        result["error"] = error
        result["log_tail"] = engine.log_tail()
        return result
    cpu_engine = sum(p["cpu_s"] for p in processes if p["group"] == "engine")
    cpu_total = sum(p["cpu_s"] for p in processes)
    result.update(
        wall_s=round(wall, 3),
        events_per_s=rate(plan.events, wall),
        steady_events_per_s=steady_rate(progress_points),
        steady_cpu_s_per_1000_engine=steady_cost_per_1000(cpu_points),
        first_row_s=next((t for t, n in progress_points if n > 0), None),
        cpu_s_engine=round(cpu_engine, 3),
        cpu_s_total=round(cpu_total, 3),
        cpu_s_per_1000_engine=cpu_seconds_per_1000(cpu_engine, plan.events),
        cpu_s_per_1000_total=cpu_seconds_per_1000(cpu_total, plan.events),
        peak_rss_engine_bytes=sum(p["peak_rss_bytes"] for p in processes
                                  if p["group"] == "engine"),
        alerts=namespace.count_rows(admin, "alerts"),
        rejected=namespace.count_rows(admin, "rejected_events"),
    )
    return result


def _start_profiles(monitor: ProcessMonitor, seconds: float, log_dir: Path) -> list:
    from bench.profile import python_pids, start_profile

    engine_pids = [r.pid for r in monitor.records() if r.group == "engine"]
    names = {r.pid: r.name for r in monitor.records()}
    started = []
    # All of them: in MiniCluster process mode the Python worker runs inside the job client
    # (PyFlink loopback mode), in thread mode inside the JVM; idle ones get no busy samples.
    for pid in python_pids(engine_pids):
        out = log_dir / f"pyspy-{pid}.txt"
        started.append((pid, names.get(pid, "?"), start_profile(pid, seconds, out), out))
    return started


def _summaries(profiles: list) -> list[dict]:
    from bench.profile import summarize_collapsed

    out = []
    for pid, name, proc, path in profiles:
        if proc is None or not path.is_file():
            out.append({"pid": pid, "process": name,
                        "error": "py-spy missing or failed (pip install -e '.[bench]')"})
            continue
        with path.open() as fh:
            out.append({"pid": pid, "process": name, "raw": str(path),
                        **summarize_collapsed(fh)})
    return out
