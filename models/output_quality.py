"""Great Expectations checkpoint over the job's Postgres outputs: do the rows mean what we say?

One GX 1.x checkpoint, four validations, each a query asset of GX's Postgres (SQL) data
source on the real database, as the analyst role in read-only transactions:
- scored_transactions: ids unique and non-null; card_token is a 64-hex token and card_last4
  four digits (never a card number); score in [0, 1]; decision alert|pass; amount > 0;
  event time within the parser's bounds and not in the future (beyond the job's own 1-day
  tolerance for clock skew); a model version; features a JSON object;
- alerts: ids unique; each has its scored row, decided `alert` (the job writes both);
  card_masked `****` + 4 digits; score in [0, 1], threshold in (0, 1); at least one reason;
  review status/label in their sets; event time not in the future;
- aggregates: counts positive, alert_count <= txn_count, amount_sum >= 0, mean_score in
  [0, 1], dimension category|merchant, window_end after window_start, one row per window,
  dimension and key;
- rejected_events: reason non-empty; one row per source topic/partition/offset; sizes sane
  (payload_bytes >= 0, raw_bytes within 1 MiB).
Card numbers: every free-text column (merchant, category, keys, notes, raw_payload, ...) must
hold no run of 13+ digits (at most 3 separators `space . _ / -` between two digits). The
expectation runs on the column with its digits masked as `#` (SQL `translate`), so a failing
value is shown in the summary and the data docs without its digits.

Scope (`since`): rows whose event time (aggregates: window start; dead letters, which have
none: the time they were rejected) is at or after `since`; None = all rows. Event time is
what the tables index, so a recent window stays cheap on a big table. (GX's compound-column
uniqueness misbehaved on a query asset in GX 1.24, so composite keys are checked as one
concatenated column.)
`schema` points the checks at another schema with the same tables (a scratch copy).
Data docs (HTML) are rendered into `docs_dir`. Caveat: an alert and its scored row come from
two sinks that flush independently, so a check while the job is mid-flush can see an alert
whose scored row is a second away; run it on settled data or rerun.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from schemas.dead_letter import RAW_MAX_BYTES

CHECKPOINT = "fraudstream_outputs"
FUTURE_TOLERANCE = timedelta(days=1)  # the job's max_event_time_ahead_ms
MIN_EVENT_TIME = datetime(1990, 1, 1, tzinfo=UTC)  # the parser's lower bound
# 13 or more digits, at most 3 separators between two: on a column whose digits are '#'
CARD_RUN = r"#([[:space:]._/-]{0,3}#){12,}"
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
TABLES = ("scored_transactions", "alerts", "aggregates", "rejected_events")


@dataclass(frozen=True)
class Failure:
    table: str
    expectation: str
    column: str | None
    detail: str


@dataclass(frozen=True)
class OutputReport:
    success: bool
    rows: dict[str, int]  # table -> rows checked
    evaluated: dict[str, int]  # table -> expectations evaluated
    failures: tuple[Failure, ...]
    docs_index: Path | None

    def render(self) -> str:
        lines = [f"Output data quality {'passed' if self.success else 'FAILED'} "
                 f"({CHECKPOINT}, Great Expectations)"]
        for table in TABLES:
            failed = [f for f in self.failures if f.table == table]
            n = self.evaluated.get(table, 0)
            lines.append(f"  {table}: {self.rows.get(table, 0):,} rows, {n - len(failed)}/{n} "
                         "expectations met")
            for f in failed:
                where = f" [{f.column}]" if f.column else ""
                lines.append(f"    - {f.expectation}{where}: {f.detail}")
        if self.docs_index:
            lines.append(f"  data docs: {self.docs_index}")
        return "\n".join(lines)


def _masked(expr: str) -> str:
    """`expr` with its digits as '#', named <column>_masked."""
    return f"translate({expr}, '0123456789', '##########') AS {expr.split('.')[-1]}_masked"


def queries(schema: str, since: datetime | None) -> dict[str, str]:
    """The query asset of each table (`since` None = every row)."""
    if not _SCHEMA.match(schema):
        raise ValueError(f"not a plain schema name: {schema!r}")
    s = f'"{schema}"'
    lit = "NULL::timestamptz" if since is None else f"'{since.astimezone(UTC).isoformat()}'"

    def after(col: str) -> str:
        return f"({lit} IS NULL OR {col} >= {lit}::timestamptz)"

    return {
        "scored_transactions": f"""
