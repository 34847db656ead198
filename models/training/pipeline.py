"""`run_training`: the whole training run, from input to a registered model version.

Steps: load (or generate) -> Great Expectations validation (stops on failure) -> features
with `offline_features` in event-time order -> time split -> fit every candidate on train ->
pick the best validation PR-AUC -> threshold by cost on validation -> test metrics for all ->
ONNX export with metadata -> onnxruntime vs scikit-learn check on the test window ->
report + plots -> registry directory (optionally the new default). The sidecar
(metadata.json) also holds the drift reference (`models.drift`) of the validation window.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from models.drift import REFERENCE_KEY
from models.drift_reference import reference_from_rows
from models.features import FEATURE_NAMES, FEATURE_SET_VERSION
from models.reasons import occlusion_variants, rank_reasons
from models.registry import set_default, version_dir
from models.report import ModelResult, ReportInput, write_report
from models.training.candidates import MODEL_LABELS, make_model
from models.training.config import TrainConfig
from models.training.dataset import (
    FeatureTable,
    build_features,
    generate_transactions,
    read_transactions,
    split_by_time,
    transactions_frame,
)
from models.training.export import max_abs_difference, onnx_probabilities, to_onnx_bytes
from models.training.metrics import at_threshold, evaluate, threshold_by_cost
from models.validation import require_valid, validate_transactions

ONNX_AGREEMENT_TOLERANCE = 1e-4
Log = Callable[[str], None]


class TrainingError(RuntimeError):
    """Training cannot produce a trustworthy model (e.g. no fraud in a window)."""


@dataclass
class TrainResult:
    model_version: str
    out_dir: Path
    chosen: str
    threshold: float
    test_metrics: dict
    all_metrics: dict
    onnx_max_abs_diff: float


def default_model_version(cfg: TrainConfig, chosen: str) -> str:
    source = cfg.input_path.stem if cfg.input_path else f"gen{cfg.cards}c{cfg.days}d"
    return f"{chosen}-{source}-s{cfg.seed}"


def run_training(
    cfg: TrainConfig,
    log: Log = print,
    command: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Run every step (module docstring) and return what was registered.

    `progress(done, total)` follows the feature computation (the longest Python step).
    Raises `DataValidationError` (input failed the suite; nothing written) or `TrainingError`.
    """
    with threadpool_limits(limits=cfg.threads):
        return _run(cfg, log, command, progress)


def _run(
    cfg: TrainConfig, log: Log, command: str | None, progress: Callable[[int, int], None] | None
) -> TrainResult:
    t_start = time.perf_counter()
    if cfg.input_path is None:
        log(f"generating {cfg.cards} cards x {cfg.days} days (seed {cfg.seed}) ...")
        txns = generate_transactions(cfg)
        source = f"generated: {cfg.cards} cards x {cfg.days} days, seed {cfg.seed}"
    else:
        log(f"reading {cfg.input_path} ...")
        txns = read_transactions(cfg.input_path, cfg.token_key)
        source = f"file {cfg.input_path.name}"
    log(f"{len(txns):,} transactions; validating (Great Expectations) ...")
    frame = transactions_frame(txns)
    report = require_valid(validate_transactions(frame, cfg.fraud_rate_min, cfg.fraud_rate_max))
    log(report.render())
    data_summary = {
        "source": source,
        "rows": int(len(frame)),
        "cards": int(frame["card_token"].nunique()),
        "frauds": int(frame["label"].sum()),
        "fraud_rate": float(frame["label"].mean()),
        "code_commit": _code_commit(),
        "validation_suite": report.suite,
        "validation_checks": len(report.checks),
    }
    del frame

    log("computing features (offline_features, event-time order) ...")
    t0 = time.perf_counter()
    table = build_features(txns, progress)
    del txns
    log(f"features: {len(table):,} rows in {time.perf_counter() - t0:.1f} s")
    return _train_table(cfg, table, data_summary, log, command, t_start)


