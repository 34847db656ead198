"""Probe: ways of getting a stream of records into Python once per batch in PyFlink.

A benchmark that prints figures; it is not a test. Each variant runs in a fresh subprocess
(its own JVM, MiniCluster and JIT) at parallelism 1, `python.execution-mode: thread`, with the
scoring job's own Flink options (`jobs.scoring_job.flink_options`: python.executable,
python.pythonpath, object reuse, 10 ms buffer timeout), checkpointing off and no restarts. The
source is Flink's Java `datagen` connector (no Kafka, no Postgres): N rows of a BIGINT `id`
sequence and a random STRING `payload` of `--payload-chars` (300) characters, unthrottled.

Variants (`--variants a,b,c,d`, letters or names):
  a. per-row      `to_data_stream` + a Python `map` per row (returns 1);
  b. array-agg    processing-time `TUMBLE` of `--window-ms` (20) grouped by `MOD(id, --groups)`
                  (4) collecting `ARRAY_AGG(ROW(id, payload))`, `to_data_stream`, a Python `map`
                  per batch returning its length;
  c. micro-batch  our Java `MicroBatcher` (`connectors.flink_ops.micro_batch`, `--batch-records`
                  1000 / `--batch-delay-ms` 10, as the job), a Python `map` per pickled batch
                  (a list of tuples) returning its length;
  d. pandas-udf   a vectorized (pandas) scalar UDF over `payload` in SQL returning the string
                  length (that operator runs in process mode, Arrow batches).

Rows that reached Python: the Python outputs (batch lengths; 1 per row for a; for d the UDF's
per-row results) go through a DataStream into ONE Java global aggregate in mini-batch mode
(`count_sql`), collected by the client; its last update, emitted when the input has ended, is
the total: SUM = rows seen by Python, COUNT = Python calls (batches), MIN/MAX = smallest and
largest batch. The count adds a little Java work per Python output (per row for a and d, per
batch for b and c). A shortfall ("lost") shows rows that never reached Python. d has no call
count (its Arrow batches are not visible in SQL); its rows are the UDF's results and
`udf_min`/`udf_max` the lengths it returned. (A `blackhole` sink cannot report what it
received, so d counts through the same aggregate.) `max_processes` is the largest number of
processes seen below the probe's own during the job, `process_names` their command names
(thread mode: the JVM; d adds bash, python and tee of its process-mode worker).

Figures per variant (one JSON line on stdout, then a table on stderr):
- `job_*`: from `table.execute()` to the collected final count (job submission, MiniCluster
  task start-up, the run itself); `total_*`: from the start of the subprocess (interpreter,
  imports, JVM launch, planning) to the same point.
- CPU seconds of the whole process tree: `getrusage(RUSAGE_SELF)` + `getrusage(RUSAGE_CHILDREN)`
  of the subprocess, plus utime+stime+cutime+cstime of every live descendant from `/proc`.
  The gateway JVM (where thread-mode Python runs, embedded) is never reaped by PyFlink, so
  rusage alone would miss it. Process-mode Python workers run under a bash the JVM starts
  and outlive it at shutdown; the subprocess makes itself a child subreaper and reaps such
  orphans, so their CPU stays in the tree (`become_subreaper`).
- per 1,000 rows requested: `*_cpu_s_per_1k`, `*_wall_s_per_1k`; rows/s of the job phase.
- `steady_*`: from the first to the last Python output reaching the count (processing time
  in Java), so without start-up and shutdown; its CPU is interpolated between tree readings
  taken every 0.25 s; per 1,000 rows that reached Python. Meaningful only when the run lasts
  many seconds (the default 1 M rows), coarse at small N.
The 1-minute load average at the start of each variant is recorded: on a busy machine, read
CPU seconds rather than wall time.

    .venv/bin/python -m bench.batching_probe --rows 1000000 --variants a,b,c,d
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.procmon import all_pids, stat_fields

_T0 = time.perf_counter()  # the child's clock starts at import (before pyflink is imported)

VARIANTS = {"a": "per-row", "b": "array-agg", "c": "micro-batch", "d": "pandas-udf"}
RESULT_MARK = "BATCHING_PROBE_RESULT "
SOURCE = "probe_src"
COUNTS_VIEW = "probe_counts"
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_REPO = Path(__file__).resolve().parents[1]


# --- pure helpers ------------------------------------------------------------------------------


def parse_variants(text: str) -> list[str]:
    """`"a,c"` or `"per-row,micro-batch"` -> variant letters in the given order (no repeats)."""
    by_name = {name: letter for letter, name in VARIANTS.items()}
    letters: list[str] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        letter = part if part in VARIANTS else by_name.get(part)
        if letter is None:
            known = ", ".join(f"{k} ({v})" for k, v in VARIANTS.items())
            raise ValueError(f"unknown variant {part!r}; known: {known}")
        if letter not in letters:
            letters.append(letter)
    if not letters:
        raise ValueError("no variant given")
    return letters


def parse_proc_stat(raw: str) -> tuple[int, int]:
    """A `/proc/<pid>/stat` line -> (ppid, utime+stime+cutime+cstime in clock ticks)."""
    rest = stat_fields(raw)
    return int(rest[1]), sum(int(v) for v in rest[11:15])


def descendants(parents: Mapping[int, int], root: int) -> set[int]:
    """Every pid below `root` in a {pid: ppid} map (root itself excluded)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid not in found and pid != root:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def per_1k(value: float | None, rows: int) -> float | None:
    """`value` per 1,000 rows (None if unknown or no rows)."""
    if value is None or rows <= 0:
        return None
    return value * 1000.0 / rows


