"""The connector jars a PyFlink job needs, from the project-local cache.

`deploy/local/bootstrap.sh` resolves them from Maven Central into `<jars_dir>/flink/`
(see `deploy/local/pom.xml`). Jobs pass `flink_jar_urls()` to `env.add_jars(*urls)` or the
`pipeline.jars` option; on a standalone cluster the jars are shipped with the job.
"""

from __future__ import annotations

from pathlib import Path

from connectors.settings import StackSettings, load_settings

BOOTSTRAP_COMMAND = "bash deploy/local/bootstrap.sh (or `make bootstrap`)"

# File-name prefixes that must be present: Kafka SQL connector (shaded, includes the client),
# JDBC connector core + Postgres dialect, Postgres driver, the project's own operators
# (connectors/java, compiled by bootstrap).
REQUIRED_FLINK_JARS = (
    "fraudstream-flink-ops",
    "flink-sql-connector-kafka-",
    "flink-connector-jdbc-core-",
    "flink-connector-jdbc-postgres-",
    "postgresql-",
)


class JarsMissingError(FileNotFoundError):
    """The jar cache lacks a required jar; the message names the bootstrap command."""


def flink_jars_dir(settings: StackSettings | None = None) -> Path:
    return (settings or load_settings()).jars_dir / "flink"


def flink_jar_paths(settings: StackSettings | None = None) -> list[Path]:
    """Absolute paths of every jar in `<jars_dir>/flink` (sorted).

    Raises JarsMissingError if any required connector is absent.
    """
    folder = flink_jars_dir(settings)
    jars = sorted(folder.glob("*.jar")) if folder.is_dir() else []
    names = [j.name for j in jars]
    missing = [p for p in REQUIRED_FLINK_JARS if not any(n.startswith(p) for n in names)]
    if missing:
        names_missing = ", ".join(m.rstrip("-") for m in missing)
        raise JarsMissingError(
            f"Flink connector jars missing in {folder} ({names_missing}): run {BOOTSTRAP_COMMAND}"
        )
    return jars


def flink_jar_urls(settings: StackSettings | None = None) -> list[str]:
    """`file://` URLs of `flink_jar_paths()`, for `env.add_jars(*urls)` / `pipeline.jars`."""
    return [p.as_uri() for p in flink_jar_paths(settings)]
