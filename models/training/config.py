"""Training configuration: one frozen object built at the entry point (`fraudstream train`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrainConfig:
    """What to train on and how.

    `input_path` None -> generate `cards` x `days` with `seed` (the project generator).
    Time split: the first `train_fraction` of the time span trains, the next
    `validation_fraction` picks the model and the threshold, the rest is the test window.
    Threshold cost: a missed fraud costs its amount; every alert costs `review_cost` (an
    analyst's review), so cost(th) = sum(amount of missed fraud) + review_cost * alerts.
    """

    input_path: Path | None = None
    cards: int = 1000
    days: int = 365
    seed: int = 42
    train_fraction: float = 0.6
    validation_fraction: float = 0.2
    review_cost: float = 25.0
    top_k_per_day: int = 20
    models: tuple[str, ...] = ("logreg", "random_forest", "hist_gbm")
    choose: str | None = None  # force a model; default: best validation PR-AUC
    fraud_rate_min: float = 0.0005
    fraud_rate_max: float = 0.05
    registry_dir: Path | None = None  # None -> the package registry (models/registry)
    model_version: str | None = None  # None -> derived from model, data and seed
    set_default: bool = False
    threads: int = 2  # OpenMP/BLAS threads for fitting (1 avoids spin-waits on a busy box)
    importance_rows: int = 40_000  # test rows used for permutation importance
    token_key: bytes = b"fraudstream-training-token-key"  # tokenizes generated PANs only
