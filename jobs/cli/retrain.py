"""`fraudstream retrain [--when-due]`: from analyst labels to a candidate model in shadow.

    policy (models.training.retrain_policy): N new labels since the last candidate, or drift
      over a threshold for H hours (Postgres `feature_drift`, when drift monitoring exists)
    -> `train --labels db` (the same function: models.cli.train_from_labels), registered as
       a candidate, never the default, with its comparison against the current default
    -> published as the running job's shadow by `fraudstream model shadow`'s own command
       function (checked against the running code first, refused with the reason)
    -> promotion stays a human decision: the command prints what to run.
Without `--when-due` it trains now and only reports the policy. Reads Postgres as the
analyst role; the record of past candidates is their registry metadata.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from jobs.cli.common import fail, out, stack_settings

Opt = typer.Option


def retrain(
    when_due: Annotated[bool, Opt("--when-due", help="Train only when the policy says so.")]
    = False,
    min_labels: Annotated[int, Opt(min=1, help="Due after this many new analyst labels.")]
    = 100,
    drift_threshold: Annotated[float | None, Opt(
        help="Due when every one of the last --drift-hours hours has a feature with PSI at or "
        "above this (feature_drift table; off when not given).")] = None,
    drift_hours: Annotated[int, Opt(min=1, help="Hours of sustained drift.")] = 6,
    drift_min_rows: Annotated[int, Opt(min=1, help="Skip hours with fewer scored rows.")] = 100,
    shadow: Annotated[bool, Opt("--shadow/--no-shadow", help="Publish the candidate as the "
                                "running job's shadow model.")] = True,
    registry: Annotated[str | None, Opt("--registry", help="Model registry root (default: "
                                        "$FRAUDSTREAM_MODEL_REGISTRY or the package one).")]
    = None,
    since: Annotated[str | None, Opt(help="Window start, ISO UTC (default: earliest label).")]
    = None,
    until: Annotated[str | None, Opt(help="Window end, ISO UTC (default: latest label).")]
    = None,
    history_days: Annotated[float, Opt(help="Days replayed before the window for features.")]
    = 35.0,
    models: Annotated[str, Opt(help="Models to compare.")] = "logreg,random_forest,hist_gbm",
    review_cost: Annotated[float, Opt(help="$ cost of reviewing one alert.")] = 25.0,
    fraud_rate_min: Annotated[float, Opt(help="Validation: lowest fraud rate.")] = 0.001,
    fraud_rate_max: Annotated[float, Opt(help="Validation: highest fraud rate.")] = 0.03,
    seed: Annotated[int, Opt(help="Seed of the models.")] = 42,
    threads: Annotated[int, Opt(help="Threads for model fitting.")] = 2,
) -> None:
    """Retrain from analyst labels when due, register the candidate and shadow it; promotion
    stays with a human (`fraudstream model promote VERSION`)."""
    from models.training.retrain_policy import RetrainPolicy, decide

    try:
        policy = RetrainPolicy(min_labels, drift_threshold, drift_hours, drift_min_rows)
    except ValueError as exc:
        raise fail(str(exc), code=2) from exc
    settings = stack_settings()
    decision = decide(policy, policy_input(settings, policy, registry))
    for line in decision.checks:
        out.print(f"policy: {line}", soft_wrap=True)
    if not decision.due:
        if when_due:
            out.print("not due: nothing trained")
            return
        out.print("not due, training anyway (no --when-due)")
    else:
        out.print(f"due: {'; '.join(decision.reasons)}", soft_wrap=True)

    from models.cli import train_from_labels
    from models.training.config import TrainConfig

    cfg = TrainConfig(
        seed=seed, review_cost=review_cost, fraud_rate_min=fraud_rate_min,
        fraud_rate_max=fraud_rate_max, threads=threads,
        models=tuple(m.strip() for m in models.split(",") if m.strip()),
        registry_dir=Path(registry) if registry else None,
    )
    done = train_from_labels(cfg, "db", since, until, history_days,
                             log=lambda line: out.print(line, markup=False, highlight=False))
    version = done.result.model_version
    if shadow:
        publish_shadow(version, registry)
    else:
        out.print(f"not shadowed (--no-shadow): `fraudstream model shadow {version}` starts it")
    out.print(
        f"promotion stays a human decision: read {done.report_path}, watch `fraudstream model "
        f"compare` as shadow scores accrue, then run: fraudstream model promote {version}",
        soft_wrap=True,
    )


def policy_input(settings: Any, policy: Any, registry: str | None) -> Any:
    """What the policy needs: the last candidate (registry), the labels given since it and,
    when drift is checked, the recent hours of `feature_drift` (analyst role)."""
    import psycopg

    from connectors import label_store
    from models.training.retrain_policy import PolicyInput, last_candidate

    last = last_candidate(registry)
    after = None if last is None else (last.labels_through or last.made_at)
    try:
        with psycopg.connect(settings.pg_conninfo("analyst")) as conn:
            new_labels = label_store.count_labels_after(conn, after)
            drift = None
            if policy.drift_threshold is not None:
                drift = label_store.drift_hours(conn, policy.drift_hours, policy.drift_min_rows)
    except psycopg.Error as exc:
        raise fail(f"cannot read labels from Postgres as the analyst role: {exc}") from exc
    version, hours = drift if drift is not None else (None, None)
    return PolicyInput(new_labels, last, version, hours)


def publish_shadow(version: str, registry: str | None) -> None:
    """`fraudstream model shadow VERSION`, the same command function: checked against the
    running code, published to the control topic (exits with the reason when refused)."""
    from jobs.cli.model import shadow

    shadow(version, registry)


def register(app: typer.Typer) -> None:
    app.command("retrain")(retrain)
