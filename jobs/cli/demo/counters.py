"""The demo's Postgres counters: how much of the run the job has scored (analyst connection)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def scored_since(conn: Any, since: datetime) -> int:
    """Rows inserted into scored_transactions since `since` (database clock): the live count.

    Cheap enough to poll every second. It counts every writer's inserts, so it is exact only
    when the demo job is the one writing; the summary uses `scored_of_run`.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM scored_transactions WHERE scored_at >= %s", (since,))
        (count,) = cur.fetchone()
    conn.rollback()
    return int(count)


def scored_of_run(conn: Any, run_ids: list[str]) -> int:
    """How many of this run's transactions are in scored_transactions (exact; ~1 s for 25k)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM scored_transactions WHERE transaction_id = ANY(%s)", (run_ids,)
        )
        (count,) = cur.fetchone()
    conn.rollback()
    return int(count)


def db_now(conn: Any) -> datetime:
    """The database clock (scored_at is written by it, not by this machine's clock)."""
    with conn.cursor() as cur:
        cur.execute("SELECT now()")
        (now,) = cur.fetchone()
    conn.rollback()
    return now
