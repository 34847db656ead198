"""Local single-node KRaft Kafka broker: `java -cp '<jars>/kafka/*' kafka.Kafka server.properties`.

Layout under `<home>/kafka/`: `server.properties` (rendered each start), `log4j2.properties`,
`data/` (formatted once with a fresh cluster id), `kafka.pid`. Log: `<home>/logs/kafka.log`.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

from connectors.kafka_logs import client_config
from deploy.local.procs import (
    StackError,
    pid_alive,
    port_open,
    read_pids,
    require_free_ports,
    require_java,
    tail,
    terminate,
    wait_until,
)
from deploy.local.service import StackService

HERE = Path(__file__).resolve().parent
START_TIMEOUT_S = 180.0
JVM_OPTS = ("-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true")


@dataclass(frozen=True)
class KafkaBroker(StackService):
    """The broker of one stack home (`<home>/kafka`, `<home>/logs/kafka.log`). Methods are
    called by `deploy.local.stack`."""

    name = "kafka"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def pid_file(self) -> Path:
        return self.dir / "kafka.pid"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.settings.kafka_port}"

    @property
    def marker(self) -> str:
        """A string in the broker's command line that identifies this home's broker."""
        return str(self.dir / "server.properties")

    def pids(self) -> list[int]:
        return [p for p in read_pids(self.pid_file) if pid_alive(p, self.marker)]

    def classpath(self) -> str:
        jars = self.settings.jars_dir / "kafka"
        if not any(jars.glob("kafka_2.13-*.jar")):
            raise StackError(
                f"Kafka jars missing in {jars}: run bash deploy/local/bootstrap.sh "
                f"(or `make bootstrap`); log: {self.log_file}"
            )
        return f"{jars}/*"

    def _render_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        text = Template((HERE / "server.properties").read_text()).substitute(
            kafka_port=self.settings.kafka_port,
            controller_port=self.settings.kafka_controller_port,
            data_dir=self.data_dir,
            partitions=self.settings.kafka_partitions,
        )
        (self.dir / "server.properties").write_text(text)
        shutil.copyfile(HERE / "log4j2.properties", self.dir / "log4j2.properties")

    def _java_cmd(self, java: str, main: str, *args: str) -> list[str]:
        return [
            java,
            *JVM_OPTS,
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.settings.logs_dir}",
            "-cp",
            self.classpath(),
            main,
            *args,
        ]

    def _format_once(self, java: str) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = self._java_cmd(
            java,
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            new_cluster_id(),
            "-c",
            str(self.dir / "server.properties"),
        )
        with self.log_file.open("ab") as log:
            result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=120)
        if result.returncode != 0:
            raise StackError(
                f"Kafka storage format failed (exit {result.returncode}); log: {self.log_file} "
                f"({tail(self.log_file)})"
            )

    def start(self) -> None:
        """Format storage on first use, start the broker detached, wait until it answers."""
        java = require_java()
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        require_free_ports(
            [
                ("Kafka", self.settings.kafka_port),
                ("Kafka controller", self.settings.kafka_controller_port),
            ],
            self.log_file,
        )
        self._render_config()
        self._format_once(java)
        cmd = self._java_cmd(java, "kafka.Kafka", str(self.dir / "server.properties"))
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.dir,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        wait_until(
            self.healthy,
            START_TIMEOUT_S,
            f"Kafka broker on {self.address}",
            self.log_file,
            alive=lambda: proc.poll() is None,
        )

    def healthy(self) -> bool:
        from confluent_kafka.admin import AdminClient

        if not port_open(self.settings.kafka_port):
            return False  # no client before the listener is up: librdkafka logs every retry
        admin = AdminClient(
            client_config({"bootstrap.servers": self.address, "socket.timeout.ms": 2000})
        )
        metadata = admin.list_topics(timeout=3)
        return bool(metadata.brokers)

    def stop(self) -> list[int]:
        """Stop the broker started from this home; returns the pids stopped."""
        stopped = terminate(read_pids(self.pid_file), self.marker, timeout=30)
        self.pid_file.unlink(missing_ok=True)
        return stopped

    def ensure_topics(self, topics: tuple[str, ...], partitions: int) -> list[str]:
        """Create the missing topics (replication 1); returns the names created."""
        return create_topics(self.settings.kafka_bootstrap, topics, partitions)

    def ensure_control_topic(self, topic: str) -> list[str]:
        """Create the control topic if missing: one partition (one order for every change),
        compacted (the last message per key is the configuration), room for a model."""
        return create_topics(self.settings.kafka_bootstrap, (topic,), 1, CONTROL_TOPIC_CONFIG)


# The control topic keeps the last message per key forever (compaction, no time retention);
# a model promotion carries the ONNX file, so messages may be up to 16 MB.
CONTROL_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "retention.ms": "-1",
    "max.message.bytes": str(16 * 1024 * 1024),
}


def create_topics(
    bootstrap: str, topics: tuple[str, ...], partitions: int,
    config: dict[str, str] | None = None,
) -> list[str]:
    """Create missing `topics` on `bootstrap` with `partitions` partitions each (and topic
    `config`)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(client_config({"bootstrap.servers": bootstrap}))
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [t for t in topics if t not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=partitions, replication_factor=1, config=config or {})
         for t in missing],
        operation_timeout=30,
    )
    for topic, future in futures.items():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise StackError(f"could not create topic {topic!r}: {exc}") from exc
    return missing


def new_cluster_id() -> str:
    """A Kafka cluster id: base64url of a random UUID, no padding, not starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid
