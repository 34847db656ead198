"""`fraudstream check outputs` on the real stack: the Great Expectations checkpoint passes on
the rows a real run of the job wrote, and fails, naming the expectations, on corrupted rows.

A bounded MiniCluster run scores 1,500 generated transactions with planted fraud and dead-
letters 10 malformed records. Its rows of the four output tables are copied into a scratch
schema (`CREATE TABLE ... (LIKE public.x INCLUDING ALL)`, read by the analyst role like the
real tables), so rows other tests leave in the long-lived local database do not matter. The
check runs as the CLI does (analyst role, read-only): on the copy (exit 0); after the
superuser inserted one corrupted row per table (exit 1, each broken rule named, the card
number shown only with its digits masked, in the summary and the data docs); and with an old
corrupted row that --since leaves out (exit 0) or takes in (exit 1).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from schemas.card_token import CardTokenizer
from tests.integration.jobs.harness import REPO, create_topics, delete_topics, produce, run_job_cli
from tests.integration.jobs.streams import malformed_records, valid_records

pytestmark = pytest.mark.integration

N_VALID = 1500
PAN = "4111111111111111"
TABLES = ("scored_transactions", "alerts", "aggregates", "rejected_events")


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.cli", "check", "outputs", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "250"}, check=False)


@pytest.fixture(scope="module")
def copy(stack, tmp_path_factory):
    """The run's rows in a scratch schema; yields (schema, admin connection, run facts)."""
    import psycopg

    from deploy.local.postgres import PostgresServer

    run = f"oq-{uuid.uuid4().hex[:8]}"
    tokenizer = CardTokenizer(stack.card_token_key.reveal().encode())
    valid = valid_records(tokenizer, run, N_VALID)
    bad = [r for r in malformed_records(tokenizer, run, valid[0].txn)
           if r.value is None or len(r.value) < 100_000][:10]
    topics = create_topics(stack.kafka_bootstrap, "oq")
    tmp = tmp_path_factory.mktemp("oq")
    schema = f"oq_{run[3:]}"
    admin = psycopg.connect(PostgresServer(stack).admin_conninfo(stack.pg_database),
                            autocommit=True)
    ids = [r.txn.transaction_id for r in valid]
    try:
        produce(stack.kafka_bootstrap, topics.source, valid + bad)
        run_job_cli({"source_topic": topics.source, "dlq_topic": topics.dlq,
                     "alerts_topic": topics.alerts, "group_id": run, "parallelism": 2},
                    tmp / "job.log", 600)
        t_min = datetime.fromtimestamp(min(r.txn.event_time_ms for r in valid) / 1000, UTC)
        t_max = datetime.fromtimestamp(max(r.txn.event_time_ms for r in valid) / 1000, UTC)
        admin.execute(f"CREATE SCHEMA {schema}")
        for table in TABLES:
            admin.execute(f"CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)")
        scope = {
            "scored_transactions": ("transaction_id = ANY(%s)", (ids,)),
            "alerts": ("transaction_id = ANY(%s)", (ids,)),
            "rejected_events": ("source_topic = %s", (topics.source,)),
            "aggregates": ("window_start BETWEEN %s AND %s",
                           (t_min - timedelta(minutes=1), t_max)),
        }
        copied = {}
        for table, (where, params) in scope.items():
            copied[table] = admin.execute(
                f"INSERT INTO {schema}.{table} SELECT * FROM public.{table} WHERE {where}",
                params).rowcount
        admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO fraudstream_analyst")
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO fraudstream_analyst")
        print(f"\ncopied into {schema}: {copied}")
        yield {"schema": schema, "admin": admin, "copied": copied, "tmp": tmp, "t_min": t_min,
               "stack": stack}
    finally:
        delete_topics(stack.kafka_bootstrap, topics)
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.execute("DELETE FROM alerts WHERE transaction_id = ANY(%s)", (ids,))
        admin.execute("DELETE FROM scored_transactions WHERE transaction_id = ANY(%s)", (ids,))
        admin.execute("DELETE FROM rejected_events WHERE source_topic = %s", (topics.source,))
        admin.close()


def test_the_rows_of_a_real_run_pass(copy):
    assert copy["copied"]["scored_transactions"] >= 0.95 * N_VALID
    assert copy["copied"]["alerts"] > 0 and copy["copied"]["aggregates"] > 0
    assert copy["copied"]["rejected_events"] == 10
    docs = copy["tmp"] / "docs"
    done = _check("--schema", copy["schema"], "--since", "all", "--docs", str(docs))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Output data quality passed" in done.stdout
    for table in TABLES:
        line = next(ln for ln in done.stdout.splitlines() if ln.strip().startswith(table + ":"))
        met, total = line.rsplit(",", 1)[1].split()[0].split("/")
        assert met == total and int(total) >= 10, line
    index = docs / "index.html"
    assert index.is_file()
    html = "".join(p.read_text(errors="replace") for p in docs.rglob("*.html"))
    assert "outputs_scored_transactions" in html
    assert copy["stack"].analyst_password.reveal() not in html