def cpu_at(samples: Sequence[tuple[float, float]], when: float) -> float | None:
    """Tree CPU seconds at wall time `when`, linearly interpolated between (time, cpu)
    samples (clamped to the first/last sample; None without samples)."""
    if not samples:
        return None
    if when <= samples[0][0]:
        return samples[0][1]
    for (t0, c0), (t1, c1) in zip(samples, samples[1:], strict=False):
        if t0 <= when <= t1:
            return c0 if t1 == t0 else c0 + (c1 - c0) * (when - t0) / (t1 - t0)
    return samples[-1][1]


def derive_figures(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The child's raw readings -> the reported figures (per 1k rows, rows/s, lost rows)."""
    rows = int(raw["rows"])
    seen = raw.get("rows_in_python")
    calls = raw.get("python_calls")
    out = dict(raw)
    out["lost_rows"] = None if seen is None else rows - int(seen)
    out["mean_batch"] = round(seen / calls, 1) if seen is not None and calls else None
    for phase in ("job", "total"):
        for kind in ("cpu", "wall"):
            value = per_1k(raw.get(f"{phase}_{kind}_s"), rows)
            out[f"{phase}_{kind}_s_per_1k"] = None if value is None else round(value, 5)
    job_wall = raw.get("job_wall_s")
    out["job_rows_per_s"] = round(rows / job_wall) if job_wall else None
    # Steady: first to last Python output (start-up and shutdown left out), rows seen by Python.
    span, span_cpu = raw.get("steady_wall_s"), raw.get("steady_cpu_s")
    out["steady_rows_per_s"] = round(seen / span) if seen and span else None
    value = per_1k(span_cpu, int(seen or 0))
    out["steady_cpu_s_per_1k"] = None if value is None else round(value, 5)
    return out


TABLE_COLUMNS = (
    ("variant", "name"),
    ("rows in Py", "rows_in_python"),
    ("lost", "lost_rows"),
    ("Py calls", "python_calls"),
    ("mean batch", "mean_batch"),
    ("job wall s", "job_wall_s"),
    ("job CPU s", "job_cpu_s"),
    ("job CPU s/1k", "job_cpu_s_per_1k"),
    ("steady rows/s", "steady_rows_per_s"),
    ("steady CPU s/1k", "steady_cpu_s_per_1k"),
    ("total CPU s", "total_cpu_s"),
    ("load1", "load1"),
)


def table_rows(results: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    """Result dicts -> the table's cells as text (`-` for unknown, `FAILED` for a failed run)."""
    cells = []
    for result in results:
        if result.get("error"):
            cells.append([str(result.get("name", "?")), "FAILED"] + [""] * (len(TABLE_COLUMNS) - 2))
            continue
        row = []
        for _, key in TABLE_COLUMNS:
            value = result.get(key)
            if value is None:
                row.append("-")
            elif isinstance(value, float):
                row.append(f"{value:.4f}" if abs(value) < 1 else f"{value:,.2f}")
            elif isinstance(value, int):
                row.append(f"{value:,}")
            else:
                row.append(str(value))
        cells.append(row)
    return cells


def plain_table(results: Sequence[Mapping[str, Any]]) -> str:
    """A fixed-width text table of the results."""
    header = [title for title, _ in TABLE_COLUMNS]
    body = table_rows(results)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *body]]
    return "\n".join(lines)


