"""What one demo run is: its options, its names, its traffic mix and the job command (pure)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

DEMO_TOPIC_PREFIX = "fraudstream-demo-"

# Malformed records produced with the traffic so the DLQ count is visibly non-zero. None holds
# a card number: the dead-letter table keeps raw payloads.
MALFORMED_RECORDS: tuple[bytes, ...] = (
    b"{this is not json",
    json.dumps({"schema_version": 99, "transaction_id": "demo-bad-version"}).encode(),
    json.dumps({"transaction_id": "demo-missing-fields"}).encode(),
)


class DemoError(RuntimeError):
    """The demo cannot run; the message says what is missing and how to get it."""


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """Built by `fraudstream demo` from its flags."""

    cards: int = 300
    days: int = 30
    rate: float = 2000.0  # transactions/s produced; 0 = as fast as possible
    seed: int | None = None  # None: a fresh seed per run (printed, so a run can be repeated)
    start: date = date(2020, 6, 1)
    keep_running: bool = False
    timeout_s: float = 600.0
    parallelism: int | None = None  # None: the job's default
    refresh_s: float = 1.0


def job_command(
    topic: str, run_id: str, *, bounded: bool, parallelism: int | None, python: str
) -> list[str]:
    """`fraudstream run` for the demo: this run's topic, its own consumer group, from earliest."""
    cmd = [python, "-m", "jobs.cli", "run", "--source-topic", topic]
    cmd += ["--set", f"group_id=fraudstream-demo-{run_id}", "--set", "start_from=earliest"]
    if bounded:
        cmd.append("--bounded")
    if parallelism is not None:
        cmd += ["--parallelism", str(parallelism)]
    return cmd


def episode_share(days: int, cards: int, min_episodes: int = 3) -> float:
    """Share of cards with a fraud episode so a short run keeps a realistic fraud rate.

    The generator's default (0.98 of cards get one episode per run) is calibrated on 1-2 year
    runs (~0.5-1 % fraud); a 30-day demo would otherwise be ~12 % fraud. Scaling by the run
    length keeps it near 1 %; a tiny run still gets about `min_episodes` planted episodes.
    """
    return min(0.98, max(0.98 * days / 365, min_episodes / cards))


def new_run_id(now: datetime, suffix: str) -> str:
    """A sortable, unique id for one demo run, e.g. `20261122-023105-a1b2`."""
    return now.astimezone(UTC).strftime("%Y%m%d-%H%M%S") + f"-{suffix}"


def stale_demo_topics(names: Iterable[str], now: datetime,
                      max_age: timedelta = timedelta(hours=24)) -> list[str]:
    """Source topics of demo runs started more than `max_age` before `now`.

    A run deletes its own topic when it ends; this finds those left by runs that crashed,
    without touching a demo that may still be running. Names that do not parse are kept.
    """
    stale = []
    for name in names:
        if not name.startswith(DEMO_TOPIC_PREFIX):
            continue
        stamp = name[len(DEMO_TOPIC_PREFIX):][:15]
        try:
            started = datetime.strptime(stamp, "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            continue
        if now - started > max_age:
            stale.append(name)
    return sorted(stale)
