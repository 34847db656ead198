"""Evaluation report: Markdown + small PNG plots, written next to the model in the registry.

Plots: PR curves of every compared model (test window) side by side, score distribution by
class for the chosen model, feature importance (permutation, PR-AUC drop), confusion at the
frozen threshold. No card identifier of any kind is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from models.features import CATEGORIES, FEATURE_DESCRIPTIONS, FEATURE_SET_VERSION
from models.reasons import REASON_GROUPS
from models.training.metrics import AtThreshold, Metrics

DPI = 80


@dataclass
class ModelResult:
    name: str
    label: str
    validation: Metrics
    test: Metrics
    test_scores: np.ndarray
    fit_seconds: float


@dataclass
class ReportInput:
    model_version: str
    chosen: str
    results: list[ModelResult]
    threshold: float
    review_cost: float
    top_k: int
    validation_at_threshold: AtThreshold
    test_at_threshold: AtThreshold
    y_test: np.ndarray
    importance: list[tuple[str, float]]
    onnx_max_abs_diff: float
    onnx_bytes: int
    data_summary: dict
    split_boundaries_ms: tuple[int, int, int, int]
    command: str
    reason_example: list = field(default_factory=list)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def write_plots(r: ReportInput, plots_dir: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    plots_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}

    fig, axes = plt.subplots(1, len(r.results), figsize=(4 * len(r.results), 3.6), squeeze=False)
    for ax, res in zip(axes[0], r.results, strict=True):
        p, rc, _ = precision_recall_curve(r.y_test, res.test_scores)
        ax.plot(rc, p, lw=1.5, color="tab:red" if res.name == r.chosen else "tab:blue")
        ax.set_title(f"{res.name}\nPR-AUC {res.test.pr_auc:.3f}", fontsize=10)
        ax.set_xlabel("recall")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("precision")
    fig.suptitle("Precision-recall on the test window", fontsize=11)
    fig.tight_layout()
    out["pr_curves"] = _save(fig, plots_dir / "pr_curves.png")

    chosen = next(x for x in r.results if x.name == r.chosen)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = np.linspace(0, 1, 51)
    ax.hist(chosen.test_scores[r.y_test == 0], bins=bins, alpha=0.6, label="legit", log=True)
    ax.hist(chosen.test_scores[r.y_test == 1], bins=bins, alpha=0.6, label="fraud", log=True)
    ax.axvline(r.threshold, color="k", ls="--", lw=1, label=f"threshold {r.threshold:.3f}")
    ax.set_xlabel("score")
    ax.set_ylabel("transactions (log)")
    ax.set_title(f"Score distribution by class ({r.chosen}, test)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out["score_distribution"] = _save(fig, plots_dir / "score_distribution.png")

    top = r.importance[:15][::-1]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.barh([n for n, _ in top], [v for _, v in top], color="tab:green")
    ax.set_xlabel("PR-AUC drop when permuted")
    ax.set_title(f"Feature importance ({r.chosen}, test sample)", fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    out["feature_importance"] = _save(fig, plots_dir / "feature_importance.png")

    t = r.test_at_threshold
    cm = np.array([[t.true_negatives, t.false_positives], [t.false_negatives, t.true_positives]])
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(np.log10(cm + 1), cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{v:,}", ha="center", va="center", fontsize=10)
    ax.set_xticks([0, 1], ["pass", "alert"])
    ax.set_yticks([0, 1], ["legit", "fraud"])
    ax.set_title(f"Confusion at threshold {r.threshold:.3f} (test)", fontsize=10)
    fig.tight_layout()
    out["confusion"] = _save(fig, plots_dir / "confusion.png")
    return out


def _save(fig, path: Path) -> str:
    fig.savefig(path, dpi=DPI)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f"plots/{path.name}"


def render_markdown(r: ReportInput, plots: dict[str, str]) -> str:
    s, v, t, e = r.split_boundaries_ms
    d = r.data_summary
    lines = [
        f"# Model {r.model_version} ({FEATURE_SET_VERSION})",
        "",
        f"Chosen model: **{r.chosen}** (best validation PR-AUC), threshold **{r.threshold:.4f}** "
        f"(frozen with the model).",
        "",
        f"Reproduce: `{r.command}`",
        "",
        "## Data",
        "",
        f"- source: {d['source']} (code commit {d.get('code_commit', 'unknown')})",
        f"- {d['rows']:,} transactions, {d['cards']:,} cards, {d['frauds']:,} frauds "
        f"({100 * d['fraud_rate']:.3f} %), {_day(s)} .. {_day(e)}",
        f"- validation: Great Expectations suite `{d['validation_suite']}`, "
        f"{d['validation_checks']} expectations, all met",
        f"- split by event time: train {_day(s)} .. {_day(v)} (exclusive), validation "
        f"{_day(v)} .. {_day(t)}, test {_day(t)} .. {_day(e)}",
        "",
        "## Compared models",
        "",
        "Metrics on the TEST window (validation PR-AUC picks the model). "
        f"Top-k = precision among the {r.top_k} highest scores of each day.",
        "",
        "| model | val PR-AUC | PR-AUC | recall @1% FPR | precision top-k/day | ROC-AUC | fit s |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in r.results:
        mark = " **(chosen)**" if x.name == r.chosen else ""
        lines.append(
            f"| {x.label}{mark} | {x.validation.pr_auc:.4f} | {x.test.pr_auc:.4f} | "
            f"{x.test.recall_at_1pct_fpr:.4f} | {x.test.precision_top_k_per_day:.4f} | "
            f"{x.test.roc_auc:.4f} | {x.fit_seconds:.0f} |"
        )
    lines += ["", f"![PR curves]({plots['pr_curves']})", ""]
    va, ta = r.validation_at_threshold, r.test_at_threshold
    lines += [
        "## Threshold by cost",
        "",
        f"Cost = $ amount of missed fraud + ${r.review_cost:g} per alert reviewed. The threshold "
        "minimising it on the validation window is frozen into the model metadata.",
        "",
        "| window | threshold | alerts | alerts/day | precision | recall | FPR | missed fraud $ "
        "| cost $ |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, a in (("validation", va), ("test", ta)):
        lines.append(
            f"| {name} | {a.threshold:.4f} | {a.alerts:,} | {a.alerts_per_day:.1f} | "
            f"{a.precision:.3f} | {a.recall:.3f} | {a.fpr:.5f} | {a.missed_fraud_amount:,.0f} | "
            f"{a.cost:,.0f} |"
        )
    lines += [
        "",
        f"![confusion]({plots['confusion']}) ![scores]({plots['score_distribution']})",
        "",
        "## ONNX export",
        "",
        f"- skl2onnx, input `features` float32 [n, {len(FEATURE_DESCRIPTIONS)}], output "
        f"`probabilities` (ZipMap off); {r.onnx_bytes / 1024:.0f} KiB",
        f"- onnxruntime vs scikit-learn on the test window: max |diff| = {r.onnx_max_abs_diff:.2e}",
        "",
        "## Feature importance",
        "",
        "Permutation importance on a test sample (all frauds + legit sample): PR-AUC drop.",
        "",
        f"![importance]({plots['feature_importance']})",
        "",
        "| feature | PR-AUC drop | meaning |",
        "|---|---|---|",
    ]
    for name, val in r.importance[:15]:
        lines.append(f"| {name} | {val:.4f} | {FEATURE_DESCRIPTIONS.get(name, '')} |")
    lines += [
        "",
        "## Reason codes",
        "",
        "Occlusion against the legitimate population: each reason group, and each feature, is "
        "replaced by the median of legit training rows, all variants are scored in one "
        "onnxruntime run, and groups are ranked by the drop in log-odds (logit of the score). "
        "A reason names the group's feature that moved the score most, its direction against "
        "the legitimate median (the code: high / low) and its share of the log-odds above "
        "the median row. Groups (codes when high / low):",
        "",
    ]
    for g in REASON_GROUPS:
        lines.append(
            f"- `{g.high}` / `{g.low}`: {g.description} ({', '.join(g.features[:4])}"
            f"{', ...' if len(g.features) > 4 else ''})"
        )
    if r.reason_example:
        lines += ["", "Example (highest-scored test fraud):", ""]
        for reason in r.reason_example:
            lines.append(
                f"- `{reason.code}`: {reason.feature} = {reason.value:.3g}, "
                f"log-odds contribution {reason.contribution:+.2f}"
            )
    lines += ["", "## Feature set", "", "| feature | meaning |", "|---|---|"]
    one_hot = {f"category_{c}" for c in (*CATEGORIES, "other")}
    for name, desc in FEATURE_DESCRIPTIONS.items():
        if name not in one_hot:
            lines.append(f"| {name} | {desc} |")
    lines.append("| category_* | one-hot of the 14 categories + other |")
    return "\n".join(lines) + "\n"


def write_report(r: ReportInput, out_dir: Path) -> Path:
    plots = write_plots(r, out_dir / "plots")
    path = out_dir / "report.md"
    path.write_text(render_markdown(r, plots), encoding="utf-8")
    return path
