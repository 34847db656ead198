"""`python -m deploy.local.smoke_check`: after `fraudstream up`, prove the stack answers.

Produces one JSON message to a scratch topic and reads it back, and runs a query as the writer
and the analyst role. Prints one line per check; exits 1 with the failing check otherwise.
"""

from __future__ import annotations

import json
import sys
import uuid


def main() -> int:
    import psycopg
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient

    from connectors.settings import load_settings
    from deploy.local.kafka import create_topics

    settings = load_settings()
    topic = f"smoke-check-{uuid.uuid4().hex[:8]}"
    create_topics(settings.kafka_bootstrap, (topic,), 1)
    try:
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        producer.produce(topic, json.dumps({"smoke": topic}).encode())
        producer.flush(10)
        consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": topic,
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        msg = None
        for _ in range(30):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                break
        consumer.close()
        if msg is None or json.loads(msg.value()) != {"smoke": topic}:
            print(f"smoke: FAILED kafka round trip on {settings.kafka_bootstrap}", file=sys.stderr)
            return 1
        print(f"smoke: kafka {settings.kafka_bootstrap} round trip ok")
    finally:
        AdminClient({"bootstrap.servers": settings.kafka_bootstrap}).delete_topics([topic])
    for role in ("writer", "analyst"):
        with psycopg.connect(settings.pg_conninfo(role)) as conn:
            count = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
        print(f"smoke: postgres as {role}: alerts has {count} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
