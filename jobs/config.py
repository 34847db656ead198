"""The scoring job's configuration: one frozen, typed object built at the entry point.

`JobConfig` is built once by `fraudstream run|submit` (or `jobs.scoring_job.main`) from
command-line flags, then environment variables (`FRAUDSTREAM_<FIELD>` in upper case, see
`ENV_VARS`), then the stack settings (`connectors.settings.load_settings()`: Kafka bootstrap,
JDBC URL, writer role and the card-token key), then defaults. Nothing below the entry point
reads the environment, except for secrets.

Secrets (`pg_password`, `card_token_key`) are `Secret` values: `repr`/`str` print `*****`.
They show the client whether it sees them, nothing more: the job never carries them (not in
its SQL, not in its pickled functions). Its functions read them at `open()` from the
environment of the Flink process that runs them (`FRAUDSTREAM_PG_WRITER_PASSWORD`,
`FRAUDSTREAM_CARD_TOKEN_KEY`; see connectors.settings.JOB_SECRET_VARS). They are never flags.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from connectors.kafka import KafkaControlSpec, KafkaSinkSpec, KafkaSourceSpec
from connectors.postgres_sinks import PostgresSinkSpec
from connectors.settings import (
    CARD_TOKEN_KEY_ENV,
    DEFAULT_TOPICS,
    WRITER_PASSWORD_ENV,
    Secret,
    StackSettings,
    load_settings,
)

ExecutionMode = Literal["thread", "process"]
StateBackend = Literal["hashmap", "rocksdb"]
Delivery = Literal["at-least-once", "exactly-once"]
StartFrom = Literal["earliest", "latest", "committed"]
CheckpointRetention = Literal[
    "RETAIN_ON_CANCELLATION", "DELETE_ON_CANCELLATION", "NO_EXTERNALIZED_CHECKPOINTS"
]


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the flag and env var."""


