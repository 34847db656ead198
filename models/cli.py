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
    labels: Annotated[
        str | None,
        Opt(
            "--labels",
            help="Retrain from analyst labels: a `review export-labels` CSV, or `db` (Postgres "
            "alerts). Joined with the job's scored_transactions; registers a candidate (never "
            "the default) compared with the current default on the same rows.",
        ),
    ] = None,
    since: Annotated[
        str | None, Opt(help="--labels: window start, ISO UTC (default: earliest label).")
    ] = None,
    until: Annotated[
        str | None, Opt(help="--labels: window end, ISO UTC (default: latest label).")
    ] = None,
    history_days: Annotated[
        float, Opt(help="--labels: days replayed before the window for the features.")
    ] = 35.0,
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
    if labels is not None:
        if set_default or input_path is not None:
            typer.echo("--labels trains a candidate from the job's stored rows: it takes no "
                       "--input and is never the default (`fraudstream model promote`)", err=True)
            raise typer.Exit(2)
        train_from_labels(cfg, labels, since, until, history_days)
        return
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


def train_from_labels(
    cfg, labels: str, since: str | None = None, until: str | None = None,
    history_days: float = 35.0, log=typer.echo,
):
    """`train --labels` (also run by `fraudstream retrain`): analyst labels (CSV or Postgres
    `alerts`) joined with the job's stored rows (Postgres, analyst role), trained and
    registered as a candidate with its comparison (`models.training.from_labels`). Returns
    the `LabelTrainResult`; a failure exits with its reason (2: the data failed validation)."""
    import psycopg

    from connectors import label_store
    from connectors.settings import load_settings
    from models.training.dataset import DatasetError
    from models.training.from_labels import LabelRun, run_label_training
    from models.training.labels import read_labels_csv
    from models.training.pipeline import TrainingError
    from models.validation import DataValidationError

    try:
        since_ms, until_ms = _when(since), _when(until)
        conninfo = load_settings().pg_conninfo("analyst")
        with psycopg.connect(conninfo) as conn:
            if labels == "db":
                found, source = label_store.read_labels(conn, since_ms, until_ms), "Postgres alerts"
            else:
                found, source = read_labels_csv(Path(labels)), f"file {Path(labels).name}"
            run = LabelRun(cfg, source, since_ms, until_ms, int(history_days * 86_400_000))
            done = run_label_training(
                run, found, lambda lo, start, end: label_store.read_rows(conn, lo, start, end),
                log=log,
            )
    except DataValidationError as exc:
        typer.echo(f"{exc}\ntraining stopped: the labelled rows failed validation", err=True)
        raise typer.Exit(2) from None
    except (DatasetError, TrainingError, OSError, psycopg.Error, ValueError) as exc:
        typer.echo(f"training from labels failed: {exc}", err=True)
        raise typer.Exit(1) from None
    c, version = done.comparison, done.result.model_version
    typer.echo(
        f"candidate {version} (not the default): on {c.rows:,} test rows PR-AUC "
        f"{c.candidate.metrics.pr_auc:.4f} vs {c.default.metrics.pr_auc:.4f} "
        f"({c.default.version}), cost ${c.candidate.at.cost:,.0f} vs ${c.default.at.cost:,.0f}; "
        f"report {done.report_path}"
    )
    return done


def _when(text: str | None) -> int | None:
    """An ISO date or date-time (UTC unless it names an offset) -> epoch ms."""
    if text is None:
        return None
    from datetime import UTC, datetime

    from models.training.labels import to_ms

    at = datetime.fromisoformat(text)
    return to_ms(at if at.tzinfo else at.replace(tzinfo=UTC))


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