SELECT transaction_id, card_last4, event_time, amount, score, decision, model_version,
       jsonb_typeof(features) AS features_type, {_masked('card_token')},
       {_masked('merchant')}, {_masked('category')}
FROM {s}.scored_transactions WHERE {after('event_time')}""",
        "alerts": f"""
SELECT a.transaction_id, a.event_time, a.score, a.threshold, a.review_status, a.label,
       s.decision AS scored_decision, jsonb_array_length(a.reasons) AS reason_count,
       {_masked('a.card_masked')}, {_masked('a.merchant')}, {_masked('a.reviewer')},
       {_masked('a.review_note')}
FROM {s}.alerts a LEFT JOIN {s}.scored_transactions s USING (transaction_id)
WHERE {after('a.event_time')}""",
        "aggregates": f"""
SELECT window_start, window_end, dimension, txn_count, amount_sum, alert_count, mean_score,
       extract(epoch FROM window_end - window_start) AS window_seconds, key,
       concat_ws(' | ', window_start, dimension, key) AS window_dimension_key,
       {_masked('key')}
FROM {s}.aggregates WHERE {after('window_start')}""",
        "rejected_events": f"""
SELECT source_topic, source_partition, source_offset, reason, payload_bytes,
       concat_ws('/', source_topic, source_partition, source_offset) AS source_position,
       octet_length(raw_bytes) AS raw_bytes_length, {_masked('raw_payload')},
       {_masked('reason')}, {_masked('field')}
FROM {s}.rejected_events WHERE {after('rejected_at')}""",
    }


def expectations(now: datetime) -> dict[str, list]:
    """The expectations of each table (GX 1.x classes), `now` = the check's clock."""
    import great_expectations.expectations as gxe

    latest = now + FUTURE_TOLERANCE

    def no_card_numbers(*cols: str) -> list:
        return [gxe.ExpectColumnValuesToNotMatchRegex(column=f"{c}_masked", regex=CARD_RUN)
                for c in cols]

    def between(col: str, lo=None, hi=None, **kw) -> gxe.ExpectColumnValuesToBeBetween:
        return gxe.ExpectColumnValuesToBeBetween(column=col, min_value=lo, max_value=hi, **kw)

    def not_null(*cols: str) -> list:
        return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in cols]

    return {
        "scored_transactions": [
            *not_null("transaction_id", "model_version", "event_time"),
            gxe.ExpectColumnValuesToBeUnique(column="transaction_id"),
            gxe.ExpectColumnValuesToMatchRegex(column="card_token_masked", regex=r"^[#a-f]{64}$"),
            gxe.ExpectColumnValuesToMatchRegex(column="card_last4", regex=r"^[0-9]{4}$"),
            between("score", 0, 1),
            gxe.ExpectColumnValuesToBeInSet(column="decision", value_set=["alert", "pass"]),
            between("amount", 0, None, strict_min=True),
            between("event_time", MIN_EVENT_TIME, latest),
            gxe.ExpectColumnValueLengthsToBeBetween(column="model_version", min_value=1),
            gxe.ExpectColumnValuesToBeInSet(column="features_type", value_set=["object"]),
            *no_card_numbers("merchant", "category"),
        ],
        "alerts": [
            *not_null("transaction_id", "scored_decision"),
            gxe.ExpectColumnValuesToBeUnique(column="transaction_id"),
            gxe.ExpectColumnValuesToBeInSet(column="scored_decision", value_set=["alert"]),
            gxe.ExpectColumnValuesToMatchRegex(column="card_masked_masked", regex=r"^\*{4}#{4}$"),
            between("score", 0, 1),
            between("threshold", 0, 1, strict_min=True, strict_max=True),
            between("reason_count", 1, None),
            gxe.ExpectColumnValuesToBeInSet(column="review_status",
                                            value_set=["open", "in_review", "closed"]),
            gxe.ExpectColumnValuesToBeInSet(column="label", value_set=["fraud", "legit"]),
            between("event_time", MIN_EVENT_TIME, latest),
            *no_card_numbers("merchant", "reviewer", "review_note"),
        ],
        "aggregates": [
            *not_null("key", "window_start"),
            between("txn_count", 1, None),
            between("alert_count", 0, None),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="txn_count",
                                                        column_B="alert_count", or_equal=True),
            between("amount_sum", 0, None),
            between("mean_score", 0, 1),
            gxe.ExpectColumnValuesToBeInSet(column="dimension", value_set=["category", "merchant"]),
            between("window_seconds", 0, None, strict_min=True),
            gxe.ExpectColumnValuesToBeUnique(column="window_dimension_key"),
            *no_card_numbers("key"),
        ],
        "rejected_events": [
            *not_null("reason", "source_topic", "source_offset"),
            gxe.ExpectColumnValueLengthsToBeBetween(column="reason", min_value=1),
            gxe.ExpectColumnValuesToBeUnique(column="source_position"),
            between("source_offset", 0, None),
            between("payload_bytes", 0, None),
            between("raw_bytes_length", 0, RAW_MAX_BYTES),
            *no_card_numbers("raw_payload", "reason", "field"),
        ],
    }


