"""What a Flink cluster already decides for the job: its configuration file and its lib/.

Used by `jobs.scoring_job.main()`, the entry point of `flink run -pym jobs.scoring_job`
(`fraudstream submit`) and of the image's `/opt/flink/usrlib/scoring_job.py` (the Kubernetes
operator's PythonDriver). Contracts:

- Options: a Flink option the cluster's configuration sets is left to the cluster unless the
  `JobConfig` field it comes from was given explicitly (flag or `FRAUDSTREAM_*` variable,
  `jobs.config.explicit_fields`). Job defaults and local-stack defaults never override the
  cluster: e.g. the manifest's durable `execution.checkpointing.dir`, its RocksDB backend and
  its restart strategy reach the job. Options the cluster does not set come from the job.
- Jars: the job ships the connector jars of the local cache (`connectors.jars`); when the cache
  lacks them but the cluster's lib/ holds every required jar (the image copies them there),
  the job ships none. Neither: `JarsMissingError` naming both places.

Pure Python (no pyflink): reads files and the environment mapping it is given.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jobs.config import ConfigError, JobConfig

# (JobConfig fields, Flink options derived from them): each group is left to the cluster as a
# whole when the cluster sets any of its options and none of its fields was explicit.
DECIDED_TOGETHER: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("checkpoint_interval_ms",), ("execution.checkpointing.interval",)),
    (("checkpoint_dir",), ("execution.checkpointing.dir", "execution.checkpointing.storage")),
    (("savepoint_dir",), ("execution.checkpointing.savepoint-dir",)),
    (
        ("checkpoint_retention",),
        ("execution.checkpointing.externalized-checkpoint-retention",),
    ),
    (("state_backend",), ("state.backend.type",)),
    (
        ("restart_attempts", "restart_delay_ms"),
        (
            "restart-strategy.type",
            "restart-strategy.fixed-delay.attempts",
            "restart-strategy.fixed-delay.delay",
        ),
    ),
    (("parallelism",), ("parallelism.default",)),
    (("python_executable",), ("python.executable", "python.client.executable")),
)
# Older spellings a cluster configuration may still use for the same options (Flink 2.2
# accepts them as deprecated keys).
DEPRECATED_KEYS = {
    "state.checkpoints.dir": "execution.checkpointing.dir",
    "state.checkpoint-storage": "execution.checkpointing.storage",
    "state.savepoints.dir": "execution.checkpointing.savepoint-dir",
    "state.backend": "state.backend.type",
    "restart-strategy": "restart-strategy.type",
}


def _flink_dir(variable: str, under_home: str, environ: Mapping[str, str] | None) -> Path | None:
    """`$variable`, else `$FLINK_HOME/<under_home>`, else None."""
    environ = os.environ if environ is None else environ
    if environ.get(variable):
        return Path(environ[variable])
    if environ.get("FLINK_HOME"):
        return Path(environ["FLINK_HOME"]) / under_home
    return None


def flink_conf_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The cluster's configuration directory: FLINK_CONF_DIR (set by `bin/flink`), else
    FLINK_HOME/conf (the image: /opt/flink/conf, written by the operator)."""
    return _flink_dir("FLINK_CONF_DIR", "conf", environ)


def read_cluster_config(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The cluster configuration as flat `key -> string` (config.yaml, nested or flattened; or a
    legacy flink-conf.yaml). Deprecated keys are renamed to their current names. Empty when no
    configuration directory or file is found."""
    folder = flink_conf_dir(environ)
    if folder is None:
        return {}
    if (folder / "config.yaml").is_file():
        import yaml

        raw = yaml.safe_load((folder / "config.yaml").read_text()) or {}
        flat = _flatten(raw) if isinstance(raw, dict) else {}
    elif (folder / "flink-conf.yaml").is_file():
        flat = {}
        for line in (folder / "flink-conf.yaml").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() and not key.lstrip().startswith("#"):
                flat[key.strip()] = value.strip()
    else:
        return {}
    return {DEPRECATED_KEYS.get(k, k): v for k, v in flat.items()}


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = ";".join(str(v) for v in value)
        elif isinstance(value, bool):
            out[name] = str(value).lower()
        else:
            out[name] = str(value)
    return out


def job_flink_options(
    options: Mapping[str, str], cluster: Mapping[str, str], explicit: Iterable[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Split the job's `options` (`jobs.scoring_job.flink_options(cfg)`) into (set by the job,
    left to the cluster: key -> the cluster's value) following the module contract."""
    explicit = set(explicit)
    dropped: set[str] = set()
    for group_fields, keys in DECIDED_TOGETHER:
        if explicit.intersection(group_fields):
            continue
        if any(k in cluster for k in keys):
            dropped.update(keys)
    kept = {k: v for k, v in options.items() if k not in dropped}
    left = {k: cluster[k] for k in sorted(dropped) if k in cluster}
    return kept, left


def require_checkpoints(cfg: JobConfig, options: Mapping[str, str]) -> None:
    """Exactly-once alerts commit with checkpoints: refuse a job that would never checkpoint
    (`options` = everything the job will run with, cluster settings included)."""
    interval = str(options.get("execution.checkpointing.interval", "")).strip()
    off = interval in ("", "0", "0 ms", "0ms", "0 s", "0s")
    if cfg.alerts_delivery == "exactly-once" and off:
        raise ConfigError(
            "alerts_delivery=exactly-once needs checkpoints (its Kafka transactions commit "
            "with each one): set checkpoint_interval_ms > 0 (flag --checkpoint-interval-ms, "
            "env FRAUDSTREAM_CHECKPOINT_INTERVAL_MS) or alerts_delivery=at-least-once"
        )


def flink_lib_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The cluster's lib/: FLINK_LIB_DIR, else FLINK_HOME/lib."""
    return _flink_dir("FLINK_LIB_DIR", "lib", environ)


def job_jar_urls(environ: Mapping[str, str] | None = None) -> list[str] | None:
    """`file://` URLs of the jars the job ships, or None when the cluster's lib/ has them all.

    Raises `connectors.jars.JarsMissingError` when neither the local cache nor lib/ has them.
    """
    from connectors.jars import REQUIRED_FLINK_JARS, JarsMissingError, flink_jar_urls

    try:
        return flink_jar_urls()
    except JarsMissingError as exc:
        lib = flink_lib_dir(environ)
        names = [p.name for p in lib.glob("*.jar")] if lib and lib.is_dir() else []
        if all(any(n.startswith(req) for n in names) for req in REQUIRED_FLINK_JARS):
            return None
        raise JarsMissingError(f"{exc}; nor are they in the cluster's lib/ ({lib})") from exc
