"""The console's Postgres connections: a few autocommit connections as the ANALYST role.

The analyst role may read the job's tables and update only the review columns of `alerts`
(migration 004), so nothing the console does can change a score or a feature. Every
statement runs under `statement_timeout` (a slow query ends with an error page instead of
holding a worker), and a connection that broke is dropped instead of returned.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STATEMENT_TIMEOUT_MS = 15_000
APPLICATION_NAME = "fraudstream-console"


class AnalystPool:
    """At most `size` idle connections kept; more are opened when requests overlap."""

    def __init__(self, conninfo: str, size: int = 4,
                 statement_timeout_ms: int = STATEMENT_TIMEOUT_MS) -> None:
        self._conninfo = conninfo
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue(maxsize=size)
        self._timeout_ms = statement_timeout_ms
        self._lock = threading.Lock()
        self._facts: dict[str, Any] = {}

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            self._conninfo, autocommit=True, application_name=APPLICATION_NAME,
            options=f"-c statement_timeout={int(self._timeout_ms)}",
        )

    @contextmanager
    def connection(self) -> Iterator[Any]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        finally:
            if not conn.closed and not conn.broken:
                try:
                    conn.rollback()  # nothing open on an autocommit connection; be sure
                    self._idle.put_nowait(conn)
                    conn = None
                except Exception:  # noqa: BLE001 - queue full or connection unusable
                    pass
            if conn is not None:
                conn.close()

    def fact(self, name: str, compute: Any) -> Any:
        """A fact about the database computed once (e.g. which optional columns exist)."""
        with self._lock:
            if name not in self._facts:
                with self.connection() as conn:
                    self._facts[name] = compute(conn)
            return self._facts[name]

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
