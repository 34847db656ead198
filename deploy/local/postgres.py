"""Project-local PostgreSQL cluster from Debian's `postgresql` package.

Layout under `<home>/postgres/`: `data/` (initdb'd once), `run/` (unix socket). Log:
`<home>/logs/postgres.log`. TCP on 127.0.0.1:<pg_port> only (scram passwords); the unix socket
allows the `postgres` superuser without password (trust) for administration by `up`, so it is
reachable by its owner only (issue 10): `run/` is mode 0700 and the socket itself 0700
(`unix_socket_permissions`). Other local users get no superuser: they have the TCP port and
the roles' passwords, like everyone else. (The server runs as the OS user `postgres` when `up`
runs as root; root itself passes any mode.)

`initdb` refuses to run as root, so when running as root every server command runs as the
unprivileged OS user `postgres` (created by the Debian package) via `runuser`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deploy.local.procs import StackError, pid_alive, require_free_ports, tail, terminate
from deploy.local.service import StackService

OS_USER = "postgres"
SUPERUSER = "postgres"
START_TIMEOUT_S = 60
# The superuser socket (trust auth) and its directory: the server's OS user only.
SOCKET_DIR_MODE = 0o700
SOCKET_MODE = 0o700


def pg_bin_dir() -> Path:
    """Directory holding initdb/pg_ctl of the newest installed server; StackError if none."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise StackError(
        "PostgreSQL server not installed (pg_ctl not found): apt-get install postgresql, "
        "or run deploy/local/bootstrap.sh as root"
    )


@dataclass(frozen=True)
class PostgresServer(StackService):
    """The Postgres cluster of one stack home. Methods are called by `deploy.local.stack`."""

    name = "postgres"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.settings.pg_socket_dir

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.settings.pg_port}/{self.settings.pg_database}"

    def _as_owner(self, cmd: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", OS_USER, "--", *cmd]
        return cmd

    def _chown(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        try:
            entry = pwd.getpwnam(OS_USER)
        except KeyError:
            raise StackError(
                f"OS user {OS_USER!r} missing (it comes with Debian's postgresql package): "
                "apt-get install postgresql"
            ) from None
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, cmd: list[str], what: str, timeout: float = 120) -> None:
        with self.log_file.open("ab") as log:
            result = subprocess.run(
                self._as_owner(cmd),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
            )
        if result.returncode != 0:
            raise StackError(
                f"{what} failed (exit {result.returncode}); log: {self.log_file} "
                f"({tail(self.log_file)})"
            )

    def pids(self) -> list[int]:
        """The postmaster pid from `postmaster.pid`, if that process runs our data dir."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            first = pid_file.read_text().splitlines()[0].strip()
        except (OSError, IndexError):
            return []
        pid = int(first) if first.isdigit() else 0
        return [pid] if pid and pid_alive(pid, str(self.data_dir)) else []

    def _prepare_dirs(self) -> None:
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        for path in (self.dir, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            self._chown(path)
        self.socket_dir.chmod(SOCKET_DIR_MODE)  # also tightens a dir made by an older version
        self.log_file.touch(exist_ok=True)
        self._chown(self.log_file)
        if os.geteuid() == 0:
            probe = subprocess.run(
                ["runuser", "-u", OS_USER, "--", "test", "-w", str(self.dir)],
                stdin=subprocess.DEVNULL,
            )
            if probe.returncode != 0:
                raise StackError(
                    f"OS user {OS_USER!r} cannot reach {self.dir}: every parent directory of "
                    "FRAUDSTREAM_HOME must be world-executable (chmod o+x)"
                )

    def _init_once(self, bin_dir: Path) -> None:
        if (self.data_dir / "PG_VERSION").is_file():
            return
        self._run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
            "initdb",
        )
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write("\ninclude_if_exists = 'fraudstream.conf'\n")

    def _write_conf(self) -> None:
        # Rewritten on every start so port/socket changes in the settings take effect.
        conf = self.data_dir / "fraudstream.conf"
        conf.write_text(
            "# Written by fraudstream up (deploy/local/postgres.py); edits are overwritten.\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.settings.pg_port}\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            f"unix_socket_permissions = {SOCKET_MODE:04o}\n"
            "max_connections = 100\n"
            "shared_buffers = 128MB\n"
            # Decision, measured 2026-12-02: at 2,500 events/s the upserts wrote ~6.7 MB/s
            # of WAL and the 1 GB default forced a checkpoint every 40-80 s, each one
            # re-logging full pages. Durability is unchanged (fsync, synchronous commit).
            "max_wal_size = 4GB\n"
            "checkpoint_timeout = 15min\n"
            "wal_compression = on\n"
            "password_encryption = 'scram-sha-256'\n"
        )
        self._chown(conf)

    def start(self) -> None:
        """initdb on first use, then `pg_ctl start -w` (waits until it accepts connections)."""
        bin_dir = pg_bin_dir()
        self._prepare_dirs()
        require_free_ports([("Postgres", self.settings.pg_port)], self.log_file)
        self._init_once(bin_dir)
        self._write_conf()
        self._run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
            ],
            f"Postgres start on 127.0.0.1:{self.settings.pg_port}",
            timeout=START_TIMEOUT_S + 15,
        )

    def stop(self) -> list[int]:
        """`pg_ctl stop -m fast`; falls back to signals if pg_ctl cannot."""
        pids = self.pids()
        if not pids:
            return []
        try:
            self._run(
                [str(pg_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                 "stop"],
                "Postgres stop",
                timeout=60,
            )
        except StackError:
            terminate(pids, str(self.data_dir), timeout=30)
        return pids

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        """Superuser connection over the unix socket (trust auth)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=str(self.socket_dir),
            port=self.settings.pg_port,
            dbname=dbname,
            user=SUPERUSER,
            connect_timeout=10,
        )

    def ensure_database_and_roles(self) -> list[str]:
        """Create (or re-password) the writer and analyst login roles and the database.
        Returns what was created. Passwords come from the settings (env / secrets.env)."""
        import psycopg
        from psycopg import sql

        created: list[str] = []
        s = self.settings
        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            for role in ("writer", "analyst"):
                user, password = s.credentials(role)
                exists = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)
                ).fetchone()
                verb = "ALTER" if exists else "CREATE"
                conn.execute(
                    sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(user), sql.Literal(password)
                    )
                )
                if not exists:
                    created.append(f"role {user}")
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (s.pg_database,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(s.pg_database)))
                created.append(f"database {s.pg_database}")
        return created
