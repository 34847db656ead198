"""How the benchmark starts and stops each engine, as a subprocess it can account for.

Engines:
- `python`: the plain-Python peer (`python -m bench.peer_pipeline`), one process.
- `python-x2`: the same peer as two processes, each reading half of the source topic's
  partitions (`--partitions`, split by `split_partitions` from the topic's real partition
  count). The bench topics are keyed by card, so each card's state stays in one process. Both
  processes are tracked as the engine: its CPU and RSS are their sum.
- `flink-mini`: `fraudstream run` (scoring job on an embedded MiniCluster, one JVM).
- `flink-cluster`: `fraudstream submit` to the standalone cluster (`fraudstream up
  --flink-cluster`); the client returns after submission, the job runs in the TaskManagers.
  The job is found by its unique name through the JobManager REST API and cancelled there.

Every engine reads `EngineTarget` (topics, Postgres schema, model) and job settings given as
JobConfig `name=value` pairs (`--job-set` on the bench command, e.g. `execution_mode=process`),
so tuning trials need no code change.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.namespace import with_current_schema
from deploy.local.flink_rest import rest_call
from deploy.local.procs import stop_process_groups, tail_lines

ENGINES = ("flink-mini", "flink-cluster", "flink-cluster-live", "python", "python-x2")
# The engines that run as a job on the standalone cluster: flink-cluster-live is flink-cluster
# with live control in force (10 analyst rules and a shadow model, bench.live_control).
CLUSTER_ENGINES = ("flink-cluster", "flink-cluster-live")
PEER_WORKERS = {"python": 1, "python-x2": 2}  # the peer engines: processes each
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
    control_topic: str | None = None  # the run's own control topic (Flink only)


@dataclass
class EngineProcess:
    """A started engine: its subprocess(es), its log, and (cluster) the Flink job id.

    `proc` is the first process; an engine of several processes (`python-x2`) has the others
    in `other_procs`. Each process leads its own process group.
    """

    target: EngineTarget
    proc: subprocess.Popen
    log_path: Path
    rest_url: str | None = None
    job_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    other_procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def procs(self) -> list[subprocess.Popen]:
        return [self.proc, *self.other_procs]

    @property
    def pids(self) -> list[int]:
        """Root pids to account as the engine (their descendants follow)."""
        return [p.pid for p in self.procs]

    def exited(self) -> int | None:
        """Exit code once the engine is over: the first failure as soon as any process fails,
        0 once every process ended with 0, None while one still runs (and none failed)."""
        codes = [p.poll() for p in self.procs]
        failed = [c for c in codes if c not in (None, 0)]
        if failed:
            return failed[0]
        return None if None in codes else 0

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(tail_lines(self.log_path, lines) or [])


def split_partitions(partitions: Sequence[int], workers: int) -> list[list[int]]:
    """Deal a topic's partitions round-robin to `workers` processes: 4 and 2 -> [0,2], [1,3].

    Refuses fewer partitions than workers (a process would have nothing to read).
    """
    parts = sorted(set(partitions))
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if len(parts) < workers:
        raise ValueError(f"{workers} peer processes need a topic with at least {workers} "
                         f"partitions; it has {len(parts)}")
    return [parts[i::workers] for i in range(workers)]


def peer_command(target: EngineTarget, partitions: Sequence[int] | None = None) -> list[str]:
    """argv of one peer process (all partitions, or only `partitions`)."""
    cmd = [sys.executable, "-m", "bench.peer_pipeline", "--topic", target.source_topic,
           "--alerts-topic", target.alerts_topic, "--dlq-topic", target.dlq_topic,
           "--pg-schema", target.pg_schema, "--group-id", target.group_id,
           "--max-batch", str(target.peer_max_batch)]
    if partitions is not None:
        cmd += ["--partitions", ",".join(str(p) for p in partitions)]
    if target.model_path:
        cmd += ["--model-path", target.model_path]
    if target.bounded:
        cmd.append("--bounded")
    return cmd


def engine_commands(target: EngineTarget, settings: Any,
                    topic_partitions: Sequence[int] | None = None) -> list[list[str]]:
    """argv of every process the engine starts: one, or one per worker of a multi-process peer
    (`topic_partitions`, the source topic's partitions, are then required)."""
    workers = PEER_WORKERS.get(target.engine, 1)
    if workers == 1:
        return [engine_command(target, settings)]
    if topic_partitions is None:
        raise ValueError(f"{target.engine} needs the source topic's partitions to split")
    return [peer_command(target, share) for share in split_partitions(topic_partitions, workers)]


def source_partitions(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[int]:
    """The partitions the topic really has (Kafka metadata via AdminClient)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from connectors.kafka_logs import client_config

    try:
        admin = AdminClient(client_config({"bootstrap.servers": bootstrap}))
        meta = admin.list_topics(topic, timeout=timeout_s)
    except KafkaException as exc:
        raise RuntimeError(f"cannot read the partitions of {topic}: {exc}") from exc
    info = meta.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        why = info.error if info is not None and info.error is not None else "no partitions"
        raise RuntimeError(f"cannot read the partitions of {topic}: {why}")
    return sorted(info.partitions)


def engine_command(target: EngineTarget, settings: Any) -> list[str]:
    """argv that starts a one-process engine for `target` (see `engine_commands`)."""
    py = sys.executable
    if target.engine == "python":
        return peer_command(target)
    if target.engine in PEER_WORKERS:
        raise ValueError(f"{target.engine} runs several processes: use engine_commands")
    if target.engine not in ("flink-mini", *CLUSTER_ENGINES):
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
    if target.control_topic:
        sets["control_topic"] = target.control_topic
    extra = dict(target.job_settings)
    if "jdbc_url" in extra:
        # a trial may change the JDBC URL (e.g. driver properties) but never the run's schema:
        # replacing the URL wrote a trial's rows into the public tables
        extra["jdbc_url"] = with_current_schema(extra["jdbc_url"], target.pg_schema)
    sets.update(extra)
    sub = "run" if target.engine == "flink-mini" else "submit"
    cmd = [py, "-m", "jobs.cli", sub, "--source-topic", target.source_topic,
           "--bounded" if target.bounded else "--no-bounded"]
    if target.engine in CLUSTER_ENGINES:
        cmd += ["--jobmanager", f"127.0.0.1:{settings.flink_rest_port}", "--detached"]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd


def start_engine(target: EngineTarget, settings: Any, log_dir: Path) -> EngineProcess:
    """Start the engine's process(es), each in its own process group, all writing to
    `<log_dir>/<engine>-<mode>.log` (each argv is written before its output)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{target.engine}-{'bounded' if target.bounded else 'stream'}.log"
    parts = None
    if PEER_WORKERS.get(target.engine, 1) > 1:
        parts = source_partitions(settings.kafka_bootstrap, target.source_topic)
    cmds = engine_commands(target, settings, parts)
    env = dict(os.environ)
    log = log_path.open("wb")
    procs: list[subprocess.Popen] = []
    try:
        for cmd in cmds:
            log.write((" ".join(cmd) + "\n").encode())
            log.flush()
            procs.append(subprocess.Popen(cmd, cwd=_REPO, env=env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
    except BaseException:
        # a later process failed to start: do not leave the first running
        stop_process_groups(procs, ((signal.SIGKILL, 10.0),))
        raise
    rest = settings.flink_rest_url if target.engine in CLUSTER_ENGINES else None
    return EngineProcess(target=target, proc=procs[0], log_path=log_path, rest_url=rest,
                         other_procs=procs[1:])


def cluster_job(engine: EngineProcess) -> dict | None:
    """The cluster job with this run's name (newest first), from the REST API; None if absent."""
    if engine.rest_url is None:
        return None
    jobs = rest_call(engine.rest_url, "/jobs/overview").get("jobs", [])
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
    if engine.target.engine not in CLUSTER_ENGINES:
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
    if engine.target.engine in CLUSTER_ENGINES and engine.exited() in (None, 0):
        return f"cluster job {engine.extra.get('job_state') or 'not found'}"
    return f"engine exited with code {engine.exited()}"


def taskmanagers(rest_url: str) -> list[dict]:
    """TaskManagers registered with the JobManager (id, slots, hardware)."""
    return rest_call(rest_url, "/taskmanagers").get("taskmanagers", [])


def stop_engine(engine: EngineProcess, grace_s: float = 60.0) -> int | None:
    """Stop the engine and wait: cancel the cluster job, SIGTERM each process group.

    A bounded engine that already finished is left alone. Returns the exit code
    (`EngineProcess.exited`).
    """
    if engine.target.engine in CLUSTER_ENGINES:
        job = cluster_job(engine)
        if job and job.get("state") in ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING"):
            rest_call(engine.rest_url, f"/jobs/{job['jid']}?mode=cancel", "PATCH")
    stop_process_groups(engine.procs, ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)))
    return engine.exited()
