"""`fraudstream stop`: end a running scoring job, by default with a savepoint to resume from.

    fraudstream stop [JOB_ID] --savepoint      # stop-with-savepoint; prints the savepoint path
    fraudstream submit --from-savepoint latest # the same (or a changed) job resumes from it

Without JOB_ID the one RUNNING job named `job_name` (default `fraudstream-scoring`) is stopped;
several or none is an error naming them. The savepoint goes to `savepoint_dir` (flag, env
FRAUDSTREAM_SAVEPOINT_DIR; local stack: `<home>/flink/savepoints`), else the cluster's
`execution.checkpointing.savepoint-dir`. The path is the only thing written to stdout.
`--no-savepoint` cancels instead (retained checkpoints stay, see `checkpoint_retention`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from jobs.cli.run import DEFAULT_JOBMANAGER, JobManagerOption


def register(app: typer.Typer) -> None:
    """Add `stop` to the fraudstream CLI."""

    @app.command("stop")
    def stop(
        job_id: Annotated[str | None, typer.Argument(help="job id (default: by --name)")] = None,
        jobmanager: JobManagerOption = DEFAULT_JOBMANAGER,
        savepoint: Annotated[
            bool, typer.Option(help="stop with a savepoint (else cancel)")
        ] = True,
        savepoint_dir: Annotated[
            str | None,
            typer.Option(help="savepoint target directory (env FRAUDSTREAM_SAVEPOINT_DIR)"),
        ] = None,
        drain: Annotated[
            bool,
            typer.Option(help="fire all timers and windows first: to end for good, not to "
                         "upgrade"),
        ] = False,
        name: Annotated[
            str | None, typer.Option(help="job name to find (env FRAUDSTREAM_JOB_NAME)")
        ] = None,
        timeout: Annotated[float, typer.Option(help="seconds to wait for the savepoint")] = 300,
    ) -> None:
        """Stop the scoring job with a savepoint and print its path."""
        from deploy.local.flink_rest import rest_call, stop_with_savepoint
        from deploy.local.procs import StackError
        from jobs.config import ConfigError, build_config

        try:
            cfg = build_config({"savepoint_dir": savepoint_dir, "job_name": name})
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from exc
        base = jobmanager if "://" in jobmanager else f"http://{jobmanager}"
        try:
            target = job_id or _running_job(base, cfg.job_name)
            if not savepoint:
                rest_call(base, f"/jobs/{target}?mode=cancel", "PATCH")
                typer.echo(f"cancelled {target}", err=True)
                return
            typer.echo(f"stopping {target} with a savepoint ...", err=True)
            path = stop_with_savepoint(base, target, cfg.savepoint_dir, drain, timeout)
        except (StackError, OSError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(path)


def _running_job(base: str, job_name: str) -> str:
    from deploy.local.flink_rest import rest_call
    from deploy.local.procs import StackError

    jobs = rest_call(base, "/jobs/overview").get("jobs", [])
    running = [j["jid"] for j in jobs if j.get("name") == job_name and j.get("state") == "RUNNING"]
    if len(running) != 1:
        raise StackError(
            f"{len(running)} RUNNING jobs named {job_name!r} on {base} ({', '.join(running)}): "
            "give the JOB_ID"
        )
    return running[0]
