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

Clone anywhere (issue 13): that OS user must reach the cluster's files. When running as root
and the home is not reachable by it (a checkout under /root or a `mktemp -d` dir, mode 0700),
a new cluster is made outside the home, in `<postgres' home>/fraudstream/<hash of the home
path>/` (`/var/lib/postgresql/fraudstream/...` on Debian; owned by `postgres`, mode 0700) with
`data/`, `run/`, `postgres.log` and a `home` file naming the stack home. `<home>/postgres` is
then a symlink to that dir: it records where the cluster is (`status`, `down`, and root's
clients using `StackSettings.pg_socket_dir` find it through the link).
`fraudstream down --purge` (`remove_data`) deletes the cluster wherever it is; a cluster whose
home was deleted without it (no link points to it any more) is deleted when the next outside
cluster is made (`_remove_orphans`). A reachable home keeps the layout above; an existing
cluster never moves (if its home became unreachable, `up` stops with "cannot reach").
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Collection
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
# Under the OS user's home: the clusters of homes that user cannot reach (one dir per home).
OUTSIDE_DIR = "fraudstream"
OUTSIDE_MODE = 0o700


def os_user() -> pwd.struct_passwd:
    """The `postgres` OS user's passwd entry; StackError naming the package if missing."""
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        raise StackError(
            f"OS user {OS_USER!r} missing (it comes with Debian's postgresql package): "
            "apt-get install postgresql"
        ) from None


def outside_root() -> Path | None:
    """`<postgres' home>/fraudstream`, where clusters of unreachable homes live (None if the OS
    user does not exist)."""
    try:
        return Path(pwd.getpwnam(OS_USER).pw_dir) / OUTSIDE_DIR
    except KeyError:
        return None


def can_search(path: Path, uid: int, gids: Collection[int]) -> bool:
    """True if a process of `uid` (groups `gids`) may traverse every directory from / down to
    `path` itself, judged by their owner, group and mode bits (ACLs are not read). False if
    `path` does not exist. uid 0 always may."""
    if uid == 0:
        return True
    path = Path(os.path.abspath(path))
    for directory in (path, *path.parents):
        try:
            st = directory.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


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


def _postmaster_pid(data_dir: Path) -> int:
    """The pid in `<data_dir>/postmaster.pid` if that process runs and serves `data_dir`,
    else 0."""
    try:
        first = (data_dir / "postmaster.pid").read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return 0
    pid = int(first) if first.isdigit() else 0
    return pid if pid and pid_alive(pid, str(data_dir)) else 0


def _remove_orphans(root: Path) -> list[Path]:
    """Delete the clusters under `root` whose home no longer links to them (the home was
    deleted, e.g. a test's private home or a clone, without `down --purge`): no fraudstream
    home can reach them again. A cluster a server still runs from is kept, and so is a dir
    without a `home` file (being made). Returns the dirs removed."""
    removed = []
    for candidate in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            link = Path((candidate / "home").read_text().strip()) / "postgres"
        except OSError:
            continue
        if link.is_symlink() and Path(os.readlink(link)) == candidate:
            continue
        if _postmaster_pid(candidate / "data"):
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    return removed


