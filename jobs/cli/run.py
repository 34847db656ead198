"""`fraudstream run` (embedded MiniCluster) and `fraudstream submit` (to a Flink cluster).

Both build the same `JobConfig` (flags > env > stack settings > defaults). Common settings have
their own flag (the help names the env var); any other `JobConfig` field is set with
`--set name=value` (env `FRAUDSTREAM_<NAME>`). `--show-config` prints the config (secrets
masked) and exits.

Secrets are never flags and never on the `flink run` command line: the job reads
them from the environment of the processes that run it. `run` copies them from
`<home>/secrets.env` into its own environment, which the embedded MiniCluster inherits;
`submit` relies on the cluster's daemons having them (`fraudstream up --flink-cluster` starts
them so; a Kubernetes Secret on the pods).

`submit --from-savepoint PATH|latest` / `--from-checkpoint PATH|latest` resume a stopped or
lost job from its state (`jobs.restore_paths`); `fraudstream stop` is in `jobs.cli.lifecycle`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from connectors.settings import JOB_SECRET_VARS
from jobs.config import ENV_VARS, SECRET_FIELDS, ConfigError, build_config

_REPO = Path(__file__).resolve().parents[2]

JobManagerOption = Annotated[
    str, typer.Option(help="JobManager REST address host:port (env FRAUDSTREAM_FLINK_REST)")
]


# The default of --jobmanager (`submit`, `stop`): FRAUDSTREAM_FLINK_REST, else the local
# stack's REST port (FRAUDSTREAM_FLINK_REST_PORT), read when the CLI is imported.
DEFAULT_JOBMANAGER = os.environ.get(
    "FRAUDSTREAM_FLINK_REST",
    f"127.0.0.1:{os.environ.get('FRAUDSTREAM_FLINK_REST_PORT') or 28081}",
)


def _opt(name: str, help_text: str) -> Any:
    return typer.Option(help=f"{help_text} (env {ENV_VARS[name]})", show_default=False)


def _flags(**kwargs: Any) -> dict[str, Any]:
    sets = kwargs.pop("set_", None) or []
    flags = {k: v for k, v in kwargs.items() if v is not None}
    for item in sets:
        if "=" not in item:
            raise typer.BadParameter(f"--set expects name=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key in SECRET_FIELDS:
            # A command line is visible to every local user (ps, /proc) and lands in logs.
            raise typer.BadParameter(
                f"{key} is a secret: export {ENV_VARS[key]} (or put it in "
                "<FRAUDSTREAM_HOME>/secrets.env), never pass it on a command line"
            )
        flags[key] = value
    return flags


def export_job_secrets() -> list[str]:
    """Put the job's secrets from `<home>/secrets.env` into `os.environ` (a variable already
    set wins) so the embedded MiniCluster's JVM, which inherits this process's environment
    when PyFlink starts it, hands them to the job's functions at open. Returns the names
    added (never values). Call before anything starts PyFlink's gateway."""
    from connectors.settings import job_secret_env, load_settings

    secrets = job_secret_env(load_settings())
    added = [name for name in secrets if not os.environ.get(name)]
    for name in added:
        os.environ[name] = secrets[name]
    return added


def _config(flags: dict[str, Any]):
    try:
        return build_config(flags)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc


def run_cmd(
    bounded: Annotated[bool | None, _opt("bounded", "stop at the latest offsets")] = None,
    parallelism: Annotated[int | None, _opt("parallelism", "operator parallelism")] = None,
    source_topic: Annotated[str | None, _opt("source_topic", "input topic")] = None,
    execution_mode: Annotated[
        str | None, _opt("execution_mode", "python execution mode: thread|process")
    ] = None,
    model_path: Annotated[str | None, _opt("model_path", "ONNX model file")] = None,
    checkpoint_interval_ms: Annotated[
        int | None, _opt("checkpoint_interval_ms", "checkpoint interval, 0 = off")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="any JobConfig field: name=value")
    ] = None,
    show_config: Annotated[bool, typer.Option(help="print the config and exit")] = False,
) -> None:
    """Run the scoring job on an embedded Flink MiniCluster (blocks until it ends)."""
    cfg = _config(_flags(**{k: v for k, v in locals().items() if k != "show_config"}))
    typer.echo(cfg.describe())
    if show_config:
        return
    export_job_secrets()
    missing = [name for name in JOB_SECRET_VARS if not os.environ.get(name)]
    if missing:
        raise typer.BadParameter(
            f"{', '.join(missing)} not set and not in <FRAUDSTREAM_HOME>/secrets.env: the "
            "job reads them from its environment (`fraudstream up` generates local ones)"
        )
    from connectors.jars import flink_jar_urls
    from jobs.cluster_env import require_checkpoints
    from jobs.scoring_job import flink_options

    try:
        require_checkpoints(cfg, flink_options(cfg))
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    from jobs.scoring_job import run_job

    result = run_job(cfg, flink_jar_urls(), wait=True)
    typer.echo(f"job finished: {result}")

