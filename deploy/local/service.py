"""What every local stack component (Kafka broker, Postgres server, Flink cluster) shares: it
belongs to one stack home (`settings`), has a `name`, a state dir `<home>/<name>`, a log file
`<home>/logs/<name>.log`, an `address` and the pids of its processes. `deploy.local.stack`
starts, stops and reports any of them through this interface."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from connectors.settings import StackSettings


@dataclass(frozen=True)
class StackService:
    """Base of the component dataclasses; subclasses set `name` and implement `pids`,
    `address`, `start` and `stop` (and override `dir`/`log_file` where they differ)."""

    settings: StackSettings

    name: ClassVar[str] = ""

    @property
    def dir(self) -> Path:
        return self.settings.home / self.name

    @property
    def log_file(self) -> Path:
        return self.settings.logs_dir / f"{self.name}.log"

    @property
    def address(self) -> str:
        raise NotImplementedError

    def pids(self) -> list[int]:
        raise NotImplementedError

    def is_running(self) -> bool:
        return bool(self.pids())
