"""Process and port helpers shared by the stack components (pure OS calls, no stack logic)."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path


class StackError(RuntimeError):
    """A component could not be started/stopped. The message is one line naming the cause and
    the log file to read; the CLI prints it and exits non-zero."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something listens on (or holds) host:port, judged by trying to bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True if a TCP connect to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_free_ports(ports: Iterable[tuple[str, int]], log_file: Path) -> None:
    """Raise StackError naming the first (label, port) already taken on 127.0.0.1."""
    for label, port in ports:
        if port_in_use(port):
            raise StackError(
                f"{label} port 127.0.0.1:{port} is already in use by another process; "
                f"free it or choose another port (see `fraudstream up --help`); log: {log_file}"
            )


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """True if `pid` runs (and is not a zombie) and, when `marker` is given, its command line
    contains it (guards against a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        if marker is not None:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            return marker in cmdline
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return True


def read_pids(pid_file: Path) -> list[int]:
    """Pids listed one per line in `pid_file` (missing file -> [])."""
    if not pid_file.is_file():
        return []
    return [int(x) for x in pid_file.read_text().split() if x.strip().isdigit()]


def terminate(pids: Iterable[int], marker: str | None, timeout: float = 30.0) -> list[int]:
    """SIGTERM each live pid (matching `marker`), wait up to `timeout`, then SIGKILL what is
    left. Returns the pids that were signalled."""
    live = [p for p in pids if pid_alive(p, marker)]
    for pid in live:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in live):
        time.sleep(0.2)
    for pid in live:
        if pid_alive(p := pid):
            _signal(p, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(pid_alive(p) for p in live):
        time.sleep(0.1)
    return live


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop_process_groups(
    procs: Iterable[subprocess.Popen], steps: Iterable[tuple[int, float]]
) -> None:
    """Stop subprocesses started with `start_new_session=True`, each with everything it started
    (a JVM, Python workers): send each step's signal to the process group of every one still
    running, then wait up to the step's seconds for all of them to exit. E.g.
    `((SIGTERM, 60), (SIGKILL, 10))`. Read each `returncode` afterwards (None: still running)."""
    procs = list(procs)
    for sig, wait_s in steps:
        running = [p for p in procs if p.poll() is None]
        if not running:
            return
        for proc in running:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        for proc in running:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    log_file: Path,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.5,
) -> None:
    """Poll `check` until true. Raise StackError after `timeout`, or at once when `alive`
    says the process died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - any failure of a health probe means "not yet"
            pass
        if alive is not None and not alive():
            raise StackError(f"{what} exited during start-up; log: {log_file} ({tail(log_file)})")
        if time.monotonic() > deadline:
            raise StackError(f"{what} not healthy after {timeout:.0f}s; log: {log_file}")
        time.sleep(interval)


def tail_lines(log_file: Path, lines: int) -> list[str] | None:
    """The last `lines` non-empty lines of a log (right-stripped); None if it cannot be read."""
    try:
        text = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    return [line.rstrip() for line in text if line.strip()][-lines:]


def tail(log_file: Path, lines: int = 1) -> str:
    """Last non-empty line(s) of a log on one line, for error messages."""
    wanted = tail_lines(log_file, lines)
    if wanted is None:
        return "no log"
    return " | ".join(line.strip() for line in wanted)[-300:] or "empty log"


def require_java() -> str:
    """Path of the `java` binary; StackError naming the package if missing."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if not java:
        raise StackError(
            "java not found on PATH (need Java 17: apt-get install openjdk-17-jre-headless, "
            "or run deploy/local/bootstrap.sh as root)"
        )
    return java