def submit_cmd(
    jobmanager: JobManagerOption = DEFAULT_JOBMANAGER,
    detached: Annotated[bool, typer.Option(help="return after submission")] = True,
    bounded: Annotated[bool | None, _opt("bounded", "stop at the latest offsets")] = None,
    parallelism: Annotated[int | None, _opt("parallelism", "operator parallelism")] = None,
    source_topic: Annotated[str | None, _opt("source_topic", "input topic")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="any JobConfig field: name=value")
    ] = None,
    from_savepoint: Annotated[
        str | None,
        typer.Option(
            help="resume from this savepoint, or 'latest' (newest in savepoint_dir)"
        ),
    ] = None,
    from_checkpoint: Annotated[
        str | None,
        typer.Option(
            help="resume from this retained checkpoint, or 'latest' (newest chk-N with "
            "_metadata in checkpoint_dir; e.g. after the JobManager died)"
        ),
    ] = None,
    claim_mode: Annotated[
        str,
        typer.Option(help="no_claim: the restored files stay the old job's; claim: the new "
                     "job owns (and later deletes) them"),
    ] = "no_claim",
    allow_non_restored_state: Annotated[
        bool, typer.Option(help="skip state of operators the job no longer has")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="print the flink command only")] = False,
) -> None:
    """Submit the scoring job to a Flink cluster with `bin/flink run -pym jobs.scoring_job`."""
    from jobs.restore_paths import RestorePathError, resolve

    flags = _flags(
        bounded=bounded, parallelism=parallelism, source_topic=source_topic, set_=set_
    )
    cfg = _config(flags)
    if from_savepoint and from_checkpoint:
        raise typer.BadParameter("give --from-savepoint or --from-checkpoint, not both")
    if claim_mode not in ("claim", "no_claim"):
        raise typer.BadParameter(f"--claim-mode must be claim or no_claim, not {claim_mode}")
    if (from_savepoint or from_checkpoint) and cfg.bounded:
        # flink-sql-connector-kafka 5.0.0-2.2: a restored bounded KafkaSource reads to its
        # stopping offsets, then waits forever (FLINK-31006, FLINK-33466).
        raise typer.BadParameter(
            "a bounded job cannot be resumed: the Kafka source restored from a savepoint or "
            "checkpoint never finishes (FLINK-31006); resume it unbounded"
        )
    restore = None
    try:
        if from_savepoint:
            restore = resolve(from_savepoint, "savepoint", cfg.savepoint_dir)
        elif from_checkpoint:
            restore = resolve(from_checkpoint, "checkpoint", cfg.checkpoint_dir)
    except RestorePathError as exc:
        raise typer.BadParameter(str(exc)) from exc
    cmd = submit_command(
        jobmanager, flags, detached, restore, claim_mode, allow_non_restored_state
    )
    if restore:
        typer.echo(f"restoring from {restore}")
    typer.echo(cfg.describe())
    typer.echo(" ".join(shlex.quote(c) for c in cmd))
    if dry_run:
        return
    proc = subprocess.run(cmd, cwd=_REPO, env=client_env(jobmanager), check=False)
    raise typer.Exit(proc.returncode)


def register(app: typer.Typer) -> None:
    """Add `run` and `submit` to the fraudstream CLI."""
    app.command("run")(run_cmd)
    app.command("submit")(submit_cmd)


def client_env(jobmanager: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of `bin/flink run`: this one, plus FLINK_CONF_DIR = the local stack's
    cluster configuration when the job goes to that cluster and none is set.

    Decision: the job leaves options the cluster configuration sets to the cluster
    (`jobs.cluster_env`), and `bin/flink` reads the configuration of FLINK_CONF_DIR, else
    PyFlink's own template (parallelism.default 1): without this, every job submitted to the
    local 2-TaskManager cluster ran at parallelism 1.
    """
    from connectors.settings import load_settings

    env = dict(os.environ if environ is None else environ)
    if env.get("FLINK_CONF_DIR"):
        return env
    settings = load_settings(env)
    conf = settings.home / "flink" / "conf"
    local = {f"{host}:{settings.flink_rest_port}" for host in ("127.0.0.1", "localhost")}
    if jobmanager in local and (conf / "config.yaml").is_file():
        env["FLINK_CONF_DIR"] = str(conf)
    return env


def flink_home() -> Path:
    """The pip-installed PyFlink directory: a complete FLINK_HOME (bin/flink, lib/)."""
    import pyflink

    return Path(pyflink.__file__).resolve().parent


def submit_command(
    jobmanager: str,
    flags: dict[str, Any],
    detached: bool = True,
    restore: str | None = None,
    claim_mode: str = "no_claim",
    allow_non_restored_state: bool = False,
) -> list[str]:
    """The `flink run` command line submitting jobs.scoring_job with `flags`, restoring from
    the savepoint or checkpoint path `restore` (`-s`, `--claimMode`) when given.

    Job settings travel as the job's own `--name value` arguments: the client builds the
    JobConfig (environment, secrets file) and sets `pipeline.jars` and `python.pythonpath`
    itself (`worker_pythonpath`, default: this checkout + venv, i.e. a cluster on this
    machine; a remote cluster's image has the package installed and sets it explicitly).
    """
    py = sys.executable
    cmd = [str(flink_home() / "bin" / "flink"), "run", "-m", jobmanager]
    if detached:
        cmd.append("-d")
    if restore:
        cmd += ["-s", restore, "--claimMode", claim_mode]
    if allow_non_restored_state:
        cmd.append("--allowNonRestoredState")
    cmd += ["-pyexec", py, "-pyclientexec", py, "-pym", "jobs.scoring_job"]
    for key, value in flags.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    return cmd
