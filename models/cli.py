"""`fraudstream train` and `fraudstream evaluate` (registered into the root CLI by `register`).

Heavy imports (scikit-learn, onnxruntime, great-expectations) stay inside the commands.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from models.registry import REGISTRY_ENV_VAR


def _token_key() -> bytes:
    """Tokenization key for CSV inputs with raw card numbers: the project secret when set,
    else a training-only key (tokens never leave the training process)."""
    value = os.environ.get("FRAUDSTREAM_CARD_TOKEN_KEY", "")
    return value.encode("utf-8") if value else b"fraudstream-training-token-key"


Opt = typer.Option


def train(
    input_path: Annotated[
        Path | None,
        Opt(
            "--input",
            help="JSONL/Parquet (Transaction columns) or Kaggle CSV; "
            "default: generate --cards x --days with --seed.",
        ),
    ] = None,
    cards: Annotated[int, Opt(help="Generated cards.")] = 1000,
    days: Annotated[int, Opt(help="Generated days.")] = 365,
    seed: Annotated[int, Opt(help="Seed for generation and models.")] = 42,
    review_cost: Annotated[float, Opt(help="$ cost of reviewing one alert (threshold).")] = 25.0,
    models: Annotated[str, Opt(help="Models to compare.")] = "logreg,random_forest,hist_gbm",
    choose: Annotated[str | None, Opt(help="Force this model, not best val PR-AUC.")] = None,
    train_fraction: Annotated[float, Opt(help="Leading share of the time span: training.")] = 0.6,
    validation_fraction: Annotated[float, Opt(help="Next share: model + threshold.")] = 0.2,
    fraud_rate_min: Annotated[float, Opt(help="Validation: lowest fraud rate accepted.")] = 0.001,
    fraud_rate_max: Annotated[float, Opt(help="Validation: highest fraud rate accepted.")] = 0.03,
    registry: Annotated[
        Path | None,
        Opt(
            envvar=REGISTRY_ENV_VAR,
            help=f"Registry root (env {REGISTRY_ENV_VAR}; default: models/registry).",
        ),
    ] = None,
    model_version: Annotated[str | None, Opt("--version", help="Model version name.")] = None,
    set_default: Annotated[bool, Opt("--set-default", help="Make it the default model.")] = False,
    threads: Annotated[int, Opt(help="Threads for model fitting (OpenMP/joblib).")] = 2,
) -> None:
    """Validate data, compute features, compare models, export the best to ONNX with a report."""
    from models.training.config import TrainConfig
    from models.training.pipeline import TrainingError, run_training
    from models.validation import DataValidationError

    cfg = TrainConfig(
        input_path=input_path,
        cards=cards,
        days=days,
        seed=seed,
        train_fraction=train_fraction,
        validation_fraction=validation_fraction,
        review_cost=review_cost,
        models=tuple(m.strip() for m in models.split(",") if m.strip()),
        choose=choose,
        fraud_rate_min=fraud_rate_min,
        fraud_rate_max=fraud_rate_max,
        registry_dir=registry,
        model_version=model_version,
        set_default=set_default,
        threads=threads,
        token_key=_token_key(),
    )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    )
    task = bar.add_task("features", total=None, visible=False)

    def on_progress(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total, visible=done < total)

    def log(message: str) -> None:
        bar.console.print(message, markup=False, highlight=False, soft_wrap=True)

    try:
        with bar:
            result = run_training(cfg, log=log, progress=on_progress)
    except DataValidationError as exc:
        typer.echo(str(exc), err=True)
        typer.echo("training stopped: the input failed validation", err=True)
        raise typer.Exit(2) from None
    except TrainingError as exc:
        typer.echo(f"training failed: {exc}", err=True)
        raise typer.Exit(1) from None
    m = result.test_metrics
    typer.echo(
        f"{result.model_version}: test PR-AUC {m['pr_auc']:.4f}, recall@1%FPR "
        f"{m['recall_at_1pct_fpr']:.4f}, ROC-AUC {m['roc_auc']:.4f}, threshold "
        f"{result.threshold:.4f}; report {result.out_dir / 'report.md'}"
    )


def evaluate(
    model: Annotated[
        Path | None, Opt(help="Model dir or .onnx (default: the registry default).")
    ] = None,
    input_path: Annotated[
        Path | None,
        Opt("--input", help="Labelled JSONL/Parquet/CSV; default: generate with --seed."),
    ] = None,
    cards: Annotated[int, Opt(help="Generated cards.")] = 200,
    days: Annotated[int, Opt(help="Generated days.")] = 120,
    seed: Annotated[int, Opt(help="Seed (use one the model was not trained on).")] = 7,
) -> None:
    """Score labelled data with a registered model and print its metrics at the frozen threshold."""
    import numpy as np

    from models.scoring import Scorer
    from models.training.config import TrainConfig
    from models.training.dataset import build_features, generate_transactions, read_transactions
    from models.training.metrics import at_threshold
    from models.training.metrics import evaluate as eval_metrics

    scorer = Scorer.load(model, intra_op_threads=2)
    cfg = TrainConfig(cards=cards, days=days, seed=seed, token_key=_token_key())
    txns = (
        read_transactions(input_path, cfg.token_key) if input_path else generate_transactions(cfg)
    )
    table = build_features(txns)
    scores = np.asarray(
        [
            s
            for i in range(0, len(table), 50_000)
            for s in scorer.score_batch(table.x[i : i + 50_000])
        ]
    )
    m = eval_metrics(table.y, scores, table.time_ms, 20)
    a = at_threshold(table.y, scores, table.amount, table.time_ms, scorer.threshold, 25.0)
    typer.echo(f"model {scorer.model_version} on {len(table):,} rows ({m.frauds:,} frauds)")
    typer.echo(
        f"PR-AUC {m.pr_auc:.4f}  recall@1%FPR {m.recall_at_1pct_fpr:.4f}  "
        f"precision top-20/day {m.precision_top_k_per_day:.4f}  ROC-AUC {m.roc_auc:.4f}"
    )
    typer.echo(
        f"at threshold {a.threshold:.4f}: precision {a.precision:.3f} recall {a.recall:.3f} "
        f"alerts/day {a.alerts_per_day:.1f}"
    )


def register(app: typer.Typer) -> None:
    """Add `train` and `evaluate` to the root `fraudstream` app."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)


if __name__ == "__main__":  # pragma: no cover
    _app = typer.Typer()
    register(_app)
    _app(sys.argv[1:])
