"""The compared models, each with its class-imbalance handling.

- `logreg`: standardised features + logistic regression, `class_weight="balanced"`.
- `random_forest`: `class_weight="balanced_subsample"`, bootstrap on 30 % of rows per tree
  (fast on 2 cores; each tree still sees every fraud pattern many times).
- `hist_gbm`: HistGradientBoosting with positives up-weighted (`class_weight="balanced"`),
  early stopping on an internal 10 % split.
All are seeded: the same data and seed give the same model.
"""

from __future__ import annotations

from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

MODEL_LABELS = {
    "logreg": "Logistic regression (balanced)",
    "random_forest": "Random forest (balanced subsample)",
    "hist_gbm": "HistGradientBoosting (balanced)",
}


def make_model(name: str, seed: int, n_jobs: int = 2) -> ClassifierMixin:
    """A fresh, unfitted candidate by name (see module docstring)."""
    if name == "logreg":
        return Pipeline(
            [
                ("scale", StandardScaler()),
                ("clf", LogisticRegression(class_weight="balanced", max_iter=2000, C=1.0)),
            ]
        )
    if name == "random_forest":
        return RandomForestClassifier(
            n_estimators=120,
            max_depth=14,
            min_samples_leaf=5,
            max_samples=0.3,
            class_weight="balanced_subsample",
            n_jobs=n_jobs,
            random_state=seed,
        )
    if name == "hist_gbm":
        return HistGradientBoostingClassifier(
            learning_rate=0.08,
            max_iter=400,
            max_leaf_nodes=31,
            min_samples_leaf=40,
            l2_regularization=1.0,
            class_weight="balanced",
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=30,
            random_state=seed,
        )
    raise ValueError(f"unknown model {name!r}; choose from {sorted(MODEL_LABELS)}")


def final_estimator(model):
    """The classifier inside a pipeline (where skl2onnx options attach)."""
    return model.steps[-1][1] if isinstance(model, Pipeline) else model