@contextmanager
def _password(password: str) -> Iterator[None]:
    """libpq reads PGPASSWORD: the password never enters GX's config or its data docs."""
    before = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = password
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = before


def connection_string(host: str, port: int, database: str, user: str) -> str:
    """SQLAlchemy URL (psycopg 3 driver), read-only transactions, no password in it."""
    options = quote("-c default_transaction_read_only=on")
    return (f"postgresql+psycopg://{quote(user)}@{host}:{port}/{quote(database)}"
            f"?options={options}&application_name=fraudstream-check")


class OutputCheckError(RuntimeError):
    """The checkpoint could not run (database unreachable, tables missing)."""


def check_outputs(url: str, password: str, docs_dir: Path, schema: str = "public",
                  since: datetime | None = None, now: datetime | None = None) -> OutputReport:
    """Run the checkpoint; render data docs into `docs_dir`. Never raises on bad data;
    raises OutputCheckError when it cannot read the tables."""
    from great_expectations.exceptions import GreatExpectationsError

    queries(schema, since)  # ValueError on a bad schema name, before any connection
    try:
        with _password(password):
            return _run_checkpoint(url, docs_dir, schema, since, now or datetime.now(UTC))
    except GreatExpectationsError as exc:
        raise OutputCheckError(str(exc)) from exc


def _run_checkpoint(url: str, docs_dir: Path, schema: str, since: datetime | None,
                    now: datetime) -> OutputReport:
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    docs_dir.mkdir(parents=True, exist_ok=True)
    context.add_data_docs_site("outputs", {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    source = context.data_sources.add_postgres(name="fraudstream", connection_string=url)
    suites = expectations(now)
    definitions = []
    for table, query in queries(schema, since).items():
        asset = source.add_query_asset(name=table, query=query)
        suite = context.suites.add(gx.ExpectationSuite(name=f"outputs_{table}"))
        for expectation in suites[table]:
            suite.add_expectation(expectation)
        definitions.append(context.validation_definitions.add(gx.ValidationDefinition(
            name=table, data=asset.add_batch_definition_whole_table("all"), suite=suite)))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=CHECKPOINT, validation_definitions=definitions,
        actions=[UpdateDataDocsAction(name="data_docs", site_names=["outputs"])],
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": 3}))
    result = checkpoint.run()
    rows: dict[str, int] = {}
    evaluated: dict[str, int] = {}
    failures: list[Failure] = []
    for run in result.run_results.values():
        table = run.suite_name.removeprefix("outputs_")
        evaluated[table] = len(run.results)
        for r in run.results:
            count = (r.result or {}).get("element_count")
            if count is not None:
                rows[table] = max(rows.get(table, 0), int(count))
            if not r.success:
                cfg = r.expectation_config
                failures.append(Failure(table, cfg.type, cfg.kwargs.get("column"), _detail(r)))
    index = docs_dir / "index.html"
    return OutputReport(bool(result.success), rows, evaluated, tuple(failures),
                        index if index.is_file() else None)


def _detail(r) -> str:
    if r.exception_info and r.exception_info.get("raised_exception"):
        return f"could not evaluate: {r.exception_info.get('exception_message')}"
    res = r.result or {}
    parts = []
    if res.get("unexpected_count"):
        parts.append(f"{res['unexpected_count']:,} unexpected of {res.get('element_count', 0):,}")
        sample = [str(v)[:60] for v in (res.get("partial_unexpected_list") or [])[:3]]
        if sample:
            parts.append(f"e.g. {sample}")
    elif "observed_value" in res:
        parts.append(f"observed {res['observed_value']}")
    kwargs = r.expectation_config.kwargs
    bounds = {k: str(kwargs[k]) for k in ("min_value", "max_value", "regex", "value_set")
              if kwargs.get(k) is not None}
    if bounds:
        parts.append(f"expected {bounds}")
    return "; ".join(parts) or "failed"
