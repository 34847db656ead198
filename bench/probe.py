"""Probe model for latency runs: the default model with a lower alert threshold.

Few transactions are fraud, so at 5,000 events/s the real model alerts on a few dozen per
second at most. For latency samples the benchmark uses a copy of the model file (same graph and
weights, so the same compute per event) whose metadata `threshold` is set to the score quantile
that makes about `share` of the benchmark's events alert. Engines load it through their normal
`model_path` setting; nothing in the job changes. Alerts cost more than passes (reason codes:
one extra batched onnxruntime run over the occlusion variants), so a larger share makes the
measurement slightly pessimistic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.stats import percentile


def score_sample(payloads: Sequence[bytes], model_path: str | None, tokenizer_key: str) -> list[
    float
]:
    """Scores of `payloads` (in order, per-card state like the job) with the given model."""
    from models.features import new_state, update
    from models.scoring import Scorer
    from schemas.card_token import CardTokenizer
    from schemas.parse import TransactionParseError, parse_transaction

    scorer = Scorer.load(model_path)
    tokenizer = CardTokenizer(tokenizer_key.encode())
    states: dict[str, object] = {}
    rows = []
    for payload in payloads:
        try:
            txn = parse_transaction(payload, tokenizer)
        except TransactionParseError:
            continue
        state = states.setdefault(txn.card_token, new_state())
        rows.append(update(state, txn))
    scores: list[float] = []
    for i in range(0, len(rows), 4096):
        scores.extend(scorer.score_batch(rows[i : i + 4096]))
    return scores


def probe_threshold(scores: Sequence[float], share: float) -> float:
    """The threshold at which about `share` (0..1) of these scores alert (score >= threshold)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be within (0, 1), got {share}")
    return percentile(scores, 100.0 * (1.0 - share))


def write_probe_model(model_path: str | None, threshold: float, out_dir: Path) -> Path:
    """Copy the model with metadata `threshold` replaced; return the new file's path."""
    import onnx

    from models.scoring import resolve_model_path

    source = resolve_model_path(model_path)
    model = onnx.load(str(source))
    found = False
    for prop in model.metadata_props:
        if prop.key == "threshold":
            prop.value = repr(float(threshold))
            found = True
    if not found:
        raise ValueError(f"{source} has no threshold metadata")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "probe-model.onnx"
    onnx.save(model, str(target))
    return target