def _corrupt(copy) -> None:
    s, admin = copy["schema"], copy["admin"]
    future = datetime.now(UTC) + timedelta(days=30)
    admin.execute(
        f"INSERT INTO {s}.scored_transactions (transaction_id, card_token, card_last4,"
        " event_time, amount, merchant, category, score, decision, reasons, features,"
        " model_version) VALUES ('oq-bad-1', %s, '1111', %s, 12.5, %s, 'misc_net', 1.7,"
        " 'maybe', '[]', '{}', 'v')", (PAN, future, f"Shop {PAN[:4]} {PAN[4:8]} {PAN[8:12]} "
                                       f"{PAN[12:]}"))
    admin.execute(
        f"INSERT INTO {s}.alerts (transaction_id, card_token, card_masked, event_time, amount,"
        " merchant, category, score, threshold, reasons, features, model_version) VALUES"
        " ('oq-orphan', 'x', %s, now(), 10, 'm', 'misc_net', 0.9, 0.5, '[]', '{}', 'v')",
        (PAN,))
    admin.execute(
        f"INSERT INTO {s}.aggregates (window_start, window_end, dimension, key, txn_count,"
        " amount_sum, alert_count, mean_score) VALUES (now(), now() + interval '1 minute',"
        " 'category', 'misc_net', 0, 0, 2, 0.5)")
    admin.execute(
        f"INSERT INTO {s}.rejected_events (source_topic, source_partition, source_offset,"
        " reason, raw_payload, payload_bytes) VALUES ('oq-topic', 0, 1, '', %s, 20)",
        (f'{{"cc_num": "{PAN}"}}',))


def test_corrupted_rows_fail_and_each_broken_rule_is_named(copy):
    _corrupt(copy)
    done = _check("--schema", copy["schema"], "--since", "all", "--docs",
                  str(copy["tmp"] / "docs-bad"))
    assert done.returncode == 1, done.stdout + done.stderr
    text = done.stderr
    assert "Output data quality FAILED" in text
    expected = {
        "scored_transactions": ["expect_column_values_to_be_between [score]",
                                "expect_column_values_to_be_in_set [decision]",
                                "expect_column_values_to_be_between [event_time]",
                                "expect_column_values_to_match_regex [card_token_masked]",
                                "expect_column_values_to_not_match_regex [merchant_masked]"],
        "alerts": ["expect_column_values_to_not_be_null [scored_decision]",
                   "expect_column_values_to_match_regex [card_masked_masked]",
                   "expect_column_values_to_be_between [reason_count]"],
        "aggregates": ["expect_column_values_to_be_between [txn_count]",
                       "expect_column_pair_values_a_to_be_greater_than_b"],
        "rejected_events": ["expect_column_value_lengths_to_be_between [reason]",
                            "expect_column_values_to_not_match_regex [raw_payload_masked]"],
    }
    sections = _sections(text)
    for table, rules in expected.items():
        for rule in rules:
            assert any(rule in line for line in sections[table]), (table, rule, text)
    assert PAN not in text and PAN not in done.stdout  # failing values only with '#' digits
    assert "################" in text
    html = "".join(p.read_text(errors="replace")
                   for p in (copy["tmp"] / "docs-bad").rglob("*.html"))
    assert PAN not in html


def test_since_leaves_older_rows_out(copy):
    # an old corrupted row before the run's first event: outside --since, the check ignores it
    s, admin = copy["schema"], copy["admin"]
    for table in ("scored_transactions", "alerts", "aggregates", "rejected_events"):
        admin.execute(f"DELETE FROM {s}.{table} WHERE "  # the rows of the previous test
                      + {"scored_transactions": "transaction_id LIKE 'oq-bad%'",
                         "alerts": "transaction_id = 'oq-orphan'",
                         "aggregates": "txn_count = 0",
                         "rejected_events": "source_topic = 'oq-topic'"}[table])
    admin.execute(
        f"INSERT INTO {s}.scored_transactions (transaction_id, card_token, card_last4,"
        " event_time, amount, merchant, category, score, decision, reasons, features,"
        " model_version) VALUES ('oq-bad-old', %s, '1111', %s, 12.5, 'm', 'misc_net', 1.7,"
        " 'pass', '[]', '{}', 'v')", ("a" * 64, copy["t_min"] - timedelta(days=400)))
    failing = _check("--schema", s, "--since", "all", "--docs", str(copy["tmp"] / "d1"))
    assert failing.returncode == 1 and "[score]" in failing.stderr
    since = (copy["t_min"] - timedelta(minutes=1)).isoformat()
    passing = _check("--schema", s, "--since", since, "--docs", str(copy["tmp"] / "d2"))
    assert passing.returncode == 0, passing.stdout + passing.stderr


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {t: [] for t in TABLES}
    current = None
    for line in text.splitlines():
        head = line.strip().split(":")[0]
        if head in out:
            current = head
        elif current and line.strip().startswith("- "):
            out[current].append(line.strip())
    return out
