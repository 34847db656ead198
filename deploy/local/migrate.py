"""Migration runner: applies `schemas/sql/NNN_<name>.sql` in version order, each exactly once.

Applied migrations are recorded in `schema_migrations (version, name, checksum, applied_at)`.
A migration whose file changed after it was applied is an error (MigrationError names it):
write a new numbered file instead of editing an applied one. Each file runs in its own
transaction together with its bookkeeping row, so a failing file leaves nothing half-applied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[2] / "schemas" / "sql"
_NAME = re.compile(r"^(\d{3})_([A-Za-z0-9_]+)\.sql$")

CREATE_TRACKING_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """A migration file is malformed, changed after being applied, or failed to apply."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    """All migration files in `sql_dir`, sorted by version. Raises MigrationError on a file
    named `*.sql` that does not match `NNN_name.sql` or on a duplicated version."""
    found: dict[int, Migration] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files must be named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} also used by {found[version].path}")
        found[version] = Migration(version, match.group(2), path, path.read_text())
    return [found[v] for v in sorted(found)]


def apply_migrations(conninfo: str, sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Apply the pending migrations on `conninfo` (a role allowed to create tables and grant).
    Returns the migrations applied now (empty when up to date)."""
    import psycopg

    applied_now: list[Migration] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(CREATE_TRACKING_TABLE)
        done = {
            row[0]: (row[1], row[2])
            for row in conn.execute("SELECT version, name, checksum FROM schema_migrations")
        }
        for migration in discover(sql_dir):
            if migration.version in done:
                _, checksum = done[migration.version]
                if checksum != migration.checksum:
                    raise MigrationError(
                        f"{migration.path.name} changed after it was applied "
                        "(checksum differs): add a new migration instead of editing it"
                    )
                continue
            try:
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) "
                        "VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(f"{migration.path.name} failed: {exc}".strip()) from exc
            applied_now.append(migration)
    return applied_now