# --- measurement -------------------------------------------------------------------------------


def tree_cpu_s(root: int | None = None) -> float:
    """CPU seconds of this process, its reaped children and every live descendant (/proc)."""
    return tree_readings(root)[0]


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux `PR_SET_CHILD_SUBREAPER`); True if it worked.

    Process mode starts `bash pyflink-udf-runner.sh` -> python | tee from the JVM; when the
    job ends the bash dies first and the orphaned worker would be reaped by init, its CPU
    seconds lost to the tree (measured: 3.8 of 30 s vanished at the end of a pandas run)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(36, 1, 0, 0, 0)) == 0  # PR_SET_CHILD_SUBREAPER = 36
    except (OSError, AttributeError):
        return False


def reap_children() -> None:
    """Wait for every exited child (adopted orphans), so their CPU joins RUSAGE_CHILDREN."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def tree_readings(root: int | None = None) -> tuple[float, list[str]]:
    """(`tree_cpu_s`, command names of the live descendants).

    Order matters: exited children are reaped first, then rusage is read, then /proc, so a
    process ending meanwhile is counted once (as a zombie in /proc)."""
    root = os.getpid() if root is None else root
    if root == os.getpid():
        reap_children()
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    names: dict[int, str] = {}
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                raw = fh.read().decode(errors="replace")
            ppid, cpu = parse_proc_stat(raw)
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError, IndexError):
            continue
        parents[pid], ticks[pid] = ppid, cpu
        names[pid] = raw[raw.find("(") + 1 : raw.rfind(")")]
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    below = descendants(parents, root)
    return total + sum(ticks[p] for p in below) / _TICKS, sorted(names[p] for p in below)


class CpuSampler:
    """(wall epoch s, tree CPU s) every `interval_s` on a daemon thread (~1.5 ms CPU a scan)."""

    def __init__(self, interval_s: float = 0.25) -> None:
        import threading

        self.samples: list[tuple[float, float]] = []
        self.max_processes = 0
        self.process_names: set[str] = set()
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _sample(self) -> None:
        cpu, names = tree_readings()
        self.samples.append((time.time(), cpu))
        self.max_processes = max(self.max_processes, len(names))
        self.process_names.update(names)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> CpuSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# --- the Flink side (runs in the child) -------------------------------------------------------


def source_ddl(name: str, rows: int, payload_chars: int, rows_per_second: int) -> str:
    """The datagen table: `id` 1..rows, random hex `payload`, processing time `pt`."""
    return f"""
