"""librdkafka's own log lines (`%3|1700000000.123|FAIL|rdkafka#producer-1| ...`) go to Python
logging, never straight to the terminal.

Every confluent-kafka client the CLI, the demo and the stack tools create is built from
`client_config(...)`, which adds confluent-kafka's `logger` setting: the client then hands its
log lines to the `fraudstream.kafka` logger (when the client polls or flushes, in the calling
thread) instead of printing them to stderr from its own threads. Where they end up is the
entry point's decision: the `fraudstream` CLI writes them to `<home>/logs/kafka-clients.log`
(`log_to_file`); anywhere else they follow the root logger's configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KAFKA_LOGGER = "fraudstream.kafka"
LOG_FILE_NAME = "kafka-clients.log"


def kafka_logger() -> logging.Logger:
    """The logger every client made with `client_config` writes to."""
    return logging.getLogger(KAFKA_LOGGER)


def client_config(settings: Mapping[str, Any]) -> dict[str, Any]:
    """confluent-kafka `settings` plus `logger`: the client's log lines go to `kafka_logger()`."""
    return {**settings, "logger": kafka_logger()}


class _KafkaLogFile(logging.FileHandler):
    """The file handler `log_to_file` installs (a type of its own, so it is found again).
    Opened at the first line, so a command that logs nothing creates no file or directory."""

    def _open(self):  # noqa: ANN202 - logging.FileHandler's hook
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


class _KafkaLogNowhere(logging.NullHandler):
    """The handler `log_to_file(None)` installs: without one, logging's last resort would
    print the lines to stderr."""


def log_to_file(path: Path | None) -> logging.Handler:
    """Send `kafka_logger()` to `path` (appended; created with its directory on the first line)
    and nowhere else; `None` drops the lines. Called again, it replaces what it set before.
    Returns the handler."""
    logger = kafka_logger()
    for old in [h for h in logger.handlers if isinstance(h, _KafkaLogFile | _KafkaLogNowhere)]:
        logger.removeHandler(old)
        old.close()
    if path is None:
        handler: logging.Handler = _KafkaLogNowhere()
    else:
        handler = _KafkaLogFile(path, encoding="utf-8", delay=True)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the terminal is for the command's own output
    return handler
