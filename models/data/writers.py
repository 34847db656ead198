"""Write transactions to files: JSONL (wire contract v1), CSV or Parquet (`Transaction` columns).

- JSONL: one wire v1 object per line (`schemas.wire`), exactly what producers put on Kafka;
  `parse_transaction` reads each line back.
- CSV / Parquet: one column per `Transaction` field (`event_time_ms`, `amount`, `label`, ...),
  typed and lossless for training; `read_records` reads all three formats back.
No format ever contains a card number: only the token and the last four digits.
"""

from __future__ import annotations

import csv
import dataclasses
import operator
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from schemas.transaction import Transaction
from schemas.wire import to_json_bytes

COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Transaction))
# attrgetter, not dataclasses.astuple: astuple deep-copies every field and was 10x slower.
_ROW = operator.attrgetter(*COLUMNS)
FORMATS = ("jsonl", "csv", "parquet")
_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
           ".parquet": "parquet", ".pq": "parquet"}


class UnknownFormatError(ValueError):
    """The output format cannot be inferred or is not supported."""


def format_for(path: Path, fmt: str | None = None) -> str:
    """The format to use: explicit `fmt`, else from the file suffix."""
    if fmt:
        if fmt not in FORMATS:
            raise UnknownFormatError(f"unknown format {fmt!r}; choose one of {FORMATS}")
        return fmt
    found = _SUFFIX.get(path.suffix.lower())
    if found is None:
        raise UnknownFormatError(
            f"{path}: cannot infer the format from {path.suffix!r}; use .jsonl, .csv or .parquet"
        )
    return found


def write_jsonl(records: Iterable[Transaction], path: Path) -> int:
    """Write wire v1 JSON lines; returns the number of records."""
    n = 0
    with path.open("wb") as fh:
        for txn in records:
            fh.write(to_json_bytes(txn))
            fh.write(b"\n")
            n += 1
    return n


def write_csv(records: Iterable[Transaction], path: Path) -> int:
    """Write one row per transaction with a header of `Transaction` field names."""
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for txn in records:
            writer.writerow(["" if v is None else v for v in _ROW(txn)])
            n += 1
    return n


def _arrow_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("transaction_id", pa.string()),
            ("event_time_ms", pa.int64()),
            ("card_token", pa.string()),
            ("card_last4", pa.string()),
            ("amount", pa.float64()),
            ("merchant", pa.string()),
            ("category", pa.string()),
            ("merchant_lat", pa.float64()),
            ("merchant_long", pa.float64()),
            ("home_lat", pa.float64()),
            ("home_long", pa.float64()),
            ("city_pop", pa.int64()),
            ("gender", pa.string()),
            ("birth_year", pa.int32()),
            ("zip", pa.string()),
            ("state", pa.string()),
            ("label", pa.int8()),
            ("schema_version", pa.int32()),
        ]
    )


def write_parquet(records: Iterable[Transaction], path: Path, batch_rows: int = 100_000) -> int:
    """Write a Parquet file (zstd) in row groups of `batch_rows`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    n = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        batch: list[tuple] = []

        def flush() -> None:
            columns = list(zip(*batch, strict=True))
            writer.write_table(pa.Table.from_arrays(
                [pa.array(col, type=schema.field(i).type) for i, col in enumerate(columns)],
                schema=schema,
            ))
            batch.clear()

        for txn in records:
            batch.append(_ROW(txn))
            n += 1
            if len(batch) >= batch_rows:
                flush()
        if batch:
            flush()
    return n


_WRITERS: dict[str, Callable[[Iterable[Transaction], Path], int]] = {
    "jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet,
}


def write_records(records: Iterable[Transaction], path: Path, fmt: str | None = None) -> int:
    """Write `records` to `path` in `fmt` (or the suffix's format); returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _WRITERS[format_for(path, fmt)](records, path)


def with_progress(records: Iterable[Transaction], total: int | None, description: str,
                  every: int = 5000) -> Iterator[Transaction]:
    """Pass `records` through while a rich progress bar counts them (refreshed every `every`)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=total)
        pending = 0
        for txn in records:
            yield txn
            pending += 1
            if pending >= every:
                progress.advance(task, pending)
                pending = 0
        progress.advance(task, pending)
        if total is not None:
            progress.update(task, total=progress.tasks[0].completed)


def _from_row(row: dict) -> Transaction:
    def opt(name: str, cast):
        value = row.get(name)
        return None if value is None or value == "" else cast(value)

    return Transaction(
        transaction_id=str(row["transaction_id"]), event_time_ms=int(row["event_time_ms"]),
        card_token=str(row["card_token"]), card_last4=str(row["card_last4"]),
        amount=float(row["amount"]), merchant=str(row["merchant"]), category=str(row["category"]),
        merchant_lat=float(row["merchant_lat"]), merchant_long=float(row["merchant_long"]),
        home_lat=float(row["home_lat"]), home_long=float(row["home_long"]),
        city_pop=int(row["city_pop"]), gender=opt("gender", str),
        birth_year=opt("birth_year", int), zip=opt("zip", str), state=opt("state", str),
        label=opt("label", int), schema_version=int(row.get("schema_version") or 1),
    )


def read_records(path: Path, fmt: str | None = None, tokenizer=None) -> Iterator[Transaction]:
    """Read back a file written by `write_records` (JSONL lines go through the wire parser).

    `tokenizer` is only needed for JSONL lines that carry a raw `cc_num`.
    """
    kind = format_for(path, fmt)
    if kind == "jsonl":
        from schemas.card_token import CardTokenizer
        from schemas.parse import parse_transaction

        tok = tokenizer or CardTokenizer(b"unused: records carry card tokens")
        with path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    yield parse_transaction(line, tok)
    elif kind == "csv":
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                yield _from_row(row)
    else:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches():
            for row in batch.to_pylist():
                yield _from_row(row)