@dataclass(frozen=True, slots=True)
class JobConfig:
    """Everything the scoring job needs; see each field's comment for its meaning."""

    # --- Kafka
    kafka_bootstrap: str = "127.0.0.1:29092"
    source_topic: str = DEFAULT_TOPICS.transactions
    dlq_topic: str = DEFAULT_TOPICS.dlq
    alerts_topic: str = DEFAULT_TOPICS.alerts
    control_topic: str = DEFAULT_TOPICS.control  # model promotions and rules (compacted)
    group_id: str = "fraudstream-scoring"
    start_from: StartFrom = "earliest"  # where to start when no checkpoint is restored
    bounded: bool = False  # stop at the offsets that are latest when the job starts
    # At-least-once by default: alerts reach consumers in ~0.1 s, keyed by transaction id
    # (consumers dedupe). Decision, measured (docs/operations.md): exactly-once (Kafka
    # transactions committed with each checkpoint) raised alert latency even for
    # read_uncommitted readers from p50 129 ms / p99 948 ms to p50 1.3-1.5 s / p99 3.6-4.1 s
    # at 2,500 events/s and did not sustain 5,000/s; `read_committed` readers also wait up to
    # one checkpoint. Switch: alerts_delivery=exactly-once (needs checkpoints).
    alerts_delivery: Delivery = "at-least-once"
    transactional_id_prefix: str = "fraudstream-alerts"
    # --- Postgres (JDBC)
    jdbc_url: str = StackSettings().jdbc_url()
    pg_user: str = "fraudstream_writer"
    pg_password: Secret = Secret("")
    jdbc_flush_interval_ms: int = 1000
    jdbc_flush_max_rows: int = 5000  # COPY: bigger flushes are cheaper per row (measured)
    write_scored: bool = True  # every scored transaction to scored_transactions
    # --- scoring
    model_path: str | None = None  # None: the default model in models/registry
    card_token_key: Secret = Secret("")  # HMAC key for raw card numbers seen at ingest
    # --- time
    out_of_orderness_ms: int = 5_000
    idleness_ms: int = 30_000
    aggregate_window_ms: int = 60_000
    # A record whose event_time is more than this ahead of its partition's progress (the
    # largest time seen there; the wall clock before the first) is dead-lettered ("event_time
    # in the future") and never advances a watermark. See connectors.kafka.event_time_expr.
    max_event_time_ahead_ms: int = 86_400_000
    # --- runtime
    parallelism: int = 2
    execution_mode: ExecutionMode = "thread"
    python_executable: str = sys.executable
    # PYTHONPATH of the Python workers (`python.pythonpath`); None: this checkout + this venv's
    # site-packages (right for the MiniCluster and a cluster on the same machine). Thread
    # mode's embedded interpreter does not process .pth files, so editable installs need it.
    worker_pythonpath: str | None = None
    # Process mode only: thread mode calls Python per record and has no bundles (PyFlink 2.2's
    # embedded operators implement invokeFinishBundle as a no-op), so these change nothing there.
    bundle_size: int = 1000
    bundle_time_ms: int = 1000
    # Flush network buffers between tasks after at most this long. Flink's 100 ms default
    # put up to 100 ms on every event at the keyed exchange (parser -> scorer) at low rates.
    buffer_timeout_ms: int = 10
    # Python is called once per micro-batch of records, not once per record: a batch is cut at
    # this many records or when its first record has waited this long (and always before a
    # watermark, a checkpoint barrier and the end of input).
    batch_max_records: int = 1000
    batch_max_delay_ms: int = 10
    # Kafka source fetches: the broker answers a fetch once it holds `source_fetch_min_bytes`
    # for the consumer or after `source_fetch_max_wait_ms`. Decision, measured 2026-12-02
    # (cluster, 2,500 events/s, bench/README): Kafka's defaults (1 byte, 500 ms) answer at once
    # with the few records that arrived, and the request churn cost broker CPU (51-54 s vs 47 s
    # per run) and alert latency (p99 1.6-2.1 s vs 0.6-0.7 s). A quiet partition now waits up
    # to 10 ms for its next fetch; a backlog is fetched at full size as before.
    source_fetch_min_bytes: int = 65_536
    source_fetch_max_wait_ms: int = 10
    # Per-card state lives in MapState keyed by shard = crc32(card token) % scoring_shards; the
    # scorer's parallelism can grow up to this number. FIXED for the life of a savepoint:
    # restoring with another value puts cards in other shards (their history is not found).
    scoring_shards: int = 16
    checkpoint_interval_ms: int = 10_000  # 0 disables checkpointing
    # file:// or other Flink FS URI. None: the cluster's `execution.checkpointing.dir`; with
    # none configured Flink keeps checkpoints in the JobManager heap, which FAILS the job once
    # one operator's state passes 5 MB (measured: the aggregate windows of a 200k backlog).
    # The local stack therefore always supplies `<home>/flink/checkpoints` (`_stack_defaults`).
    checkpoint_dir: str | None = None
    # Where `fraudstream stop --savepoint` writes and `submit --from-savepoint latest` looks.
    # None: the cluster's `execution.checkpointing.savepoint-dir` (the local stack supplies
    # `<home>/flink/savepoints`).
    savepoint_dir: str | None = None
    # Keep the last completed checkpoint when the job is cancelled or fails for good (and,
    # always, when its JobManager dies), so `submit --from-checkpoint latest` can resume it.
    checkpoint_retention: CheckpointRetention = "RETAIN_ON_CANCELLATION"
    state_backend: StateBackend = "hashmap"
    restart_attempts: int = 3
    restart_delay_ms: int = 5_000
    dlq_max_payload_bytes: int = 16 * 1024
    job_metrics: bool = True  # the job's own metrics (jobs/job_metrics.py); off: measure them
    job_name: str = "fraudstream-scoring"

    def __post_init__(self) -> None:
        # Process mode is refused since 2026-12-02: the scorer switches keys inside one call
        # (jobs.functions.current_key_setter), which PyFlink allows in thread mode only.
        _check_choice("execution_mode", self.execution_mode, ("thread",))
        _check_choice("state_backend", self.state_backend, ("hashmap", "rocksdb"))
        _check_choice("alerts_delivery", self.alerts_delivery, ("at-least-once", "exactly-once"))
        _check_choice("start_from", self.start_from, ("earliest", "latest", "committed"))
        _check_choice(
            "checkpoint_retention",
            self.checkpoint_retention,
            ("RETAIN_ON_CANCELLATION", "DELETE_ON_CANCELLATION", "NO_EXTERNALIZED_CHECKPOINTS"),
        )
        for name in ("parallelism", "bundle_size", "bundle_time_ms", "aggregate_window_ms",
                     "dlq_max_payload_bytes", "jdbc_flush_max_rows", "batch_max_records",
                     "scoring_shards", "max_event_time_ahead_ms", "source_fetch_min_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1 ({_where(name)})")
        if self.scoring_shards > 128:  # jobs.functions.SCORER_MAX_PARALLELISM
            raise ConfigError(f"scoring_shards must be <= 128 ({_where('scoring_shards')})")
        for name in ("out_of_orderness_ms", "idleness_ms", "checkpoint_interval_ms",
                     "buffer_timeout_ms", "batch_max_delay_ms", "source_fetch_max_wait_ms",
                     "restart_attempts", "restart_delay_ms", "jdbc_flush_interval_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 ({_where(name)})")

    def with_overrides(self, **changes: Any) -> JobConfig:
        """A copy with some fields changed (values coerced like flags)."""
        return replace(self, **{k: _coerce(k, v) for k, v in changes.items()})

    def kafka_source_spec(self) -> KafkaSourceSpec:
        """What the source table needs of this config."""
        return KafkaSourceSpec(
            topic=self.source_topic, bootstrap=self.kafka_bootstrap, group_id=self.group_id,
            start_from=self.start_from, bounded=self.bounded,
            fetch_min_bytes=self.source_fetch_min_bytes,
            fetch_max_wait_ms=self.source_fetch_max_wait_ms,
            max_event_time_ahead_ms=self.max_event_time_ahead_ms,
            out_of_orderness_ms=self.out_of_orderness_ms,
        )

    def kafka_control_spec(self) -> KafkaControlSpec:
        """What the control source needs of this config (bounded with the job)."""
        return KafkaControlSpec(
            topic=self.control_topic, bootstrap=self.kafka_bootstrap,
            group_id=f"{self.group_id}-control", bounded=self.bounded,
        )

    def kafka_sink_spec(self) -> KafkaSinkSpec:
        """What the alerts and DLQ topic sinks need of this config."""
        exactly_once = self.alerts_delivery == "exactly-once"
        return KafkaSinkSpec(
            bootstrap=self.kafka_bootstrap, alerts_topic=self.alerts_topic,
            dlq_topic=self.dlq_topic,
            transactional_id_prefix=self.transactional_id_prefix if exactly_once else None,
        )

    def postgres_sink_spec(self) -> PostgresSinkSpec:
        """What the Postgres sinks need of this config (no password: see PASSWORD_ENV)."""
        return PostgresSinkSpec(
            jdbc_url=self.jdbc_url, user=self.pg_user,
            flush_interval_ms=self.jdbc_flush_interval_ms,
            flush_max_rows=self.jdbc_flush_max_rows, write_scored=self.write_scored,
        )

    def describe(self) -> str:
        """One line per field, secrets masked: safe to print or log."""
        return "\n".join(f"{f.name} = {getattr(self, f.name)!s}" for f in fields(self))


