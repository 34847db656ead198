"""Shared fixtures for the real local stack (owned by the foundation area).

- `stack` (session): `ensure_up()` (idempotent: reuses a running stack, starts what is missing;
  Kafka + Postgres, no Flink cluster) and returns the StackSettings.
- `flink_cluster` (session): also the Flink standalone cluster; returns a
  `deploy.local.flink_cluster.FlinkCluster` (submit_python_job, wait_for_job, taskmanager_pids,
  start_taskmanager, ...).
- `fresh_topic`: a uniquely named topic (4 partitions) deleted after the test;
  `topic_factory(prefix="t", partitions=4)` for several or other partition counts.
- `pg_admin`, `pg_writer`, `pg_analyst`: autocommit psycopg connections to the fraudstream
  database as the superuser (unix socket), the job's writer role and the analyst role.
The session never stops the stack: `make test` (deploy/local/run_tests.sh) does that when it
started it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "flink_cluster: needs the local Flink standalone cluster (fixture starts it)"
    )


@pytest.fixture(scope="session")
def stack():
    """StackSettings of the running local stack (Kafka + Postgres), started if needed."""
    from deploy.local.stack import ensure_up

    return ensure_up(flink_cluster=False)


@pytest.fixture(scope="session")
def flink_cluster(stack):
    """The local Flink standalone cluster (JobManager + 2 TaskManagers), started if needed."""
    from deploy.local.flink_cluster import FlinkCluster
    from deploy.local.stack import ensure_up

    return FlinkCluster(ensure_up(flink_cluster=True))


@pytest.fixture
def topic_factory(stack) -> Iterator[Callable[..., str]]:
    """Create uniquely named topics; all are deleted after the test."""
    from confluent_kafka.admin import AdminClient

    from deploy.local.kafka import create_topics

    created: list[str] = []

    def make(prefix: str = "t", partitions: int = 4) -> str:
        name = f"test-{prefix}-{uuid.uuid4().hex[:10]}"
        create_topics(stack.kafka_bootstrap, (name,), partitions)
        created.append(name)
        return name

    yield make
    if created:
        futures = AdminClient({"bootstrap.servers": stack.kafka_bootstrap}).delete_topics(created)
        for future in futures.values():
            try:
                future.result(timeout=30)
            except Exception:  # noqa: BLE001 - cleanup is best effort
                pass


@pytest.fixture
def fresh_topic(topic_factory) -> str:
    """A new, empty topic with 4 partitions."""
    return topic_factory()


def _connect(conninfo: str):
    import psycopg

    return psycopg.connect(conninfo, autocommit=True)


@pytest.fixture
def pg_admin(stack):
    """Superuser connection (for test DDL such as scratch tables)."""
    from deploy.local.postgres import PostgresServer

    with _connect(PostgresServer(stack).admin_conninfo(stack.pg_database)) as conn:
        yield conn


@pytest.fixture
def pg_writer(stack):
    with _connect(stack.pg_conninfo("writer")) as conn:
        yield conn


@pytest.fixture
def pg_analyst(stack):
    with _connect(stack.pg_conninfo("analyst")) as conn:
        yield conn
