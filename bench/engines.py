"""How the benchmark starts and stops each engine, as a subprocess it can account for.

Engines:
- `python`: the plain-Python peer (`python -m bench.peer_pipeline`).
- `flink-mini`: `fraudstream run` (scoring job on an embedded MiniCluster, one JVM).
- `flink-cluster`: `fraudstream submit` to the standalone cluster (`fraudstream up
  --flink-cluster`); the client returns after submission, the job runs in the TaskManagers.
  The job is found by its unique name through the JobManager REST API and cancelled there.

Every engine reads `EngineTarget` (topics, Postgres schema, model) and job settings given as
JobConfig `name=value` pairs (`--job-set` on the bench command, e.g. `execution_mode=process`),
so tuning trials need no code change.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.namespace import with_current_schema

ENGINES = ("flink-mini", "flink-cluster", "python")
_REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class EngineTarget:
    """Where one engine run reads and writes."""

    engine: str
    source_topic: str
    alerts_topic: str
    dlq_topic: str
    pg_schema: str
    group_id: str
    job_name: str
    bounded: bool
    model_path: str | None = None
    job_settings: tuple[tuple[str, str], ...] = ()  # extra JobConfig name=value (Flink only)
    peer_max_batch: int = 2000


@dataclass
class EngineProcess:
    """A started engine: the subprocess, its log, and (cluster) the Flink job id."""

    target: EngineTarget
    proc: subprocess.Popen
    log_path: Path
    rest_url: str | None = None
    job_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def exited(self) -> int | None:
        return self.proc.poll()

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def engine_command(target: EngineTarget, settings: Any) -> list[str]:
    """argv that starts the engine for `target`."""
    py = sys.executable
    if target.engine == "python":
        cmd = [py, "-m", "bench.peer_pipeline", "--topic", target.source_topic,
               "--alerts-topic", target.alerts_topic, "--dlq-topic", target.dlq_topic,
               "--pg-schema", target.pg_schema, "--group-id", target.group_id,
               "--max-batch", str(target.peer_max_batch)]
        if target.model_path:
            cmd += ["--model-path", target.model_path]
        if target.bounded:
            cmd.append("--bounded")
        return cmd
    if target.engine not in ("flink-mini", "flink-cluster"):
        raise ValueError(f"unknown engine {target.engine!r}; expected one of {ENGINES}")
    sets = {
        "alerts_topic": target.alerts_topic,
        "dlq_topic": target.dlq_topic,
        "group_id": target.group_id,
        "job_name": target.job_name,
        "jdbc_url": with_current_schema(settings.jdbc_url(), target.pg_schema),
        "start_from": "earliest",
    }
    if target.model_path:
        sets["model_path"] = target.model_path
    extra = dict(target.job_settings)
    if "jdbc_url" in extra:
        # a trial may change the JDBC URL (e.g. driver properties) but never the run's schema:
        # replacing the URL wrote a trial's rows into the public tables
        extra["jdbc_url"] = with_current_schema(extra["jdbc_url"], target.pg_schema)
    sets.update(extra)
    sub = "run" if target.engine == "flink-mini" else "submit"
    cmd = [py, "-m", "jobs.cli", sub, "--source-topic", target.source_topic,
           "--bounded" if target.bounded else "--no-bounded"]
    if target.engine == "flink-cluster":
        cmd += ["--jobmanager", f"127.0.0.1:{settings.flink_rest_port}", "--detached"]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd


def start_engine(target: EngineTarget, settings: Any, log_dir: Path) -> EngineProcess:
    """Start the engine's process (its own process group), output to `<log_dir>/<engine>.log`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{target.engine}-{'bounded' if target.bounded else 'stream'}.log"
    cmd = engine_command(target, settings)
    env = dict(os.environ)
    log = log_path.open("wb")
    log.write((" ".join(cmd) + "\n").encode())
    log.flush()
    proc = subprocess.Popen(cmd, cwd=_REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    rest = settings.flink_rest_url if target.engine == "flink-cluster" else None
    return EngineProcess(target=target, proc=proc, log_path=log_path, rest_url=rest)


def _rest(url: str, method: str = "GET") -> Any:
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def cluster_job(engine: EngineProcess) -> dict | None:
    """The cluster job with this run's name (newest first), from the REST API; None if absent."""
    if engine.rest_url is None:
        return None
    jobs = _rest(f"{engine.rest_url}/jobs/overview").get("jobs", [])
    mine = [j for j in jobs if j.get("name") == engine.target.job_name]
    if not mine:
        return None
    job = max(mine, key=lambda j: j.get("start-time", 0))
    engine.job_id = job["jid"]
    return job


def engine_ended(engine: EngineProcess) -> bool:
    """The engine stopped running.

    A detached cluster client exits 0 once the job is submitted: that is normal, so for
    `flink-cluster` the job's own state (REST) decides; the client's non-zero exit (a failed
    submission) ends it too.
    """
    code = engine.exited()
    if engine.target.engine != "flink-cluster":
        return code is not None
    if code not in (None, 0):
        return True
    # callers poll this between produced batches: ask the REST API at most once a second
    now = time.monotonic()
    if now - engine.extra.get("job_checked_at", -1e9) >= 1.0:
        engine.extra["job_checked_at"] = now
        job = cluster_job(engine)
        engine.extra["job_state"] = job.get("state") if job else None
    return engine.extra.get("job_state") in ("FAILED", "CANCELED", "FINISHED")


def ended_reason(engine: EngineProcess) -> str:
    """Why `engine_ended` is true, for the result's error field."""
    if engine.target.engine == "flink-cluster" and engine.exited() in (None, 0):
        return f"cluster job {engine.extra.get('job_state') or 'not found'}"
    return f"engine exited with code {engine.exited()}"


def taskmanagers(rest_url: str) -> list[dict]:
    """TaskManagers registered with the JobManager (id, slots, hardware)."""
    return _rest(f"{rest_url}/taskmanagers").get("taskmanagers", [])


def stop_engine(engine: EngineProcess, grace_s: float = 60.0) -> int | None:
    """Stop the engine and wait: cancel the cluster job, SIGTERM the process group.

    A bounded engine that already finished is left alone. Returns the exit code.
    """
    if engine.target.engine == "flink-cluster":
        job = cluster_job(engine)
        if job and job.get("state") in ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING"):
            _rest(f"{engine.rest_url}/jobs/{job['jid']}?mode=cancel", method="PATCH")
    if engine.proc.poll() is None:
        try:
            os.killpg(engine.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace_s
        while engine.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if engine.proc.poll() is None:
            os.killpg(engine.proc.pid, signal.SIGKILL)
            engine.proc.wait(10)
    return engine.proc.returncode


def wait_exit(engine: EngineProcess, timeout_s: float) -> int | None:
    """Wait for a bounded engine to end on its own; None if it is still running."""
    try:
        return engine.proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        return None
