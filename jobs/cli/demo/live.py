"""The demo's live loop: refresh the counters while the job runs, end it on Ctrl-C or timeout,
then draw the exact last frame."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from connectors.kafka_logs import client_config
from jobs.cli.demo.context import Baseline, DemoRun
from jobs.cli.demo.counters import scored_of_run, scored_since
from jobs.cli.demo.job import stop_job
from jobs.cli.demo.topics import end_offsets
from jobs.cli.demo.view import rate_of, render_live
from jobs.cli.demo.watcher import AlertWatcher

EXIT_STOPPED = 130  # Ctrl-C before a bounded job had read everything
EXIT_TIMEOUT = 124  # a bounded job still running after --timeout


class _Counters:
    """Reads the run's counters into `run.stats`: scored rows (Postgres) and dead letters (the
    DLQ topic's end offsets, through its own `meta` consumer)."""

    def __init__(self, run: DemoRun, conn: Any, meta: Any, baseline: Baseline) -> None:
        self._run, self._conn, self._meta, self._baseline = run, conn, meta, baseline
        # (time, scored) samples: the rate is taken over the last ~5 s, since the JDBC sink
        # flushes in bursts (every second or 500 rows) and one refresh would swing wildly.
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=6)

    def refresh(self) -> None:
        scored = scored_since(self._conn, self._baseline.db_start)
        dlq = self._dlq()
        self._samples.append((time.monotonic(), scored))
        stats = self._run.stats
        with self._run.lock:
            stats.scored = scored
            stats.scored_rate = rate_of(self._samples)
            stats.peak_rate = max(stats.peak_rate, stats.scored_rate)
            stats.dlq = dlq
            stats.elapsed_s = self._elapsed()

    def final(self, code: int) -> None:
        """The last frame's numbers: the exact count of this run's scored transactions."""
        stats = self._run.stats
        stats.scored = scored_of_run(self._conn, self._baseline.run_ids)
        stats.scored_rate = 0.0
        stats.dlq = self._dlq()
        stats.elapsed_s = self._elapsed()
        stats.phase = "done" if code == 0 else f"ended ({code})"

    def _dlq(self) -> int:
        return sum(end_offsets(self._meta, self._run.topics.dlq).values()) \
            - self._baseline.dlq_start

    def _elapsed(self) -> float:
        return (datetime.now(UTC) - self._run.started).total_seconds()


def watch_job(run: DemoRun, job: Any, conn: Any, baseline: Baseline,
              watcher: AlertWatcher) -> int:
    """Refresh the live view until the job ends (bounded), Ctrl-C, or the timeout; returns the
    job's exit code (0 for an unbounded job stopped by Ctrl-C, EXIT_STOPPED, EXIT_TIMEOUT).
    `job` is the job's subprocess.Popen, `conn` the analyst connection."""
    from confluent_kafka import Consumer  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    meta = Consumer(client_config({"bootstrap.servers": run.settings.kafka_bootstrap,
                                   "group.id": f"fraudstream-demo-meta-{run.run_id}"}))
    counters = _Counters(run, conn, meta, baseline)
    run.stats.phase = "scoring"
    try:
        with Live(render_live(run.stats), console=run.console, refresh_per_second=4,
                  transient=False) as live:

            def draw() -> None:
                live.update(render_live(run.stats))

            code = _until_job_ends(run, job, counters.refresh, draw)
            run.stats.phase = "finishing"
            watcher.wait_quiet()  # alerts already written may still be on their way
            counters.final(code)
            draw()
    finally:
        meta.close()
        if job.poll() is None:
            stop_job(job)
    return code


def _until_job_ends(run: DemoRun, job: Any, refresh: Callable[[], None],
                    draw: Callable[[], None]) -> int:
    """Refresh and draw every `refresh_s` until the job exits, Ctrl-C or the timeout (the last
    two stop the job); returns the exit code `watch_job` reports."""
    config, stats = run.config, run.stats
    deadline = time.monotonic() + config.timeout_s
    while True:
        refresh()
        draw()
        code = job.poll()
        if code is not None:
            return code
        if run.stop.is_set():
            stats.phase = "stopping (Ctrl-C)"
            draw()
            stop_job(job)
            return 0 if config.keep_running else EXIT_STOPPED
        if not config.keep_running and time.monotonic() > deadline:
            stats.phase = "timeout"
            stop_job(job)
            return EXIT_TIMEOUT
        run.stop.wait(config.refresh_s)