@dataclass(frozen=True)
class PostgresServer(StackService):
    """The Postgres cluster of one stack home. Methods are called by `deploy.local.stack`."""

    name = "postgres"

    @property
    def base(self) -> Path:
        """Where `data/` and `run/` are: `<home>/postgres`, or the dir outside the home that
        `<home>/postgres` links to (see the module doc)."""
        if self.dir.is_symlink():
            target = Path(os.readlink(self.dir))
            root = outside_root()
            if root is not None and target.parent == root:
                return target
        return self.dir

    @property
    def outside(self) -> bool:
        """True when this home's cluster lives outside the home."""
        return self.base != self.dir

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run" if self.outside else self.settings.pg_socket_dir

    @property
    def log_file(self) -> Path:
        return self.base / "postgres.log" if self.outside else super().log_file

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
        entry = os_user()
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
        pid = _postmaster_pid(self.data_dir)
        return [pid] if pid else []

    def home_reachable(self) -> bool:
        """Whether the server's OS user can traverse to the home and its logs dir (always
        true when not running as root: the server then runs as the caller)."""
        if os.geteuid() != 0:
            return True
        entry = os_user()
        gids = os.getgrouplist(entry.pw_name, entry.pw_gid)
        return all(
            can_search(path, entry.pw_uid, gids)
            for path in (self.settings.home, self.settings.logs_dir)
        )

    def outside_dir(self) -> Path:
        """The dir this home's cluster gets when the home is unreachable (see module doc)."""
        digest = hashlib.sha256(str(self.settings.home).encode()).hexdigest()[:16]
        return Path(os_user().pw_dir) / OUTSIDE_DIR / digest

    def _move_outside(self) -> None:
        """Link `<home>/postgres` to a new, empty dir outside the home."""
        target = self.outside_dir()
        _remove_orphans(target.parent)
        running = _postmaster_pid(target / "data")
        if running:
            raise StackError(
                f"a Postgres of an earlier home at {self.settings.home} still runs from "
                f"{target} (pid {running}): stop it with `runuser -u {OS_USER} -- "
                f"{pg_bin_dir() / 'pg_ctl'} -D {target / 'data'} stop`; log: "
                f"{target / 'postgres.log'}"
            )
        # Left by an earlier home at the same path that was deleted without `down --purge`;
        # a new home starts empty, as under the home itself.
        shutil.rmtree(target, ignore_errors=True)
        # Holds no cluster (no PG_VERSION): what an older version made before "cannot reach".
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.symlink_to(target)

    def _make_outside_dir(self) -> None:
        """Create (or re-create) the dir outside the home `<home>/postgres` links to."""
        for path in (self.base.parent, self.base):
            path.mkdir(parents=True, exist_ok=True)
            self._chown(path)
            path.chmod(OUTSIDE_MODE)
        (self.base / "home").write_text(f"{self.settings.home}\n")  # whose cluster this is

    def _prepare_dirs(self) -> None:
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        if (
            not self.dir.is_symlink()  # ours (outside) or the user's: used as it is
            and not (self.data_dir / "PG_VERSION").is_file()  # a cluster never moves
            and not self.home_reachable()
        ):
            self._move_outside()
        if self.outside:
            self._make_outside_dir()
        for path in (self.base, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            self._chown(path)
        self.socket_dir.chmod(SOCKET_DIR_MODE)  # also tightens a dir made by an older version
        self.log_file.touch(exist_ok=True)
        self._chown(self.log_file)
        if os.geteuid() == 0:
            probe = subprocess.run(
                ["runuser", "-u", OS_USER, "--", "test", "-w", str(self.base)],
                stdin=subprocess.DEVNULL,
            )
            if probe.returncode != 0:
                raise StackError(
                    f"OS user {OS_USER!r} cannot reach {self.base}: every parent directory of "
                    + ("it" if self.outside else "FRAUDSTREAM_HOME")
                    + " must be world-executable (chmod o+x)"
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

    def remove_data(self) -> list[Path]:
        """Delete this home's cluster wherever it is (`<home>/postgres`, or the dir outside the
        home and the link to it). Refuses while the server runs. Returns what was removed."""
        pids = self.pids()
        if pids:
            raise StackError(
                f"Postgres still runs (pid {pids[0]}) from {self.data_dir}: "
                "stop it first (`fraudstream down`)"
            )
        if self.outside:
            removed = [self.base] if self.base.exists() else []
            shutil.rmtree(self.base, ignore_errors=True)
            self.dir.unlink()
            return removed
        removed = [path for path in (self.data_dir, self.socket_dir) if path.exists()]
        for path in removed:
            shutil.rmtree(path)
        return removed

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
