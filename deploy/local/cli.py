"""`fraudstream up | down | status`: the local stack commands (registered into jobs.cli.app)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

HOME_HELP = "State/data/log dir of the stack (env FRAUDSTREAM_HOME, default <repo>/.fraudstream)"
HomeOption = Annotated[Path | None, typer.Option(help=HOME_HELP)]


def _overrides(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `up`, `down` and `status` to the fraudstream CLI."""

    @app.command()
    def up(
        flink_cluster: bool = typer.Option(
            False, "--flink-cluster", help="Also start the Flink standalone cluster (JM + 2 TMs)."
        ),
        monitoring: bool = typer.Option(
            False,
            "--monitoring",
            help="Also start Prometheus (Debian package, installed when missing) scraping the "
            "Flink cluster, with the alerting rules of deploy/monitoring "
            "(env FRAUDSTREAM_PROMETHEUS_PORT, default 29090).",
        ),
        partitions: int = typer.Option(
            None,
            "--partitions",
            min=1,
            help="Partitions per topic (env FRAUDSTREAM_KAFKA_PARTITIONS, default 4)",
        ),
        kafka_port: int = typer.Option(
            None, help="Kafka broker port (env FRAUDSTREAM_KAFKA_PORT, default 29092)"
        ),
        kafka_controller_port: int = typer.Option(
            None,
            help="KRaft controller port (env FRAUDSTREAM_KAFKA_CONTROLLER_PORT, default 29093)",
        ),
        pg_port: int = typer.Option(
            None, help="Postgres port (env FRAUDSTREAM_PG_PORT, default 25432)"
        ),
        flink_rest_port: int = typer.Option(
            None, help="Flink JobManager REST port (env FRAUDSTREAM_FLINK_REST_PORT, default 28081)"
        ),
        flink_rpc_port: int = typer.Option(
            None, help="Flink JobManager RPC port (env FRAUDSTREAM_FLINK_RPC_PORT, default 26123)"
        ),
        home: HomeOption = None,
    ) -> None:
        """Start the local stack (Kafka, Postgres, optionally Flink); idempotent."""
        from connectors.settings import SettingsError
        from deploy.local.migrate import MigrationError
        from deploy.local.procs import StackError
        from deploy.local.stack import ensure_up

        started = time.monotonic()
        try:
            settings = ensure_up(
                flink_cluster=flink_cluster,
                overrides=_overrides(
                    home=home,
                    kafka_partitions=partitions,
                    kafka_port=kafka_port,
                    kafka_controller_port=kafka_controller_port,
                    pg_port=pg_port,
                    flink_rest_port=flink_rest_port,
                    flink_rpc_port=flink_rpc_port,
                ),
                report=typer.echo,
                monitoring=monitoring,
            )
        except (StackError, MigrationError, SettingsError) as exc:
            _fail(exc)
        typer.echo(
            f"stack up in {time.monotonic() - started:.1f}s: kafka {settings.kafka_bootstrap}, "
            f"postgres {settings.pg_host}:{settings.pg_port}/{settings.pg_database}"
            + (f", flink {settings.flink_rest_url}" if flink_cluster else "")
            + (f", prometheus {settings.prometheus_url}" if monitoring else "")
            + f"; secrets in {settings.secrets_file}"
        )

    @app.command()
    def down(
        home: HomeOption = None,
        purge: bool = typer.Option(
            False,
            "--purge",
            help="Also delete this home's Postgres cluster (also the one kept outside a home "
            "the postgres OS user cannot reach; see deploy/local/README.md).",
        ),
    ) -> None:
        """Stop exactly what `up` started from this home (pid files) and verify nothing is left."""
        from connectors.settings import load_settings
        from deploy.local.procs import StackError
        from deploy.local.stack import down as stack_down

        try:
            stack_down(
                load_settings(overrides=_overrides(home=home)), report=typer.echo, purge=purge
            )
        except StackError as exc:
            _fail(exc)

    @app.command()
    def status(home: HomeOption = None) -> None:
        """Print each component with its address. Exit 0 when Kafka and Postgres run, else 1."""
        from connectors.settings import load_settings
        from deploy.local.stack import status as stack_status

        settings = load_settings(overrides=_overrides(home=home))
        rows = stack_status(settings)
        for row in rows:
            state = "running" if row.running else "stopped"
            pids = f" pid {','.join(map(str, row.pids))}" if row.pids else ""
            typer.echo(f"{row.name:<9} {state:<8} {row.address}{pids}  log: {row.log_file}")
        core = {r.name: r.running for r in rows}
        if not (core.get("kafka") and core.get("postgres")):
            raise typer.Exit(1)
