"""Per-process CPU seconds and peak memory during a benchmark, read from Linux `/proc`.

A `ProcessMonitor` samples a set of process trees on a background thread (default every
0.5 s): each tracked root pid plus every descendant that appears while it runs (MiniCluster JVM,
Python workers of process mode, ...). For each pid it keeps the CPU counters first and last seen
and the peak resident set size. Processes that existed before the run (standalone TaskManagers,
Kafka, Postgres) are charged only the CPU spent while the monitor ran (`cpu_delta`).

Limits: Linux only (`/proc`); a process that exits between two samples loses at most one
interval of CPU; for subprocesses the harness starts itself, `BenchProcess.rusage` (from
`os.wait4`) is exact and is preferred by the report. No psutil dependency.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bench.stats import CpuSample, cpu_delta

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class ProcStat:
    """One reading of a process: parent, CPU counters, resident memory."""

    pid: int
    ppid: int
    cpu: CpuSample
    rss_bytes: int


def stat_fields(raw: str) -> list[str]:
    """The fields of a `/proc/<pid>/stat` line from field 3 (state) on.

    comm (field 2) may contain spaces and parentheses: the fixed fields start after the last
    ')'. So ppid is `[1]`, utime/stime `[11]`/`[12]`, cutime/cstime `[13]`/`[14]`.
    """
    return raw[raw.rfind(")") + 2 :].split()


def read_stat(pid: int) -> ProcStat | None:
    """Read `/proc/<pid>/stat` (+statm); None if the process is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode(errors="replace")
        with open(f"/proc/{pid}/statm", "rb") as fh:
            statm = fh.read().split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = stat_fields(raw)
    ppid = int(rest[1])
    utime, stime = int(rest[11]), int(rest[12])
    return ProcStat(
        pid=pid,
        ppid=ppid,
        cpu=CpuSample(user_s=utime / _TICKS, system_s=stime / _TICKS),
        rss_bytes=int(statm[1]) * _PAGE,
    )


def cmdline(pid: int) -> list[str]:
    """argv of a process ([] if gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [p.decode(errors="replace") for p in fh.read().split(b"\0") if p]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def find_pids(predicate: Callable[[list[str]], bool]) -> list[int]:
    """Pids whose argv satisfies `predicate` (read-only discovery, e.g. TaskManager JVMs)."""
    found = []
    for pid in all_pids():
        argv = cmdline(pid)
        if argv and predicate(argv):
            found.append(pid)
    return found


def describe(argv: list[str]) -> str:
    """Short human name of a process from its argv (JVM main class, python module, binary)."""
    if not argv:
        return "?"
    exe = os.path.basename(argv[0])
    if exe == "java":
        mains = [a for a in argv[1:] if not a.startswith("-") and "." in a and "/" not in a]
        for known in ("TaskManagerRunner", "StandaloneSessionClusterEntrypoint", "kafka.Kafka",
                      "PythonGatewayServer", "PythonDriver"):
            if any(known in a for a in argv):
                return f"java {known}"
        return f"java {mains[-1].rsplit('.', 1)[-1]}" if mains else "java"
    if exe.startswith("python"):
        if "-m" in argv:
            return f"python -m {argv[argv.index('-m') + 1]}"
        if "-c" in argv:
            return "python -c"
        script = next((a for a in argv[1:] if not a.startswith("-")), "")
        return f"python {os.path.basename(script)}".strip()
    return exe


@dataclass
class ProcessRecord:
    """What the monitor learned about one pid."""

    pid: int
    group: str
    name: str
    first_cpu: CpuSample | None  # None when the process appeared after monitoring began
    last_cpu: CpuSample
    peak_rss_bytes: int
    rss_series: list[tuple[float, int]] = field(default_factory=list)

    @property
    def cpu_seconds(self) -> float:
        return cpu_delta(self.first_cpu, self.last_cpu)


class ProcessMonitor:
    """Samples process trees by group name ("engine", "kafka", "postgres", ...).

    Usage: `mon.track("engine", pid)` for roots (their descendants follow automatically), then
    `mon.start()`, ..., `mon.stop()`, then `mon.records()`. Thread-safe for `track` while running.
    """

    def __init__(self, interval_s: float = 0.5, keep_series: bool = False) -> None:
        self._interval = interval_s
        self._keep_series = keep_series
        self._roots: dict[int, str] = {}
        self._records: dict[int, ProcessRecord] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._started = False

    def track(self, group: str, pids: Iterable[int]) -> None:
        """Follow these root pids (and their future descendants) under `group`."""
        with self._lock:
            for pid in pids:
                self._roots[pid] = group

    @property
    def started_at(self) -> float:
        """`time.monotonic()` at `start()`: the zero of the `rss_series` times."""
        return self._t0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._sample(initial=True)
        self._started = True
        self._thread = threading.Thread(target=self._run, name="procmon", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample(initial=False)

    def records(self) -> list[ProcessRecord]:
        with self._lock:
            return list(self._records.values())

    def group_cpu(self, group: str) -> float:
        """CPU seconds charged so far to the processes of `group` (as of the last sample)."""
        with self._lock:
            return sum(r.cpu_seconds for r in self._records.values() if r.group == group)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample(initial=False)

    def _sample(self, initial: bool) -> None:
        stats = {}
        for pid in all_pids():
            st = read_stat(pid)
            if st is not None:
                stats[pid] = st
        with self._lock:
            groups = dict(self._roots)
        # Descendants inherit the group of their nearest tracked ancestor.
        children: dict[int, list[int]] = {}
        for st in stats.values():
            children.setdefault(st.ppid, []).append(st.pid)
        member: dict[int, str] = {}
        for root, group in groups.items():
            stack = [root]
            while stack:
                pid = stack.pop()
                if pid in member or pid not in stats:
                    continue
                member[pid] = group
                stack.extend(children.get(pid, []))
        now = time.monotonic() - self._t0
        with self._lock:
            for pid, group in member.items():
                st = stats[pid]
                rec = self._records.get(pid)
                if rec is None:
                    rec = ProcessRecord(
                        pid=pid,
                        group=group,
                        name=describe(cmdline(pid)),
                        # Already running when first seen at start: charge only the delta.
                        first_cpu=st.cpu if (initial or not self._started) else None,
                        last_cpu=st.cpu,
                        peak_rss_bytes=st.rss_bytes,
                    )
                    self._records[pid] = rec
                rec.last_cpu = st.cpu
                rec.peak_rss_bytes = max(rec.peak_rss_bytes, st.rss_bytes)
                if self._keep_series:
                    rec.rss_series.append((now, st.rss_bytes))