CREATE TEMPORARY TABLE {name} (
  id BIGINT,
  payload STRING,
  pt AS PROCTIME()
) WITH (
  'connector' = 'datagen',
  'number-of-rows' = '{rows}',
  'rows-per-second' = '{rows_per_second}',
  'fields.id.kind' = 'sequence',
  'fields.id.start' = '1',
  'fields.id.end' = '{rows}',
  'fields.payload.kind' = 'random',
  'fields.payload.length' = '{payload_chars}'
)"""


# The count is a global (non-windowed) aggregate in mini-batch mode: it emits an update per
# mini-batch and a last one when the input ends, after every record. (An event-time window
# fired by the final watermark was tried first and under-counted: the processing-time TUMBLE
# of variant b flushes its open windows at the end of input AFTER forwarding that watermark.)
COUNT_MINI_BATCH = {
    "table.exec.mini-batch.enabled": "true",
    "table.exec.mini-batch.allow-latency": "1 s",
    "table.exec.mini-batch.size": "100000",
}


def count_sql(view: str, value: str, calls: bool) -> str:
    """Rows that reached Python, Python calls, min/max batch, and the processing time (epoch
    ms) of the first and last Python output; the last update is the total.

    `calls=False` (pandas UDF: one `value` per row): rows = COUNT, no call count."""
    rows_expr = f"SUM({value})" if calls else f"COUNT({value})"
    calls_expr = "COUNT(*)" if calls else "CAST(NULL AS BIGINT)"
    # TIMESTAMP_LTZ does not cast to a number (and PyFlink cannot collect it): epoch ms by hand.
    epoch_ms = (
        "CAST(TIMESTAMPDIFF(SECOND, TO_TIMESTAMP_LTZ(0, 3), {t}) AS BIGINT) * 1000"
        " + EXTRACT(MILLISECOND FROM {t})"
    )
    return f"""
SELECT rows_in_python, python_calls, min_value, max_value,
       {epoch_ms.format(t="first_out")} AS first_out_ms,
       {epoch_ms.format(t="last_out")} AS last_out_ms
FROM (
  SELECT {rows_expr} AS rows_in_python, {calls_expr} AS python_calls,
         MIN({value}) AS min_value, MAX({value}) AS max_value,
         MIN(CURRENT_ROW_TIMESTAMP()) AS first_out, MAX(CURRENT_ROW_TIMESTAMP()) AS last_out
  FROM {view})"""


def one_per_row(row: Any) -> int:
    """Per-row variant: Python sees one row, reports 1."""
    return 1


def batch_length(batch: Any) -> int:
    """Batched variants: Python sees one batch (a list), reports its length."""
    return len(batch)


def array_agg_batch_length(row: Any) -> int:
    """array-agg variant: the row holds one column, the ARRAY_AGG of the window's rows."""
    return len(row[0])


def _count_table(t_env: Any, outputs: Any, column: str, calls: bool) -> Any:
    """The Python outputs (a DataStream, already translated) -> the count table."""
    for key, value in COUNT_MINI_BATCH.items():
        # Set only now: `to_data_stream` has already translated the measured pipeline, so
        # mini-batch applies to the count query alone.
        t_env.get_config().set(key, value)
    t_env.create_temporary_view(COUNTS_VIEW, t_env.from_data_stream(outputs))
    return t_env.sql_query(count_sql(COUNTS_VIEW, column, calls))


def build_variant(letter: str, t_env: Any, args: argparse.Namespace) -> Any:
    """The variant's pipeline; returns the count table (see `count_sql`)."""
    from pyflink.common.typeinfo import Types

    t_env.execute_sql(source_ddl(SOURCE, args.rows, args.payload_chars, args.rows_per_second))
    if letter == "a":
        stream = t_env.to_data_stream(t_env.sql_query(f"SELECT id, payload FROM {SOURCE}"))
        counts = stream.map(one_per_row, output_type=Types.LONG()).name("py-per-row")
    elif letter == "b":
        seconds = f"{args.window_ms / 1000:.3f}"
        t_env.create_temporary_view(
            "probe_keyed",
            t_env.sql_query(f"SELECT id, payload, MOD(id, {args.groups}) AS k, pt FROM {SOURCE}"),
        )
        batches = t_env.sql_query(f"""
            SELECT ARRAY_AGG(ROW(id, payload)) AS batch
            FROM TABLE(TUMBLE(TABLE probe_keyed, DESCRIPTOR(pt), INTERVAL '{seconds}' SECOND))
            GROUP BY window_start, window_end, k""")
        counts = (
            t_env.to_data_stream(batches)
            .map(array_agg_batch_length, output_type=Types.LONG())
            .name("py-per-window-batch")
        )
    elif letter == "c":
        from connectors.flink_ops import micro_batch

        stream = t_env.to_data_stream(t_env.sql_query(f"SELECT id, payload FROM {SOURCE}"))
        batches = micro_batch(stream, args.batch_records, args.batch_delay_ms, uid="micro-batch")
        counts = batches.map(batch_length, output_type=Types.LONG()).name("py-per-micro-batch")
    elif letter == "d":
        from pyflink.table import DataTypes
        from pyflink.table.udf import udf

        def text_length(payload: Any) -> Any:  # a pandas Series in, a Series out
            return payload.str.len()

        t_env.create_temporary_function(
            "py_len", udf(text_length, result_type=DataTypes.BIGINT(), func_type="pandas")
        )
        # Through a DataStream too, so the count query is planned apart (as for a, b, c).
        lengths = t_env.to_data_stream(
            t_env.sql_query(f"SELECT py_len(payload) AS n FROM {SOURCE}")
        )
        return _count_table(t_env, lengths, "n", calls=False)
    else:
        raise ValueError(f"unknown variant {letter!r}")
    return _count_table(t_env, counts, "f0", calls=True)