# Secrets come from the environment (or the stack's secrets file) only: `build_config` refuses
# them as flags, which end up on command lines (`ps`) and in logs.
SECRET_FIELDS = frozenset({"pg_password", "card_token_key"})
_SECRETS = SECRET_FIELDS
ENV_VARS: dict[str, str] = {f.name: f"FRAUDSTREAM_{f.name.upper()}" for f in fields(JobConfig)}
# The stack's own variable names for the shared secrets (connectors/settings.py).
ENV_VARS["pg_password"] = WRITER_PASSWORD_ENV
ENV_VARS["card_token_key"] = CARD_TOKEN_KEY_ENV


def env_var(name: str) -> str:
    """The environment variable that sets field `name`."""
    return ENV_VARS[name]


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _where(name: str) -> str:
    return f"flag --{_flag(name)}, env {env_var(name)}"


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            f"{name}={value!r} is not one of {', '.join(choices)} "
            f"(flag --{_flag(name)}, env {env_var(name)})"
        )


_TYPES: dict[str, type] = {
    f.name: (int if f.default.__class__ is int else bool if f.default.__class__ is bool else str)
    for f in fields(JobConfig)
    if f.name not in _SECRETS
}


def _coerce(name: str, value: Any) -> Any:
    if name not in ENV_VARS:
        raise ConfigError(f"unknown setting {name!r}")
    if name in _SECRETS:
        return value if isinstance(value, Secret) else Secret(str(value))
    if value is None:
        return None
    kind = _TYPES[name]
    if kind is bool and isinstance(value, bool):  # typer flags arrive as real booleans
        return value
    if kind is bool and isinstance(value, str):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={value!r} is not a boolean (env {env_var(name)})")
    if kind is int:
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name}={value!r} is not an integer (env {env_var(name)})") from exc
    return str(value)


