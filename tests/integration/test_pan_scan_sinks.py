"""tests.pan_scan against the real stack: the sink scanners find a card wherever it hides.

The end-to-end tests trust `scan_topic` and `scan_tables` to say "no card here"; this proves
they would have said otherwise (a card in a key, a value, a header, a base64 field, a text,
jsonb or bytea column), and that they read a transactional topic to its end.
"""

from __future__ import annotations

import base64
import json
import uuid

from tests.pan_scan import scan_tables, scan_topic

VISA = "4111111111111111"


def test_scan_topic_reads_keys_values_headers_and_base64_to_the_end(stack, fresh_topic):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap,
                         "transactional.id": f"pan-scan-{uuid.uuid4()}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(40):  # clean traffic on every partition
        producer.produce(fresh_topic, key=f"k{i}", value=json.dumps({"score": 0.41111111111111}))
    producer.produce(fresh_topic, key="4111.1111.1111.1111", value=b"{}", partition=0)
    producer.produce(fresh_topic, value=b"x", headers=[("note", VISA.encode())], partition=1)
    raw = base64.b64encode(f'{{"cc_num": "{VISA}"}}'.encode()).decode()
    producer.produce(fresh_topic, value=json.dumps({"raw_base64": raw}), partition=2)
    producer.produce(fresh_topic, value=json.dumps({"m": "4111\t1111\t1111\t1111"}),
                     partition=3)
    producer.commit_transaction(30)

    found = scan_topic(stack.kafka_bootstrap, fresh_topic)

    where = sorted(f.where.split(" ", 1)[1] for f in found)
    assert where == ["header note", "key", "value", "value.raw_base64 (base64)"]
    assert all(f.masked == "16 digits ending 1111" for f in found)


def test_scan_tables_reads_text_jsonb_and_bytea_columns(pg_admin):
    table = f"pan_scan_{uuid.uuid4().hex[:8]}"
    with pg_admin.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int, note text, doc jsonb, raw bytea, n bigint)")
        try:
            cur.execute(
                f"INSERT INTO {table} VALUES (1, 'ok', %s, %s, 4111111111111111), "
                "(2, %s, '{}', NULL, 1), (3, 'ok', %s, %s, 2)",
                (json.dumps({"score": 0.4111111111111111}), b"clean",
                 "card 4111_1111_1111_1111", json.dumps({"m": [VISA]}),
                 b"\xff 4111 1111 1111 1111"),
            )
            found = scan_tables(pg_admin, [table])
        finally:
            cur.execute(f"DROP TABLE {table}")
    # numeric columns are not scanned (the job's numbers are its own); floats are numbers
    assert sorted(f.where for f in found) == [f"{table} row 1 note", f"{table} row 2 doc",
                                              f"{table} row 2 raw"]