def _jar_urls(letter: str) -> list[str]:
    """The project's Flink jars (every variant gets them, so start-up is alike); only the
    micro-batch variant needs them (a missing jar then fails with the bootstrap command)."""
    from connectors.jars import JarsMissingError, flink_jar_urls

    try:
        return flink_jar_urls()
    except JarsMissingError:
        if letter == "c":
            raise
        return []


def run_child(letter: str, args: argparse.Namespace) -> dict[str, Any]:
    """Build and run one variant in this process; the raw readings."""
    import pyflink
    from pyflink.common import RowKind

    from jobs.config import JobConfig
    from jobs.scoring_job import create_environment, flink_options

    subreaper = become_subreaper()  # before the JVM starts, so its orphans come back to us
    cfg = JobConfig(
        parallelism=1,
        execution_mode="thread",
        checkpoint_interval_ms=0,
        restart_attempts=0,
        idleness_ms=0,
        job_name=f"batching-probe-{VARIANTS[letter]}",
    )
    _, t_env = create_environment(cfg, _jar_urls(letter))
    counts = build_variant(letter, t_env, args)

    cpu_before = tree_cpu_s()
    wall_before = time.perf_counter()
    final = None
    with CpuSampler() as sampler, counts.execute().collect() as results:
        for row in results:  # a changelog: the last insert/update-after is the total
            if row.get_row_kind() in (RowKind.INSERT, RowKind.UPDATE_AFTER):
                final = row
    wall_after = time.perf_counter()
    cpu_after = tree_cpu_s()
    steady_wall = steady_cpu = None
    if final is not None and final[4] is not None and final[5] is not None:
        first, last = final[4] / 1000.0, final[5] / 1000.0
        steady_wall = round(last - first, 3)
        cpu_first, cpu_last = cpu_at(sampler.samples, first), cpu_at(sampler.samples, last)
        if cpu_first is not None and cpu_last is not None:
            steady_cpu = round(cpu_last - cpu_first, 3)

    options = flink_options(cfg)
    return {
        "variant": letter,
        "name": VARIANTS[letter],
        "rows": args.rows,
        "rows_in_python": None if final is None else final[0],
        "python_calls": None if final is None else final[1],
        # d: the UDF's results (payload lengths) instead of batch sizes
        ("udf_min" if letter == "d" else "min_batch"): None if final is None else final[2],
        ("udf_max" if letter == "d" else "max_batch"): None if final is None else final[3],
        "job_wall_s": round(wall_after - wall_before, 3),
        "job_cpu_s": round(cpu_after - cpu_before, 3),
        "total_wall_s": round(wall_after - _T0, 3),
        "total_cpu_s": round(cpu_after, 3),
        "steady_wall_s": steady_wall,
        "steady_cpu_s": steady_cpu,
        "max_processes": sampler.max_processes,
        "process_names": sorted(sampler.process_names),
        "subreaper": subreaper,
        "settings": {
            "payload_chars": args.payload_chars,
            "rows_per_second": args.rows_per_second,
            "window_ms": args.window_ms if letter == "b" else None,
            "groups": args.groups if letter == "b" else None,
            "batch_records": args.batch_records if letter == "c" else None,
            "batch_delay_ms": args.batch_delay_ms if letter == "c" else None,
            "parallelism": 1,
            "python.execution-mode": options["python.execution-mode"],
            "pyflink": getattr(pyflink, "__version__", None) or _pyflink_version(),
            "python": sys.version.split()[0],
        },
    }


