"""Loader for the Kaggle "Credit Card Transactions Fraud Detection" CSV layout (Sparkov).

`load_kaggle_csv(path, tokenizer)` reads `fraudTrain.csv` / `fraudTest.csv` (exact 23-column
header, the first column unnamed) and returns a `LoadResult`: the valid rows as
`Transaction`s sorted by (event time, card token, trans_num), and every rejected row counted by
reason with its line number. Nothing is dropped silently.

Rules (DATA.md): event time is `trans_date_trans_time` (naive, interpreted in `timezone`,
default UTC), never `unix_time` (shifted ~7 years); `cc_num` is read as text and tokenized at
once (never a float, never kept); `zip` is zero-padded to 5 digits; `trans_num` is the
transaction id (a repeated one is rejected as a duplicate); `is_fraud` is the label.
The csv module reads every cell as a string, so no column is ever coerced to a float.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.data.profiles import CATEGORIES
from schemas.card_token import CardTokenizer, InvalidPanError
from schemas.transaction import Transaction

HEADER: tuple[str, ...] = (
    "", "trans_date_trans_time", "cc_num", "merchant", "category", "amt", "first", "last",
    "gender", "street", "city", "state", "zip", "lat", "long", "city_pop", "job", "dob",
    "trans_num", "unix_time", "merch_lat", "merch_long", "is_fraud",
)
_COL = {name: i for i, name in enumerate(HEADER)}
_CATEGORY_SET = frozenset(CATEGORIES)
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PAN = re.compile(r"^\d{12,19}$")
_ZIP = re.compile(r"^\d{1,5}$")
_STATE = re.compile(r"^[A-Z]{2}$")
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_TIME = datetime(1990, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(2100, 1, 1, tzinfo=UTC)
MAX_AMOUNT = 1_000_000.0


class KaggleFormatError(ValueError):
    """The file is not in the Kaggle layout at all (header); no row is loaded."""


class RowError(ValueError):
    """One row is invalid; `reason` is `"<column>: <why>"` (never contains a card number)."""

    def __init__(self, column: str, why: str) -> None:
        super().__init__(f"{column}: {why}")
        self.reason = f"{column}: {why}"


@dataclass
class LoadResult:
    """Valid transactions (sorted) and the rejected rows: counts by reason + (line, reason)."""

    transactions: list[Transaction] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    rejected_rows: list[tuple[int, str]] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return len(self.transactions) + sum(self.rejected.values())


def _float(row: list[str], name: str, lo: float, hi: float) -> float:
    text = row[_COL[name]].strip()
    try:
        value = float(text)
    except ValueError:
        raise RowError(name, "not a number") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise RowError(name, f"out of range [{lo:g}, {hi:g}]")
    return value


class _RowParser:
    def __init__(self, tokenizer: CardTokenizer, timezone: str) -> None:
        self.tokenizer = tokenizer
        try:
            self.tz = UTC if timezone.upper() == "UTC" else ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise KaggleFormatError(f"unknown timezone {timezone!r}") from None
        self.seen_ids: set[str] = set()
        # PAN -> (token, last4) for this load only (the files have ~1k cards and ~1M rows);
        # the parser object, and with it this map, is dropped when the load returns.
        self.cards: dict[str, tuple[str, str]] = {}

    def event_time_ms(self, text: str) -> int:
        if not _TIME.match(text):
            raise RowError("trans_date_trans_time", "not YYYY-MM-DD HH:MM:SS")
        try:
            moment = datetime.fromisoformat(text).replace(tzinfo=self.tz)
        except ValueError:
            raise RowError("trans_date_trans_time", "not a valid date and time") from None
        if not _MIN_TIME <= moment < _MAX_TIME:
            raise RowError("trans_date_trans_time", "outside 1990-01-01 .. 2100-01-01")
        return (moment - _EPOCH) // timedelta(milliseconds=1)

    def parse(self, row: list[str]) -> Transaction:
        if len(row) != len(HEADER):
            raise RowError("row", f"has {len(row)} columns, expected {len(HEADER)}")
        event_time_ms = self.event_time_ms(row[_COL["trans_date_trans_time"]].strip())
        pan = row[_COL["cc_num"]].strip()
        if not _PAN.match(pan):
            raise RowError("cc_num", "not 12-19 digits")
        card = self.cards.get(pan)
        if card is None:
            try:
                card = (self.tokenizer.token(pan), self.tokenizer.last4(pan))
            except InvalidPanError as exc:  # pragma: no cover - the regex already checks
                raise RowError("cc_num", str(exc)) from None
            self.cards[pan] = card
        token, last4 = card
        merchant = row[_COL["merchant"]]
        if not merchant or len(merchant) > 200:
            raise RowError("merchant", "empty or longer than 200 characters")
        category = row[_COL["category"]].strip()
        if category not in _CATEGORY_SET:
            raise RowError("category", "not one of the 14 categories")
        amount = _float(row, "amt", 0.0, MAX_AMOUNT)
        if amount <= 0:
            raise RowError("amt", "must be > 0")
        gender = row[_COL["gender"]].strip() or None
        if gender not in (None, "F", "M"):
            raise RowError("gender", "not F or M")
        state = row[_COL["state"]].strip() or None
        if state is not None and not _STATE.match(state):
            raise RowError("state", "not a 2-letter code")
        zip_text = row[_COL["zip"]].strip()
        if not _ZIP.match(zip_text):
            raise RowError("zip", "not 1-5 digits")
        lat = _float(row, "lat", -90, 90)
        long = _float(row, "long", -180, 180)
        city_pop_text = row[_COL["city_pop"]].strip()
        if not city_pop_text.isdigit() or not city_pop_text.isascii():
            raise RowError("city_pop", "not a non-negative integer")
        dob = row[_COL["dob"]].strip()
        birth_year = None
        if dob:
            if not _DATE.match(dob):
                raise RowError("dob", "not YYYY-MM-DD")
            try:
                birth_year = datetime.fromisoformat(dob).year
            except ValueError:
                raise RowError("dob", "not a valid date") from None
        trans_num = row[_COL["trans_num"]].strip()
        if not trans_num or len(trans_num) > 64:
            raise RowError("trans_num", "empty or longer than 64 characters")
        merch_lat = _float(row, "merch_lat", -90, 90)
        merch_long = _float(row, "merch_long", -180, 180)
        label_text = row[_COL["is_fraud"]].strip()
        if label_text not in ("0", "1"):
            raise RowError("is_fraud", "not 0 or 1")
        if trans_num in self.seen_ids:
            raise RowError("trans_num", "duplicate")
        self.seen_ids.add(trans_num)
        return Transaction(
            transaction_id=trans_num, event_time_ms=event_time_ms, card_token=token,
            card_last4=last4, amount=amount, merchant=merchant, category=category,
            merchant_lat=merch_lat, merchant_long=merch_long, home_lat=lat, home_long=long,
            city_pop=int(city_pop_text), gender=gender, birth_year=birth_year,
            zip=zip_text.zfill(5), state=state, label=int(label_text),
        )


def load_kaggle_csv(path: Path | str, tokenizer: CardTokenizer, timezone: str = "UTC",
                    keep_rejected_rows: int = 100_000) -> LoadResult:
    """Load a Kaggle-layout CSV. Raises `KaggleFormatError` if the header is not the layout.

    `rejected_rows` keeps the first `keep_rejected_rows` (line number, reason) pairs; the
    `rejected` counter always counts all of them.
    """
    path = Path(path)
    parser = _RowParser(tokenizer, timezone)
    result = LoadResult()
    # surrogateescape: a bad byte never aborts the file; the row holding it is rejected below.
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise KaggleFormatError(f"{path}: empty file (no header)") from None
        except csv.Error as exc:
            raise KaggleFormatError(f"{path}: unreadable header ({exc})") from None
        if tuple(h.strip() for h in header) != HEADER:
            raise KaggleFormatError(
                f"{path}: header is not the Kaggle layout; expected {len(HEADER)} columns "
                f"',{','.join(HEADER[1:])}'"
            )
        last_error_line = -1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if reader.line_num == last_error_line:  # the reader cannot move on: stop loudly
                    raise KaggleFormatError(f"{path}:{reader.line_num}: {exc}") from None
                last_error_line = reader.line_num
                _reject(result, reader.line_num, "row: unreadable CSV", keep_rejected_rows)
                continue
            if not row:
                _reject(result, reader.line_num, "row: blank line", keep_rejected_rows)
                continue
            if _SURROGATE.search("\x1f".join(row)):
                _reject(result, reader.line_num, "row: not valid UTF-8", keep_rejected_rows)
                continue
            try:
                result.transactions.append(parser.parse(row))
            except RowError as exc:
                _reject(result, reader.line_num, exc.reason, keep_rejected_rows)
    result.transactions.sort(key=lambda t: (t.event_time_ms, t.card_token, t.transaction_id))
    return result


def _reject(result: LoadResult, line: int, reason: str, keep: int) -> None:
    result.rejected[reason] += 1
    if len(result.rejected_rows) < keep:
        result.rejected_rows.append((line, reason))
