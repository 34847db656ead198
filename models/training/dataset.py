"""Training data: load transactions, tabulate them for validation, compute features, split by time.

Features come from `models.features.offline_features` over the stream in event-time order
(ties: card token, transaction id): the same code and order the streaming job sees.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.features import FEATURE_NAMES, offline_features
from models.training.config import TrainConfig
from schemas.transaction import Transaction

TRANSACTION_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Transaction))


class DatasetError(ValueError):
    """The input cannot be turned into labelled transactions (format, missing labels)."""


def event_order_key(t: Transaction) -> tuple[int, str, str]:
    return (t.event_time_ms, t.card_token, t.transaction_id)


def generate_transactions(cfg: TrainConfig) -> list[Transaction]:
    """Generated stream (the project generator, tokenized at source), event-time ordered."""
    from models.data.generator import GeneratorConfig, generate
    from schemas.card_token import CardTokenizer

    gen_cfg = GeneratorConfig(cards=cfg.cards, days=cfg.days, seed=cfg.seed)
    return list(generate(gen_cfg, CardTokenizer(cfg.token_key)))


def read_transactions(path: Path, token_key: bytes) -> list[Transaction]:
    """Transactions from a file `fraudstream generate` wrote (JSONL wire records, CSV or
    Parquet of `Transaction` columns) or from a Kaggle-layout CSV (recognised by its header).

    JSONL lines go through the wire parser, so a raw `cc_num` is tokenized with `token_key`.
    """
    from models.data.writers import read_records
    from schemas.card_token import CardTokenizer

    suffix = path.suffix.lower()
    if suffix == ".csv" and _is_kaggle_layout(path):
        return _read_kaggle_csv(path, token_key)
    if suffix in (".jsonl", ".csv"):
        from schemas.parse import TransactionParseError

        try:
            return list(read_records(path, tokenizer=CardTokenizer(token_key)))
        except TransactionParseError as exc:
            raise DatasetError(f"{path}: not a valid transaction record: {exc}") from exc
    if suffix in (".parquet", ".pq"):
        return frame_to_transactions(pd.read_parquet(path), source=str(path))
    raise DatasetError(f"{path}: unknown input format {suffix!r} (jsonl, parquet, csv)")


def _is_kaggle_layout(path: Path) -> bool:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        header = fh.readline()
    return "trans_date_trans_time" in header and "cc_num" in header


def _read_kaggle_csv(path: Path, token_key: bytes) -> list[Transaction]:
    try:
        from models.data import kaggle
    except ImportError as exc:  # pragma: no cover - depends on the data engineer's module
        raise DatasetError("the Kaggle CSV loader (models.data.kaggle) is not available") from exc
    from schemas.card_token import CardTokenizer

    result = kaggle.load_kaggle_csv(path, CardTokenizer(token_key))
    if result.rejected:
        counts = ", ".join(f"{reason}: {n:,}" for reason, n in result.rejected.most_common())
        print(f"{path.name}: {sum(result.rejected.values()):,} rows rejected ({counts})")
    return result.transactions


def frame_to_transactions(frame: pd.DataFrame, source: str = "<frame>") -> list[Transaction]:
    """Rows with `Transaction` field columns -> transactions. Raw card numbers are refused."""
    if "card_number" in frame.columns or "cc_num" in frame.columns:
        raise DatasetError(f"{source}: raw card numbers are not accepted here; tokenize first")
    required = [f.name for f in dataclasses.fields(Transaction) if f.default is dataclasses.MISSING]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DatasetError(f"{source}: missing columns {missing}")
    cols = [c for c in TRANSACTION_COLUMNS if c in frame.columns]
    out = []
    for rec in frame[cols].to_dict("records"):
        clean = {k: (None if _is_missing(v) else v) for k, v in rec.items()}
        clean["event_time_ms"] = int(clean["event_time_ms"])
        if clean.get("label") is not None:
            clean["label"] = int(clean["label"])
        out.append(Transaction(**clean))
    return out


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def transactions_frame(txns: Iterable[Transaction]) -> pd.DataFrame:
    """One row per transaction, one column per `Transaction` field (for validation/summary)."""
    rows = txns if isinstance(txns, list) else list(txns)
    return pd.DataFrame({name: [getattr(t, name) for t in rows] for name in TRANSACTION_COLUMNS})


@dataclass
class FeatureTable:
    """Feature matrix in event-time order, with what evaluation needs beside the features."""

    x: np.ndarray  # float32 (n, len(FEATURE_NAMES))
    y: np.ndarray  # int8 labels
    time_ms: np.ndarray  # int64 event times
    amount: np.ndarray  # float64 amounts ($)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, mask: np.ndarray) -> FeatureTable:
        return FeatureTable(self.x[mask], self.y[mask], self.time_ms[mask], self.amount[mask])


def build_features(
    txns: list[Transaction], progress: Callable[[int, int], None] | None = None
) -> FeatureTable:
    """Features for `txns` (sorted here into event-time order). Every row needs a label.

    `progress(done, total)` is called every 20,000 rows and at the end."""
    ordered = sorted(txns, key=event_order_key)
    n = len(ordered)
    x = np.empty((n, len(FEATURE_NAMES)), dtype=np.float32)
    y = np.empty(n, dtype=np.int8)
    times = np.empty(n, dtype=np.int64)
    amounts = np.empty(n, dtype=np.float64)
    for i, (t, row) in enumerate(offline_features(ordered)):
        if t.label is None:
            raise DatasetError(f"transaction {t.transaction_id} has no label")
        x[i] = row
        y[i] = t.label
        times[i] = t.event_time_ms
        amounts[i] = t.amount
        if progress is not None and i % 20_000 == 0:
            progress(i, n)
    if progress is not None:
        progress(n, n)
    return FeatureTable(x, y, times, amounts)


@dataclass
class TimeSplit:
    train: FeatureTable
    validation: FeatureTable
    test: FeatureTable
    boundaries_ms: tuple[int, int, int, int]  # start, validation start, test start, end


def split_by_time(
    table: FeatureTable, train_fraction: float, validation_fraction: float
) -> TimeSplit:
    """Split on event time (never randomly): [start, v) train, [v, t) validation, [t, end] test.

    Boundaries are at UTC midnights so a day is never cut in two.
    """
    if not (
        0 < train_fraction and 0 < validation_fraction and train_fraction + validation_fraction < 1
    ):
        raise ValueError("fractions must be positive and leave room for a test window")
    day = 86_400_000
    start, end = int(table.time_ms.min()), int(table.time_ms.max())
    span = end - start
    v = (start + int(span * train_fraction)) // day * day
    t = (start + int(span * (train_fraction + validation_fraction))) // day * day
    tm = table.time_ms
    return TimeSplit(
        train=table.take(tm < v),
        validation=table.take((tm >= v) & (tm < t)),
        test=table.take(tm >= t),
        boundaries_ms=(start, v, t, end),
    )