def _pyflink_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("apache-flink")
    except PackageNotFoundError:
        return None


# --- the parent: one subprocess per variant ----------------------------------------------------


def _child_argv(letter: str, args: argparse.Namespace) -> list[str]:
    return [
        sys.executable, "-m", "bench.batching_probe", "--child", letter,
        "--rows", str(args.rows),
        "--payload-chars", str(args.payload_chars),
        "--rows-per-second", str(args.rows_per_second),
        "--window-ms", str(args.window_ms),
        "--groups", str(args.groups),
        "--batch-records", str(args.batch_records),
        "--batch-delay-ms", str(args.batch_delay_ms),
    ]


def run_variant(letter: str, args: argparse.Namespace) -> dict[str, Any]:
    """One variant in a fresh subprocess -> its figures (or an error record)."""
    load1 = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            _child_argv(letter, args), cwd=_REPO, capture_output=True, text=True,
            timeout=args.timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"variant": letter, "name": VARIANTS[letter], "rows": args.rows,
                "load1": load1, "error": f"timed out after {args.timeout_s} s"}
    process_wall = round(time.perf_counter() - started, 3)
    raw = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            raw = json.loads(line[len(RESULT_MARK) :])
    if proc.returncode != 0 or raw is None:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        return {"variant": letter, "name": VARIANTS[letter], "rows": args.rows,
                "load1": load1, "error": f"exit {proc.returncode}", "stderr_tail": tail}
    figures = derive_figures(raw)
    figures["load1"] = load1
    figures["process_wall_s"] = process_wall  # spawn to exit, JVM shutdown included
    return figures


def print_table(results: Sequence[Mapping[str, Any]], rows: int) -> None:
    title = f"batching probe: {rows:,} datagen rows, p=1, thread mode (table on stderr)"
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title, file=sys.stderr)
        print(plain_table(results), file=sys.stderr)
        return
    console = Console(stderr=True)
    if not console.is_terminal:  # rich assumes 80 columns when writing to a file or pipe
        console = Console(stderr=True, width=200)
    table = Table(title=title)
    for header, _ in TABLE_COLUMNS:
        table.add_column(header, justify="left" if header == "variant" else "right")
    for cells in table_rows(results):
        table.add_row(*cells)
    console.print(table)
    for result in results:
        if result.get("error"):
            console.print(
                f"[red]{result['name']}: {result['error']}[/red]\n{result.get('stderr_tail', '')}",
                markup=True, highlight=False,
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.batching_probe",
        description="Per-row vs batched ways into Python in PyFlink (datagen, MiniCluster, p=1).",
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="datagen rows (1,000,000)")
    parser.add_argument("--variants", default="a,b,c,d",
                        help="comma list of a/per-row, b/array-agg, c/micro-batch, d/pandas-udf")
    parser.add_argument("--payload-chars", type=int, default=300)
    parser.add_argument("--rows-per-second", type=int, default=1_000_000_000,
                        help="datagen throttle, high enough not to throttle")
    parser.add_argument("--window-ms", type=int, default=20, help="array-agg: TUMBLE size")
    parser.add_argument("--groups", type=int, default=4, help="array-agg: MOD(id, groups)")
    parser.add_argument("--batch-records", type=int, default=1000, help="micro-batch: max rows")
    parser.add_argument("--batch-delay-ms", type=int, default=10, help="micro-batch: max delay")
    parser.add_argument("--timeout-s", type=float, default=3600.0, help="per variant")
    parser.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rows < 1:
        raise SystemExit("--rows must be >= 1")
    if args.child:
        raw = run_child(args.child, args)
        print(RESULT_MARK + json.dumps(raw), flush=True)
        return 0
    try:
        letters = parse_variants(args.variants)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    results = []
    for letter in letters:
        result = run_variant(letter, args)
        results.append(result)
        print(json.dumps(result), flush=True)
    print_table(results, args.rows)
    return 1 if any(r.get("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
