"""librdkafka's log lines never reach the terminal of a `fraudstream` command: a Kafka client
built the CLI way (`client_config`, with the CLI's `route_kafka_logs`) writes them to
`<home>/logs/kafka-clients.log`. The broker is unreachable (127.0.0.1:1), so every client logs
connection failures within a second."""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import Producer

from connectors.kafka_logs import LOG_FILE_NAME, client_config, kafka_logger

UNREACHABLE = {"bootstrap.servers": "127.0.0.1:1", "reconnect.backoff.ms": 100,
               "reconnect.backoff.max.ms": 200}


def _poll_for(producer: Producer, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        producer.poll(0.1)


@pytest.fixture
def kafka_logger_state():
    """Put the shared logger back as it was (the CLI routing changes it process-wide)."""
    logger = kafka_logger()
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield logger
    for handler in logger.handlers:
        if handler not in saved[0]:
            logger.removeHandler(handler)
            handler.close()
    logger.propagate, logger.level = saved[1], saved[2]


def test_a_plain_client_prints_to_stderr_which_the_check_sees(capfd):
    _poll_for(Producer(dict(UNREACHABLE)), 1.0)
    assert "|FAIL|rdkafka#producer" in capfd.readouterr().err  # `%3|<time>|FAIL|...`


def test_a_cli_client_logs_to_the_home_log_file_not_stderr(
        capfd, tmp_path, monkeypatch, kafka_logger_state):
    from jobs.cli import route_kafka_logs

    monkeypatch.setenv("FRAUDSTREAM_HOME", str(tmp_path))
    route_kafka_logs()
    producer = Producer(client_config(UNREACHABLE))
    _poll_for(producer, 1.5)
    producer.flush(0.5)
    stderr = capfd.readouterr().err
    assert "rdkafka#producer" not in stderr and "Connection refused" not in stderr
    for handler in kafka_logger_state.handlers:
        handler.flush()
    log = (tmp_path / "logs" / LOG_FILE_NAME).read_text()
    assert "FAIL [rdkafka#producer" in log and "Connect to ipv4#127.0.0.1:1 failed" in log


def test_without_settings_the_lines_are_dropped_not_printed(
        capfd, monkeypatch, kafka_logger_state):
    from jobs.cli import route_kafka_logs

    monkeypatch.setenv("FRAUDSTREAM_KAFKA_PORT", "not-a-port")  # load_settings raises
    route_kafka_logs()
    _poll_for(Producer(client_config(UNREACHABLE)), 1.0)
    assert "rdkafka#producer" not in capfd.readouterr().err
    assert not [h for h in kafka_logger_state.handlers if isinstance(h, logging.FileHandler)]
    assert not kafka_logger_state.propagate
