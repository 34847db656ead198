"""`fraudstream rules add | list | disable | test`: analyst rules for the running job, through
the control topic (no restart; every scorer subtask applies a change between two batches).

Expressions use transaction fields and named features only (`models.rules`); a malformed one
is refused here with the column and a caret under the error, and never reaches the topic.
An alert raised or kept by a rule carries `RULE:<name>` among its reasons.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from jobs.cli.common import err, fail, out, stack_settings
from jobs.cli.model import _control_view, _publish

rules_app = typer.Typer(help="Analyst rules of the running job: add, list, disable, back-test.",
                        no_args_is_help=True)


def _compiled_rule(name: str, expression: str, action: str, enabled: bool = True) -> Any:
    from models.rules import Rule, RuleError, RuleFormatError

    try:
        return Rule(name, expression, action=action, enabled=enabled)
    except RuleError as exc:
        err.print(f"[bold red]error:[/] rule {escape(name)!s} refused:\n{escape(str(exc))}",
                  soft_wrap=True)
        raise typer.Exit(1) from exc
    except RuleFormatError as exc:
        raise fail(f"rule {name!r} refused: {exc}") from exc


@rules_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Rule name: a-z, 0-9, '_' or '-', up to 64.")],
    when: Annotated[str, typer.Option("--when", help="Condition, e.g. \"amount > 2000 and "
                                      "category in ('shopping_net', 'misc_net')\".")],
    action: Annotated[str, typer.Option(help="alert: raise an alert; suppress: clear one.")]
    = "alert",
) -> None:
    """Add a rule (or replace the rule of that name); it takes effect within seconds."""
    from models.control import ControlMessage

    rule = _compiled_rule(name, when, action)
    _publish(stack_settings(), ControlMessage.put_rule(rule))


@rules_app.command("list")
def list_rules() -> None:
    """The rules in force (from the control topic)."""
    view = _control_view(stack_settings())
    table = Table("name", "action", "enabled", "expression", "created (UTC)")
    for rule in view.state.rules:
        table.add_row(rule.name, rule.action, "yes" if rule.enabled else "no",
                      escape(rule.expression), rule.created_at.strftime("%Y-%m-%d %H:%M:%S"))
    out.print(table if len(view.state.rules) else "no rules")
    for key in view.skipped:
        err.print(f"skipped malformed control record {escape(key)}")


@rules_app.command("disable")
def disable(name: str) -> None:
    """Remove the rule NAME from the rules in force."""
    from models.control import ControlMessage

    settings = stack_settings()
    if _control_view(settings).state.rules.get(name) is None:
        raise fail(f"no rule named {name!r} (see `fraudstream rules list`)")
    _publish(settings, ControlMessage.disable_rule(name))


@rules_app.command("test")
def test_rule(
    name: str,
    input_file: Annotated[Path, typer.Option("--input", exists=True, dir_okay=False,
                                             help="Labelled transactions (JSONL/CSV/Parquet, "
                                             "e.g. from `fraudstream generate --out`).")],
    when: Annotated[str | None, typer.Option(
        "--when", help="Test this expression instead of the rule in force.")] = None,
    action: str = "alert",
) -> None:
    """Back-test rule NAME on history: hits, precision and recall against the labels."""
    from models.rules import BacktestError, backtest, read_rows
    from models.scoring import Scorer

    if when is not None:
        rule = _compiled_rule(name, when, action)
    else:
        rule = _control_view(stack_settings()).state.rules.get(name)
        if rule is None:
            raise fail(f"no rule named {name!r}; give --when to test an expression")
    scorer = Scorer.load() if "score" in rule.identifiers else None
    try:
        result = backtest(rule, read_rows(input_file, scorer=scorer,
                                          token_key=_token_key()))
    except BacktestError as exc:
        raise fail(str(exc)) from exc
    table = Table("rule", "rows", "hits", "hit rate", "labelled", "frauds", "precision",
                  "recall")
    table.add_row(rule.name, f"{result.rows:,}", f"{result.hits:,}", f"{result.hit_rate:.4%}",
                  f"{result.labelled:,}", f"{result.frauds:,}", _pct(result.precision),
                  _pct(result.recall))
    out.print(table)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _token_key() -> bytes | None:
    """The card-token key, for files that hold raw card numbers (None when unset)."""
    try:
        key = stack_settings().card_token_key.reveal()
    except typer.Exit:
        return None
    return key.encode() if key else None


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
