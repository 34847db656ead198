"""Great Expectations suite for training input: stop training on data that is not what we think.

Checked (one expectation each, all evaluated, then reported together):
- schema: every `Transaction` column present;
- nulls: required fields never null, labels present (training needs them);
- ranges: amount > 0 and < 1e6, coordinates on Earth, city_pop >= 0, event time within
  2000..2100, label in {0, 1};
- category set: the 14 Sparkov categories;
- identity: transaction ids unique; card tokens are not raw card numbers (12-19 digits) and
  card_last4 is 4 digits;
- fraud-rate band: mean(label) within [fraud_rate_min, fraud_rate_max].
Uses great-expectations 1.x with an ephemeral context and a pandas data source.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from models.features import CATEGORIES
from schemas.transaction import Transaction

SUITE_NAME = "training_transactions_v1"
MIN_EVENT_TIME_MS = 946_684_800_000  # 2000-01-01
MAX_EVENT_TIME_MS = 4_102_444_800_000  # 2100-01-01


class DataValidationError(ValueError):
    """Training input failed validation; `report` holds the readable details."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.render())
        self.report = report


@dataclass(frozen=True)
class CheckResult:
    expectation: str
    column: str | None
    success: bool
    detail: str


@dataclass(frozen=True)
class ValidationReport:
    suite: str
    rows: int
    checks: tuple[CheckResult, ...]

    @property
    def success(self) -> bool:
        return all(c.success for c in self.checks)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.success)

    def render(self) -> str:
        head = (
            f"Data validation {'passed' if self.success else 'FAILED'} "
            f"({self.suite}, {self.rows:,} rows, {len(self.checks) - len(self.failures)}/"
            f"{len(self.checks)} expectations met)"
        )
        lines = [head]
        for c in self.failures:
            where = f" [{c.column}]" if c.column else ""
            lines.append(f"  - {c.expectation}{where}: {c.detail}")
        return "\n".join(lines)


def build_suite(fraud_rate_min: float, fraud_rate_max: float):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    required = [f.name for f in dataclasses.fields(Transaction) if f.default is dataclasses.MISSING]
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    suite.add_expectation(
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[f.name for f in dataclasses.fields(Transaction)], exact_match=False
        )
    )
    for col in (*required, "label"):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=col))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeBetween(
            column="amount", min_value=0, max_value=1_000_000, strict_min=True
        )
    )
    for col, lo, hi in (
        ("merchant_lat", -90, 90),
        ("home_lat", -90, 90),
        ("merchant_long", -180, 180),
        ("home_long", -180, 180),
        ("event_time_ms", MIN_EVENT_TIME_MS, MAX_EVENT_TIME_MS),
    ):
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(column=col, min_value=lo, max_value=hi)
        )
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="city_pop", min_value=0))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1]))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeInSet(column="category", value_set=list(CATEGORIES))
    )
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="transaction_id"))
    suite.add_expectation(
        gxe.ExpectColumnValuesToNotMatchRegex(column="card_token", regex=r"^\d{12,19}$")
    )
    suite.add_expectation(gxe.ExpectColumnValuesToMatchRegex(column="card_last4", regex=r"^\d{4}$"))
    suite.add_expectation(
        gxe.ExpectColumnMeanToBeBetween(
            column="label", min_value=fraud_rate_min, max_value=fraud_rate_max
        )
    )
    return suite


def validate_transactions(
    frame: pd.DataFrame, fraud_rate_min: float = 0.0005, fraud_rate_max: float = 0.05
) -> ValidationReport:
    """Run the suite on `frame` (one row per transaction). Never raises on bad data:
    returns the report; `require_valid` turns a failure into `DataValidationError`."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas(name="training_input")
    asset = source.add_dataframe_asset(name="transactions")
    batch_def = asset.add_batch_definition_whole_dataframe("all_rows")
    batch = batch_def.get_batch(batch_parameters={"dataframe": frame})
    suite = build_suite(fraud_rate_min, fraud_rate_max)
    result = batch.validate(suite)
    checks = []
    for r in result.results:
        cfg = r.expectation_config
        kwargs = dict(cfg.kwargs)
        checks.append(
            CheckResult(
                expectation=cfg.type,
                column=kwargs.get("column"),
                success=bool(r.success),
                detail=_describe(r, kwargs),
            )
        )
    return ValidationReport(SUITE_NAME, len(frame), tuple(checks))


def require_valid(report: ValidationReport) -> ValidationReport:
    if not report.success:
        raise DataValidationError(report)
    return report


def _describe(r, kwargs: dict) -> str:
    if r.exception_info and r.exception_info.get("raised_exception"):
        return f"could not evaluate: {r.exception_info.get('exception_message')}"
    res = r.result or {}
    parts = []
    if "observed_value" in res:
        obs = res["observed_value"]
        parts.append(f"observed {obs:.5g}" if isinstance(obs, float) else f"observed {obs}")
    if res.get("unexpected_count"):
        parts.append(
            f"{res['unexpected_count']:,} unexpected ({res.get('unexpected_percent', 0):.3g} %)"
        )
        sample = res.get("partial_unexpected_list") or []
        if sample and kwargs.get("column") not in ("card_token",):
            parts.append(f"e.g. {sample[:3]}")
    if res.get("details", {}).get("mismatched"):
        parts.append(f"mismatched {res['details']['mismatched']}")
    bounds = {k: kwargs[k] for k in ("min_value", "max_value") if k in kwargs}
    if bounds:
        parts.append(f"expected {bounds}")
    if "value_set" in kwargs and len(kwargs["value_set"]) <= 3:
        parts.append(f"expected in {kwargs['value_set']}")
    return "; ".join(parts) or "failed"
