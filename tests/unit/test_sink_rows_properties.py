"""Issue 10: whatever bytes arrive, every row the job builds is one every sink accepts.

Record values (arbitrary bytes, valid-looking JSON with hostile values in any field, the
hostile corpus) go through the job's own code: `parse_batch` -> `score_batch` -> the row
converters of `connectors.rows`; each REJECTED and SCORED tuple is then checked against the
sinks' limits (tests/sink_checks.py). The same rows are COPYed into Postgres by
tests/integration/test_sink_rows_postgres.py.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pyflink")  # connectors.rows builds Flink type objects

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from connectors.rows import dead_letter_to_tuple, scored_to_tuple  # noqa: E402
from models.hot_path import RawRecord, RecordParser, parse_batch, score_batch  # noqa: E402
from schemas.card_token import CardTokenizer  # noqa: E402
from schemas.wire import transaction_to_wire  # noqa: E402
from tests.fakes import FakeScorer  # noqa: E402
from tests.hostile_corpus import DEAD, SCORED, expected_raw, hostile_corpus  # noqa: E402
from tests.hostile_strategies import record_values  # noqa: E402
from tests.property_settings import property_settings  # noqa: E402
from tests.sink_checks import check_rejected_row, check_scored_row  # noqa: E402

TOK = CardTokenizer(b"sink-rows-property-test-key")
PREVIEW_BYTES = 256


def job_rows(values: list[bytes | None]) -> tuple[list[tuple], list[tuple], list]:
    """(REJECTED tuples, SCORED tuples, dead letters) the job builds from these values."""
    parser = RecordParser("src", TOK, PREVIEW_BYTES)
    records = [RawRecord(v, i % 3, 1000 + i) for i, v in enumerate(values)]
    parsed, dead = parse_batch(records, parser)
    scorer = FakeScorer()
    scored = score_batch(parsed, {}, scorer, watermark_ms=0)
    rejected_rows = [dead_letter_to_tuple(d) for d in dead]
    scored_rows = [scored_to_tuple(e) for e in scored]
    return rejected_rows, scored_rows, dead


@property_settings(400)
@given(st.lists(record_values(), min_size=1, max_size=8))
def test_every_row_from_any_input_fits_every_sink(values):
    rejected_rows, scored_rows, dead = job_rows(values)
    assert len(rejected_rows) + len(scored_rows) == len(values)  # none lost, none doubled
    by_offset = {1000 + i: v for i, v in enumerate(values)}
    for row, letter in zip(rejected_rows, dead, strict=True):
        check_rejected_row(row)
        assert (letter.raw_bytes, letter.raw_exact) == expected_raw(by_offset[letter.offset])
        assert len(letter.raw_payload.encode()) <= PREVIEW_BYTES + 32
    for row in scored_rows:
        check_scored_row(row)


def _corpus():
    txn = next(iter(_generate()))
    return hostile_corpus("unit", transaction_to_wire(txn))


def _generate():
    from datetime import date

    from models.data.generator import GeneratorConfig, generate

    return generate(GeneratorConfig(cards=3, start=date(2012, 1, 1), days=2, seed=3), TOK)


CORPUS = _corpus()


def test_corpus_is_big_and_mostly_dead():
    assert len([c for c in CORPUS if c.outcome == DEAD]) >= 60
    assert len({c.name for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", [c for c in CORPUS if not c.future_rule], ids=lambda c: c.name)
def test_hostile_case_has_its_outcome_and_fits_every_sink(case):
    rejected_rows, scored_rows, dead = job_rows([case.value])
    if case.outcome == SCORED:
        assert not dead, dead and dead[0].reason
        check_scored_row(scored_rows[0])
        assert scored_rows[0][0] == case.transaction_id
        return
    assert case.outcome == DEAD and not scored_rows
    (letter,) = dead
    msg = check_rejected_row(rejected_rows[0])
    if case.field:
        assert letter.field == case.field, letter.reason
    assert (letter.raw_bytes, letter.raw_exact) == expected_raw(case.value)
    # no card number in clear anywhere in the dead letter
    assert "4111111111111111" not in letter.raw_payload + letter.reason + rejected_rows[0][-1]
    assert b"4111111111111111" not in (letter.raw_bytes or b"")
    assert msg["payload_bytes"] == (0 if case.value is None else len(case.value))
