"""The demo's scoring job: `fraudstream run` as a subprocess in its own session, its log, and
what to show when it fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from deploy.local.procs import stop_process_groups, tail_lines
from jobs.cli.demo.context import DemoRun
from jobs.cli.demo.plan import job_command

_REPO = Path(__file__).resolve().parents[3]


def start_job(run: DemoRun) -> tuple[subprocess.Popen, Path]:
    """Start the job on the run's topic (bounded unless `keep_running`), output to
    `<home>/logs/demo-<run id>.log`; its own session, so stopping it reaches its JVM."""
    config = run.config
    log_path = run.settings.logs_dir / f"demo-{run.run_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = job_command(run.source_topic, run.run_id, bounded=not config.keep_running,
                      parallelism=config.parallelism, python=sys.executable)
    run.console.print(f"[bold]4/4[/] scoring job on the embedded MiniCluster "
                      f"({'until Ctrl-C' if config.keep_running else 'bounded'}); "
                      f"log: {log_path}")
    with log_path.open("wb") as log:
        job = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(),
                               cwd=_REPO, start_new_session=True)
    return job, log_path


def stop_job(job: subprocess.Popen, grace_s: float = 20.0) -> None:
    """Stop the job subprocess and everything it started: SIGINT to its process group, then
    SIGTERM, then SIGKILL."""
    stop_process_groups(
        [job], ((signal.SIGINT, grace_s), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))
    )


def failure_cause(log_text: str, context: int = 2) -> str | None:
    """The innermost `Caused by:` of a Java/Flink stack trace in a log, with the next lines
    (a Python exception raised in a Flink worker is reported that way); None if there is none.
    """
    lines = log_text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Caused by:")]
    if not starts:
        return None
    first = starts[-1]
    picked = [lines[first]]
    for line in lines[first + 1: first + 1 + context]:
        if line.lstrip().startswith("at "):
            break
        picked.append(line)
    return "\n".join(picked)


def explain_failure(console: Console, log_path: Path) -> None:
    """Print the root cause (if the log has one) and the last log lines."""
    try:
        cause = failure_cause(log_path.read_text(errors="replace"))
    except OSError:
        cause = None
    if cause:
        console.print(f"[bold]cause:[/] {escape(cause)}", soft_wrap=True)
    console.print(f"last lines of {log_path}:")
    last = tail_lines(log_path, 10)
    console.print(escape("\n".join(last) if last is not None else f"(cannot read {log_path})"),
                  soft_wrap=True)
