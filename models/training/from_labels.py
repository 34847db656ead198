"""`fraudstream train --labels`: from analyst labels to a registered candidate model.

    labels (CSV export or Postgres alerts) + the job's stored rows
      -> join over the labelled window (`models.training.labels`: truth per row, history
         replayed for the features)
      -> the data validation suite on the training rows
      -> the training pipeline from the feature table on (`train_on_table`: time split,
         compared models, cost threshold, ONNX export, report), registered NOT as default
      -> candidate vs the current default on the same rows: the split's test window (the
         later part), each model at its own frozen threshold (PR-AUC, precision, recall,
         alerts/day, cost), with the metrics code the training report uses
      -> report.md gains the comparison and how each row was labelled; metadata.json gains
         `labels` (provenance, read by `fraudstream retrain --when-due`) and `comparison`.
The rows and labels are read by the caller (`connectors.label_store`), so this stays pure of
SQL; `now` names the version and stamps the record.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from models.registry import default_model_dir
from models.training.config import TrainConfig
from models.training.dataset import DatasetError, FeatureTable, split_by_time, transactions_frame
from models.training.labels import (
    DEFAULT_HISTORY_MS,
    TRUTH_ORDER,
    TRUTH_PASSED_LEGIT,
    TRUTH_RECORD,
    TRUTH_UNKNOWN,
    AnalystLabel,
    LabelledWindow,
    StoredRow,
    feature_table,
    from_ms,
    join_labels,
    label_window,
    training_transactions,
)
from models.training.metrics import AtThreshold, Metrics, at_threshold, evaluate
from models.training.pipeline import Log, TrainResult, _code_commit, train_on_table
from models.training.retrain_policy import LABELS_KEY

RowFetcher = Callable[[int, int, int], Iterable[StoredRow]]  # (history start, start, end) ms


@dataclass(frozen=True)
class LabelRun:
    """One `train --labels` run: training settings, where the labels came from (for the
    report), the window (None: the labelled span) and how much history to replay."""

    train: TrainConfig
    source: str
    since_ms: int | None = None
    until_ms: int | None = None
    history_ms: int = DEFAULT_HISTORY_MS


@dataclass(frozen=True)
class Side:
    version: str
    metrics: Metrics
    at: AtThreshold


@dataclass(frozen=True)
class Comparison:
    """Candidate and current default on the same rows (the time split's test window)."""

    window_ms: tuple[int, int]
    rows: int
    frauds: int
    candidate: Side
    default: Side

    def as_dict(self) -> dict:
        return {
            "window_ms": list(self.window_ms), "rows": self.rows, "frauds": self.frauds,
            **{name: {"version": s.version, "metrics": s.metrics.as_dict(), "at_threshold":
                      asdict(s.at)} for name, s in (("candidate", self.candidate),
                                                    ("default", self.default))},
        }


@dataclass
class LabelTrainResult:
    result: TrainResult
    window: LabelledWindow
    comparison: Comparison
    report_path: Path


def run_label_training(run: LabelRun, labels: list[AnalystLabel], fetch_rows: RowFetcher,
                       log: Log = print, command: str | None = None,
                       now: datetime | None = None) -> LabelTrainResult:
    """Every step of the module docstring. Raises DatasetError (nothing to train on),
    DataValidationError or TrainingError (nothing registered)."""
    now = now or datetime.now(UTC)
    start, end = label_window(labels, run.since_ms, run.until_ms)
    history_start = start - run.history_ms
    log(f"{len(labels):,} analyst labels ({run.source}); window {_iso(start)} .. {_iso(end)}, "
        f"history from {_iso(history_start)}; reading stored transactions ...")
    window = join_labels(labels, fetch_rows(history_start, start, end), start, end,
                         history_start)
    s = window.summary()
    log(f"{window.training_rows:,} training rows ({_counts(s['truth'])}), "
        f"{window.history_rows:,} replayed for features only, {window.not_rebuildable:,} "
        f"written before migration 007 (skipped); labels used {window.labels_used:,}, "
        f"outside the window {window.labels_outside:,}, without a stored transaction "
        f"{window.labels_unmatched:,}")
    if window.labels_used == 0:
        raise DatasetError("no analyst label matches a stored transaction that can be rebuilt "
                           "(rows written before migration 007 carry no coordinates)")
    data_summary = _validated_summary(run, window, start, end, log)
    cfg = dataclasses.replace(
        run.train, set_default=False,
        model_version=run.train.model_version or f"labels-{now:%Y%m%dT%H%M%SZ}")
    log("computing features (offline_features over the replayed history) ...")
    table = feature_table(window)
    result = train_on_table(cfg, table, data_summary, log, command)
    log("comparing with the current default on the test window ...")
    comparison = compare_with_default(cfg, table, result.out_dir,
                                      default_model_dir(cfg.registry_dir))
    report = result.out_dir / "report.md"
    _insert_section(report, render_comparison(comparison, cfg, result.model_version)
                    + render_labels(window, run.source))
    _update_metadata(result.out_dir / "metadata.json", {
        LABELS_KEY: {**s, "source": run.source, "made_at": now.isoformat(),
                     "data_end_ms": int(table.time_ms.max())},
        "comparison": comparison.as_dict(),
    })
    return LabelTrainResult(result, window, comparison, report)


def _validated_summary(run: LabelRun, window: LabelledWindow, start: int, end: int,
                       log: Log) -> dict:
    from models.validation import require_valid, validate_transactions

    frame = transactions_frame(training_transactions(window))
    report = require_valid(validate_transactions(frame, run.train.fraud_rate_min,
                                                 run.train.fraud_rate_max))
    log(report.render())
    return {
        "source": f"{window.labels_used:,} analyst labels ({run.source}) joined with "
                  f"scored_transactions, {_iso(start)} .. {_iso(end)}",
        "rows": int(len(frame)),
        "cards": int(frame["card_token"].nunique()),
        "frauds": int(frame["label"].sum()),
        "fraud_rate": float(frame["label"].mean()),
        "code_commit": _code_commit(),
        "validation_suite": report.suite,
        "validation_checks": len(report.checks),
    }


def compare_with_default(cfg: TrainConfig, table: FeatureTable, candidate_dir: Path,
                         default_dir: Path) -> Comparison:
    """Both models on the test window of `cfg`'s time split of `table` (the rows the
    candidate's own test metrics use), each at its own threshold."""
    from models.scoring import Scorer

    test = split_by_time(table, cfg.train_fraction, cfg.validation_fraction).test
    sides = []
    for path in (candidate_dir, default_dir):
        scorer = Scorer.load(path, intra_op_threads=cfg.threads)
        scores = np.asarray(scorer.score_batch(test.x), dtype=np.float64)
        sides.append(Side(
            scorer.model_version,
            evaluate(test.y, scores, test.time_ms, cfg.top_k_per_day),
            at_threshold(test.y, scores, test.amount, test.time_ms, scorer.threshold,
                         cfg.review_cost),
        ))
    return Comparison((int(test.time_ms.min()), int(test.time_ms.max())), len(test),
                      int(test.y.sum()), sides[0], sides[1])


def render_comparison(c: Comparison, cfg: TrainConfig, version: str) -> str:
    cand, dflt = c.candidate, c.default
    saved = dflt.at.cost - cand.at.cost
    lines = [
        "## Candidate vs the current default (same rows)",
        "",
        f"Both models score the same {c.rows:,} transactions ({c.frauds:,} frauds) of the test "
        f"window, {_iso(c.window_ms[0])} .. {_iso(c.window_ms[1])}: the later part of the time "
        "split (the candidate trained on the earlier part and chose its threshold on the "
        "middle one). Each model at its own frozen threshold; cost = missed fraud $ + "
        f"${cfg.review_cost:g} per alert.",
        "",
        "| model | version | PR-AUC | recall @1% FPR | ROC-AUC | threshold | alerts | "
        "alerts/day | precision | recall | missed fraud $ | cost $ |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in (("candidate", cand), ("current default", dflt)):
        m, a = s.metrics, s.at
        lines.append(
            f"| {name} | `{s.version}` | {m.pr_auc:.4f} | {m.recall_at_1pct_fpr:.4f} | "
            f"{m.roc_auc:.4f} | {a.threshold:.4f} | {a.alerts:,} | {a.alerts_per_day:.1f} | "
            f"{a.precision:.3f} | {a.recall:.3f} | {a.missed_fraud_amount:,.0f} | "
            f"{a.cost:,.0f} |")
    verdict = (f"costs ${saved:,.0f} less than" if saved > 0 else
               f"costs ${-saved:,.0f} more than" if saved < 0 else "costs the same as")
    lines += [
        "",
        f"On this window the candidate {verdict} the current default (PR-AUC "
        f"{cand.metrics.pr_auc - dflt.metrics.pr_auc:+.4f}). Promotion stays a human "
        f"decision: `fraudstream model shadow {version}`, then `fraudstream model compare` "
        f"on live traffic, then `fraudstream model promote {version}`.",
    ]
    return "\n".join(lines) + "\n\n"


_TRUTH_TEXT = {
    TRUTH_RECORD: "the `label` the producer sent with the record (generator, labelled "
                  "replay), which the job stores with every scored transaction",
    TRUTH_PASSED_LEGIT: "no label and no ground truth on a transaction the model passed: "
                        "taken as legit. Fraud nobody reported is invisible here, so missed "
                        "fraud is under-counted for both models alike (recall is an upper "
                        "bound)",
    TRUTH_UNKNOWN: "alerts nobody reviewed, without ground truth: neither trained on nor "
                   "evaluated (replayed for the features of later transactions only)",
}


def render_labels(w: LabelledWindow, source: str) -> str:
    s = w.summary()
    lines = [
        "## Labels and truth",
        "",
        f"- labels: {source}; {w.labels_given:,} given, {w.labels_used:,} used, "
        f"{w.labels_outside:,} outside the window, {w.labels_unmatched:,} without a stored "
        f"transaction; {w.disagreements:,} analyst labels contradict the record's ground "
        "truth (the analyst wins)",
        f"- window (event time): {_iso(w.start_ms)} .. {_iso(w.end_ms)}; history replayed for "
        f"the features from {_iso(w.history_start_ms)} ({w.history_rows:,} rows, not "
        "trained on)",
        f"- transactions rebuilt from `scored_transactions`; {w.not_rebuildable:,} rows "
        "written before migration 007 (no coordinates) skipped",
        "",
        "Each training row's label, best source first:",
        "",
        "| truth | rows |",
        "|---|---|",
    ]
    lines += [f"| {name} | {s['truth'][name]:,} |" for name in TRUTH_ORDER]
    lines.append("")
    lines += [f"- {name}: {_TRUTH_TEXT[name]}." for name in TRUTH_ORDER[1:]
              if s["truth"][name]]
    return "\n".join(lines) + "\n\n"


def _insert_section(report: Path, section: str) -> None:
    """Put `section` before the report's `## Data` (right under the model's summary)."""
    text = report.read_text(encoding="utf-8")
    at = text.find("\n## Data\n")
    text = text + "\n" + section if at < 0 else text[:at + 1] + section + text[at + 1:]
    report.write_text(text, encoding="utf-8")


def _update_metadata(path: Path, extra: dict) -> None:
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta.update(extra)
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _iso(ms: int) -> str:
    return from_ms(ms).strftime("%Y-%m-%d %H:%M")


def _counts(truth: dict[str, int]) -> str:
    return ", ".join(f"{name}: {n:,}" for name, n in truth.items() if n)