def train_on_table(
    cfg: TrainConfig,
    table: FeatureTable,
    data_summary: dict,
    log: Log = print,
    command: str | None = None,
) -> TrainResult:
    """The steps after the features (split, fit, choose, threshold, export, report, register)
    for a table built elsewhere (`models.training.labels`: transactions rebuilt from the
    job's rows, labelled by analysts). `data_summary` has the keys `_run` fills (source, rows,
    cards, frauds, fraud_rate, code_commit, validation_suite, validation_checks)."""
    with threadpool_limits(limits=cfg.threads):
        return _train_table(cfg, table, data_summary, log, command, time.perf_counter())


def _train_table(
    cfg: TrainConfig,
    table: FeatureTable,
    data_summary: dict,
    log: Log,
    command: str | None,
    t_start: float,
) -> TrainResult:
    split = split_by_time(table, cfg.train_fraction, cfg.validation_fraction)
    for name, part in (
        ("train", split.train),
        ("validation", split.validation),
        ("test", split.test),
    ):
        if part.y.sum() == 0 or part.y.sum() == len(part):
            raise TrainingError(f"the {name} window needs both classes ({part.y.sum()} frauds)")
        log(f"  {name}: {len(part):,} rows, {int(part.y.sum()):,} frauds")

    fitted = {}
    results: list[ModelResult] = []
    val_scores: dict[str, np.ndarray] = {}
    for name in cfg.models:
        log(f"fitting {name} ...")
        model = make_model(name, cfg.seed, n_jobs=cfg.threads)
        t0 = time.perf_counter()
        model.fit(split.train.x, split.train.y)
        fit_s = time.perf_counter() - t0
        vs = model.predict_proba(split.validation.x)[:, 1]
        ts = model.predict_proba(split.test.x)[:, 1]
        val = evaluate(split.validation.y, vs, split.validation.time_ms, cfg.top_k_per_day)
        test = evaluate(split.test.y, ts, split.test.time_ms, cfg.top_k_per_day)
        log(
            f"  {name}: fit {fit_s:.0f} s, val PR-AUC {val.pr_auc:.4f}, test PR-AUC "
            f"{test.pr_auc:.4f}, test recall@1%FPR {test.recall_at_1pct_fpr:.4f}"
        )
        fitted[name] = model
        val_scores[name] = vs
        results.append(ModelResult(name, MODEL_LABELS[name], val, test, ts, fit_s))

    chosen = cfg.choose or max(results, key=lambda r: r.validation.pr_auc).name
    if chosen not in fitted:
        raise TrainingError(f"--choose {chosen!r} is not among the trained models {cfg.models}")
    model = fitted[chosen]
    chosen_result = next(r for r in results if r.name == chosen)
    v = split.validation
    threshold, _ = threshold_by_cost(v.y, val_scores[chosen], v.amount, cfg.review_cost)
    val_at = at_threshold(v.y, val_scores[chosen], v.amount, v.time_ms, threshold, cfg.review_cost)
    te = split.test
    test_at = at_threshold(
        te.y, chosen_result.test_scores, te.amount, te.time_ms, threshold, cfg.review_cost
    )
    log(f"chosen {chosen}; threshold {threshold:.4f} (validation cost ${val_at.cost:,.0f})")

    model_version = cfg.model_version or default_model_version(cfg, chosen)
    reference = np.median(split.train.x[split.train.y == 0], axis=0).astype(float).tolist()
    metrics = {
        "chosen": chosen,
        "test": chosen_result.test.as_dict(),
        "validation": chosen_result.validation.as_dict(),
        "test_at_threshold": asdict(test_at),
        "compared": {
            r.name: {"validation": r.validation.as_dict(), "test": r.test.as_dict()}
            for r in results
        },
    }
    metadata = {
        "feature_set_version": FEATURE_SET_VERSION,
        "feature_names": list(FEATURE_NAMES),
        "threshold": repr(float(threshold)),
        "model_version": model_version,
        "model_kind": chosen,
        "reference_values": reference,
        "reason_method": "occlusion vs legit-population medians (models.reasons)",
        "threshold_cost": f"missed fraud $ + {cfg.review_cost:g} $ per alert (validation)",
        "training_data": {
            **data_summary,
            "split_boundaries_ms": list(split.boundaries_ms),
            "train_rows": len(split.train),
            "validation_rows": len(split.validation),
            "test_rows": len(split.test),
        },
        "metrics": metrics,
    }
    log("exporting to ONNX ...")
    onnx_bytes = to_onnx_bytes(model, metadata)
    diff = max_abs_difference(model, onnx_bytes, te.x)
    log(f"onnxruntime vs scikit-learn on {len(te):,} test rows: max |diff| = {diff:.2e}")
    if diff > ONNX_AGREEMENT_TOLERANCE:
        raise TrainingError(
            f"ONNX model disagrees with scikit-learn: max |diff| {diff:.2e} > "
            f"{ONNX_AGREEMENT_TOLERANCE:g}; not registering it"
        )

    # Drift reference (sidecar only, not in the ONNX metadata): the validation window's
    # features and the exported model's scores of them (out-of-sample, float32 as online).
    drift_reference = reference_from_rows(
        v.x, onnx_bytes, f"validation window of {data_summary['source']}"
    )

    out_dir = version_dir(model_version, cfg.registry_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.onnx").write_bytes(onnx_bytes)
    sidecar = {
        **metadata,
        "onnx_max_abs_diff": diff,
        "onnx_bytes": len(onnx_bytes),
        "command": command or _command_line(),
        REFERENCE_KEY: drift_reference.as_json(),
    }
    (out_dir / "metadata.json").write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")

    log("permutation importance and report ...")
    importance = permutation_importance(model, te, cfg.importance_rows, cfg.seed)
    example = _reason_example(onnx_bytes, te, chosen_result.test_scores, reference)
    write_report(
        ReportInput(
            model_version=model_version,
            chosen=chosen,
            results=results,
            threshold=threshold,
            review_cost=cfg.review_cost,
            top_k=cfg.top_k_per_day,
            validation_at_threshold=val_at,
            test_at_threshold=test_at,
            y_test=te.y,
            importance=importance,
            onnx_max_abs_diff=diff,
            onnx_bytes=len(onnx_bytes),
            data_summary=data_summary,
            split_boundaries_ms=split.boundaries_ms,
            command=command or _command_line(),
            reason_example=example,
        ),
        out_dir,
    )
    if cfg.set_default:
        set_default(model_version, cfg.registry_dir)
        log(f"{model_version} is now the default model")
    log(f"done in {time.perf_counter() - t_start:.0f} s -> {out_dir}")
    return TrainResult(
        model_version=model_version,
        out_dir=out_dir,
        chosen=chosen,
        threshold=threshold,
        test_metrics=chosen_result.test.as_dict(),
        all_metrics=metrics["compared"],
        onnx_max_abs_diff=diff,
    )


def permutation_importance(
    model, part: FeatureTable, rows: int, seed: int
) -> list[tuple[str, float]]:
    """PR-AUC drop per feature when its column is shuffled (all frauds + a legit sample)."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    fraud = np.flatnonzero(part.y == 1)
    legit = np.flatnonzero(part.y == 0)
    take = min(len(legit), max(0, rows - len(fraud)))
    idx = np.concatenate([fraud, rng.choice(legit, size=take, replace=False)])
    x, y = part.x[idx], part.y[idx]
    base = average_precision_score(y, model.predict_proba(x)[:, 1])
    out = []
    for j, name in enumerate(FEATURE_NAMES):
        col = x[:, j].copy()
        if np.all(col == col[0]):
            out.append((name, 0.0))
            continue
        x[:, j] = rng.permutation(col)
        out.append((name, float(base - average_precision_score(y, model.predict_proba(x)[:, 1]))))
        x[:, j] = col
    out.sort(key=lambda kv: -kv[1])
    return out


def _reason_example(onnx_bytes: bytes, part: FeatureTable, scores: np.ndarray, reference):
    fraud = np.flatnonzero(part.y == 1)
    if len(fraud) == 0:
        return []
    row = part.x[fraud[np.argmax(scores[fraud])]].astype(float).tolist()
    variants = np.asarray(occlusion_variants(row, reference), dtype=np.float32)
    return rank_reasons(row, onnx_probabilities(onnx_bytes, variants).tolist(), 3, reference)


def _code_commit() -> str:
    """The repo commit the run used (generator + features), for reproducing the numbers."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _command_line() -> str:
    argv = sys.argv[:]
    if argv and argv[0].endswith("fraudstream"):
        argv[0] = "fraudstream"
    return shlex.join(argv)
