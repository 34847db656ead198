"""`fraudstream model list | promote | shadow | unshadow | compare`: change the running job's
models through the control topic, without restarting it.

A promotion or shadow is checked here first (`models.model_compat`: features, input shape,
checksum against the running code's default model) and refused with the reason; what passes
is published with the ONNX file itself, and every scorer subtask swaps to it between two
batches (the job checks it again and keeps its current model if it does not fit).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from jobs.cli.common import err, fail, out, stack_settings

model_app = typer.Typer(help="Models of the running job: registry, promotion, shadow, compare.",
                        no_args_is_help=True)

RegistryOpt = Annotated[
    str | None,
    typer.Option("--registry", help="Model registry root (default: $FRAUDSTREAM_MODEL_REGISTRY "
                 "or the package registry)."),
]


def _control_view(settings: Any) -> Any:
    from connectors.control_topic import ControlTopicError, read_state

    try:
        return read_state(settings.kafka_bootstrap, settings.topic_control)
    except ControlTopicError as exc:
        raise fail(str(exc)) from exc


def _publish(settings: Any, message: Any) -> None:
    from connectors.control_topic import ControlTopicError, publish

    try:
        partition, offset = publish(settings.kafka_bootstrap, settings.topic_control, message)
    except ControlTopicError as exc:
        raise fail(str(exc)) from exc
    out.print(f"published {message.kind} to {settings.topic_control} "
              f"(partition {partition}, offset {offset}); the job applies it within seconds")


def _checked_model(version: str, registry: str | None) -> bytes:
    """The ONNX bytes of registry `version`, or exit 1 naming why it does not fit."""
    from models import model_compat
    from models.registry import default_model_dir

    try:
        current = model_compat.describe_model(default_model_dir(registry))
    except Exception as exc:  # noqa: BLE001 - registry errors carry their own message
        raise fail(f"cannot read the default model to check against: {exc}") from exc
    verdict = model_compat.check_candidate(current, version, registry)
    if not verdict.compatible:
        raise fail(f"refused: {verdict.summary()}")
    err.print(verdict.summary())
    path = model_compat.describe_version(version, registry).path
    return (path / "model.onnx" if path.is_dir() else path).read_bytes()


@model_app.command("list")
def list_models(registry: RegistryOpt = None) -> None:
    """Registry versions with their test metrics (at the model's threshold), and which one
    the job runs (champion) or shadows (from the control topic)."""
    from models.registry import default_version, list_versions, version_dir

    settings = stack_settings()
    state = _control_view(settings).state
    default = default_version(registry)
    table = Table("threshold", "PR-AUC", "recall", "precision", "alerts/day")
    table.add_column("role", no_wrap=True)
    table.add_column("version", no_wrap=True)
    for version in list_versions(registry):
        meta = json.loads((version_dir(version, registry) / "metadata.json").read_text())
        metrics = meta.get("metrics", {})
        at = metrics.get("test_at_threshold", {})
        roles = [r for r, on in (("champion", version == (state.champion or default)),
                                 ("shadow", version == state.shadow),
                                 ("default", version == default)) if on]
        table.add_row(_num(meta.get("threshold")), _num(metrics.get("test", {}).get("pr_auc")),
                      _num(at.get("recall")), _num(at.get("precision")),
                      _num(at.get("alerts_per_day"), ".1f"), ", ".join(roles) or "-", version)
    out.print(table)


@model_app.command("promote")
def promote(version: str, registry: RegistryOpt = None) -> None:
    """Make VERSION the champion: its decisions count from the next batch on."""
    from models.control import ControlMessage

    onnx = _checked_model(version, registry)
    _publish(stack_settings(), ControlMessage.promote(version, onnx=onnx))


@model_app.command("shadow")
def shadow(version: str, registry: RegistryOpt = None) -> None:
    """Score every event with VERSION too; its scores go to Postgres `shadow_scores` beside the
    champion's, never to the alerts topic."""
    from models.control import ControlMessage

    onnx = _checked_model(version, registry)
    _publish(stack_settings(), ControlMessage.shadow(version, onnx=onnx))


@model_app.command("unshadow")
def unshadow() -> None:
    """Stop shadow scoring."""
    from models.control import ControlMessage

    settings = stack_settings()
    current = _control_view(settings).state.shadow
    if current is None:
        raise fail("no model is shadowing")
    _publish(settings, ControlMessage.unshadow(current))


@model_app.command("compare")
def compare_models(
    review_cost: Annotated[float, typer.Option(help="Cost of reviewing one alert ($).")] = 25.0,
    challenger: Annotated[str | None, typer.Option(
        help="Challenger version (default: the one shadowing now).")] = None,
    registry: RegistryOpt = None,
) -> None:
    """Champion vs challenger on the labelled events since the shadow started: precision,
    recall, alerts/day and cost (missed fraud $ + review cost per alert) at each threshold."""
    from connectors.shadow_store import read_pairs
    from models.champion_challenger import compare

    settings = stack_settings()
    view = _control_view(settings)
    version = challenger or view.state.shadow
    if version is None:
        raise fail("no model is shadowing: start one with `fraudstream model shadow VERSION`")
    since_ms = view.issued_at_ms("model:shadow") if challenger is None else None
    try:
        found = read_pairs(settings, version, since_ms, registry)
    except LookupError as exc:
        raise fail(str(exc)) from exc
    if not found.pairs:
        raise fail(f"no shadow scores of {version} yet (since the shadow started)")
    result = compare(found.pairs, found.champion_threshold, found.challenger_threshold,
                     review_cost=review_cost)
    out.print(f"{result.events} events over {result.days:.2f} days, {result.labelled} "
              f"labelled; champion {', '.join(found.champion_versions)} vs challenger {version}")
    table = Table("threshold", "model", "alerts/day", "precision", "recall", "cost $")
    rows = [("own", result.champion, result.challenger)]
    rows += [(f"{a.threshold:.2f}", a, b) for a, b in result.sweep]
    for label, champ, chall in rows:
        for name, side in (("champion", champ), ("challenger", chall)):
            table.add_row(label if name == "champion" else "",
                          f"{name} ({side.threshold:.3f})" if label == "own" else name,
                          f"{side.alerts_per_day:.1f}", _num(side.precision),
                          _num(side.recall), f"{side.cost:,.2f}")
    out.print(table)


def _num(value: Any, spec: str = ".3f") -> str:
    try:
        return format(float(value), spec)
    except (TypeError, ValueError):
        return "-"


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
