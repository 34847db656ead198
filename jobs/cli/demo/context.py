"""One demo run's fixed parts, handed from step to step (built by `run.run_demo`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console

from jobs.cli.demo.plan import DemoConfig
from jobs.cli.demo.topics import OutputTopics
from jobs.cli.demo.view import DemoStats


@dataclass(frozen=True, slots=True)
class DemoRun:
    """What every step of a run reads. `stats` is the one mutable part: the producer, the alert
    watcher and the live loop update it under `lock`; the live view draws it."""

    config: DemoConfig
    settings: Any  # connectors.settings.StackSettings of the stack `ensure_up` started
    console: Console
    stop: threading.Event  # set by Ctrl-C
    stats: DemoStats
    lock: threading.Lock
    topics: OutputTopics  # where the job writes alerts and dead letters
    started: datetime  # wall clock at the start, for the elapsed time
    seed: int  # the generator's seed (printed, so a run can be repeated)

    @property
    def run_id(self) -> str:
        return self.stats.run_id

    @property
    def source_topic(self) -> str:
        return self.stats.topic


@dataclass(frozen=True, slots=True)
class Baseline:
    """Where this run's counts start, taken before the job reads anything."""

    db_start: datetime  # database clock: scored_at of this run's rows is later
    dlq_start: int  # records in the DLQ topic (all partitions)
    run_ids: list[str]  # this run's transaction ids, for the exact final count