def _stack_defaults() -> dict[str, Any]:
    """Defaults from the local stack settings (ports, role, secrets file)."""
    s = load_settings()
    out: dict[str, Any] = {"kafka_bootstrap": s.kafka_bootstrap, "jdbc_url": s.jdbc_url()}
    out["pg_user"] = s.writer_user
    out["pg_password"] = s.writer_password
    out["card_token_key"] = s.card_token_key
    out["source_topic"], out["dlq_topic"], out["alerts_topic"] = s.topics
    out["control_topic"] = s.topic_control
    out["checkpoint_dir"] = (s.home / "flink" / "checkpoints").as_uri()
    out["savepoint_dir"] = (s.home / "flink" / "savepoints").as_uri()
    return out


def build_config(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    stack: Mapping[str, Any] | None = None,
) -> JobConfig:
    """Build the config: flags (non-None) > environment > stack settings > defaults. Secret
    fields (`SECRET_FIELDS`) are refused as flags.

    `environ` defaults to `os.environ`; `stack` to the local stack settings. Raises
    `ConfigError` naming the flag and the env var of any invalid value.
    """
    environ = os.environ if environ is None else environ
    given = sorted(k for k in SECRET_FIELDS if flags and flags.get(k) is not None)
    if given:
        raise ConfigError(
            f"{', '.join(given)}: secrets are read from the environment "
            f"({', '.join(env_var(k) for k in given)}) or the stack's secrets.env, never from "
            "flags"
        )
    stack = _stack_defaults() if stack is None else stack
    values: dict[str, Any] = {}
    for name, var in ENV_VARS.items():
        if flags and flags.get(name) is not None:
            values[name] = _coerce(name, flags[name])
        elif var in environ and environ[var] != "":
            values[name] = _coerce(name, environ[var])
        elif name in stack and stack[name] not in (None, ""):
            values[name] = _coerce(name, stack[name])
    if flags:
        unknown = set(flags) - set(ENV_VARS)
        if unknown:
            raise ConfigError(f"unknown settings: {sorted(unknown)}")
    return JobConfig(**values)


def explicit_fields(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> frozenset[str]:
    """The fields given explicitly, by a flag or a `FRAUDSTREAM_*` variable (not defaults, not
    stack settings). On a cluster, only these override the cluster's own configuration
    (`jobs.cluster_env.job_flink_options`)."""
    environ = os.environ if environ is None else environ
    named = {k for k, v in (flags or {}).items() if v is not None}
    named |= {name for name, var in ENV_VARS.items() if environ.get(var, "") != ""}
    return frozenset(named & set(ENV_VARS))
