"""Analyst rules (`models.rules`): the expression language, rules as JSON, rule sets (suppress
wins), backtests and their input reader."""

from __future__ import annotations

import builtins
import dataclasses
import json
import operator
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models import features as F
from models.data.writers import write_records
from models.rules import (
    IDENTIFIERS,
    MAX_DEPTH,
    MAX_EXPRESSION_CHARS,
    ROW_FIELDS,
    TRANSACTION_FIELDS_LEFT_OUT,
    BacktestError,
    Rule,
    RuleError,
    RuleFormatError,
    RuleSet,
    RuleVerdict,
    backtest,
    compile_expression,
    event_fields,
    event_row,
    format_expression,
    read_rows,
)
from schemas.transaction import Transaction
from tests.factories import ONE_HOUR, ONE_MINUTE, T0, txn
from tests.fakes import FakeDecision
from tests.property_settings import property_settings

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def matches(expression: str, **fields) -> bool:
    return compile_expression(expression).predicate(fields)


def error_of(expression: str) -> RuleError:
    with pytest.raises(RuleError) as caught:
        compile_expression(expression)
    return caught.value


# --- identifiers ----------------------------------------------------------------------------


def test_every_transaction_field_is_readable_or_left_out_on_purpose():
    txn_fields = {f.name for f in dataclasses.fields(Transaction)}
    readable = {n for n, i in IDENTIFIERS.items() if i.source == "transaction"} | set(
        F.FEATURE_NAMES
    )
    assert txn_fields - readable == TRANSACTION_FIELDS_LEFT_OUT
    assert set(F.FEATURE_NAMES) <= set(IDENTIFIERS)
    assert "score" in IDENTIFIERS
    assert ROW_FIELDS[: len(F.FEATURE_NAMES)] == F.FEATURE_NAMES
    assert set(ROW_FIELDS) == set(IDENTIFIERS)


def test_the_issue_example_compiles_and_reads_three_fields():
    c = compile_expression(
        "amount > 2000 and category in ('shopping_net', 'misc_net') and count_1h >= 3"
    )
    assert c.identifiers == {"amount", "category", "count_1h"}
    assert c.predicate({"amount": 2500.0, "category": "misc_net", "count_1h": 3.0}) is True
    assert c.predicate({"amount": 2500.0, "category": "travel", "count_1h": 3.0}) is False
    assert c.predicate({"amount": 2500.0, "category": "misc_net", "count_1h": 2.0}) is False


# --- operators ------------------------------------------------------------------------------

OPS = [("<", operator.lt), ("<=", operator.le), (">", operator.gt), (">=", operator.ge),
       ("==", operator.eq), ("!=", operator.ne)]


@pytest.mark.parametrize("op,fn", OPS)
@pytest.mark.parametrize("value", [1999.99, 2000.0, 2000.01, -3.0])
def test_each_comparison_with_a_number_on_either_side(op, fn, value):
    assert matches(f"amount {op} 2000", amount=value) is fn(value, 2000)
    assert matches(f"2000 {op} amount", amount=value) is fn(2000, value)
    assert matches(f"amount {op} 2e3", amount=value) is fn(value, 2000)


@pytest.mark.parametrize("op,fn", OPS)
def test_comparisons_between_two_fields(op, fn):
    for a, b in ((1.0, 2.0), (2.0, 2.0), (3.0, 2.0)):
        assert matches(f"amount {op} max_amount_24h", amount=a, max_amount_24h=b) is fn(a, b)


def test_numbers_negative_decimal_and_exponent():
    assert matches("amount_zscore < -2.5", amount_zscore=-3.0)
    assert matches("amount_zscore > -.5", amount_zscore=0.0)
    assert matches("amount >= 1.", amount=1.0)
    assert matches("amount == 1.5e-1", amount=0.15)


def test_strings_single_double_and_escaped_quotes():
    assert matches("merchant == 'fraud_Kirlin and Sons'", merchant="fraud_Kirlin and Sons")
    assert matches('merchant == "O\'Hara"', merchant="O'Hara")
    assert matches(r"merchant == 'O\'Hara'", merchant="O'Hara")
    assert matches(r"merchant == 'back\\slash'", merchant="back\\slash")
    assert matches("merchant != 'x'", merchant="y")


def test_flags_bare_and_against_true_false():
    assert matches("merchant_is_new", merchant_is_new=1.0)
    assert not matches("merchant_is_new", merchant_is_new=0.0)
    assert matches("merchant_is_new == true", merchant_is_new=1.0)
    assert matches("is_night == false", is_night=0.0)
    assert matches("category_travel != true", category_travel=0.0)
    assert matches("merchant_is_new == 1", merchant_is_new=1.0)


def test_in_and_not_in_lists():
    assert matches("category in ('travel', 'misc_net',)", category="travel")
    assert not matches("category in ('travel')", category="home")
    assert matches("category not in ('travel', 'home')", category="kids_pets")
    assert not matches("category NOT IN ('travel', 'home')", category="home")
    assert matches("count_1h in (3, 4, 5)", count_1h=4.0)
    assert matches("hour_of_day not in (22, 23, 0)", hour_of_day=12.0)


def test_precedence_or_and_not_comparison():
    # or < and < not < comparison, as in Python
    assert format_expression("is_night or (merchant_is_new and category_is_new)") == (
        "is_night or merchant_is_new and category_is_new"
    )
    env = {"is_night": 1.0, "merchant_is_new": 0.0, "category_is_new": 0.0, "amount": 10.0}
    assert compile_expression("is_night or merchant_is_new and category_is_new").predicate(env)
    assert not compile_expression(
        "(is_night or merchant_is_new) and category_is_new").predicate(env)
    # `not` binds tighter than `and`, looser than a comparison
    assert format_expression("not amount > 5 and is_night") == "not amount > 5 and is_night"
    assert not compile_expression("not amount > 5 and is_night").predicate(env)
    assert compile_expression("not (amount > 50 and is_night)").predicate(env)
    assert compile_expression("not not is_night").predicate(env)
    # canonical text keeps the parentheses that matter and no others
    assert format_expression("((amount > 5)) AND (is_night OR merchant_is_new)") == (
        "amount > 5 and (is_night or merchant_is_new)"
    )
    assert format_expression("not (is_night and merchant_is_new)") == (
        "not (is_night and merchant_is_new)"
    )


def test_keywords_are_case_insensitive_identifiers_are_not():
    assert matches("amount > 5 AND NOT is_night Or False", amount=6.0, is_night=0.0)
    e = error_of("Amount > 5")
    assert "unknown identifier 'Amount'" in e.reason and "did you mean 'amount'" in e.reason


def test_missing_nullable_fields_make_comparisons_false():
    for expression in ("gender == 'F'", "gender != 'F'", "state in ('NY',)",
                       "state not in ('CA',)", "birth_year < 1990", "birth_year >= 1990"):
        assert not matches(expression, gender=None, state=None, birth_year=None), expression
    assert matches("not gender == 'F'", gender=None)
    assert matches("gender != 'F'", gender="M")
    assert matches("state not in ('CA',)", state="NY")
    assert matches("birth_year < 1990", birth_year=1980)


def test_constant_expressions_fold():
    assert compile_expression("true").constant is True
    assert compile_expression("false or 1 < 2").constant is True
    assert compile_expression("amount > 5 and false").constant is False
    assert compile_expression("amount > 5 or true").constant is True
    assert compile_expression("'a' == 'a'").constant is True
    assert compile_expression("amount > 5").constant is None
    assert compile_expression("not false").predicate({}) is True


def test_mapping_and_row_forms_agree_on_real_events():
    rules = [
        "amount > 100 and category in ('grocery_pos', 'travel')",
        "count_1h >= 2 or merchant_is_new and distance_from_home_km > 0.5",
        "state == 'NY' and birth_year < 1990 and score > 0.3",
        "gender != 'M' and not (city_pop < 1000) and merchant_lat >= home_lat",
        "event_time_ms >= 1704110400000 and hour_of_day in (12, 13)",
    ]
    compiled = [compile_expression(r) for r in rules]
    rng = random.Random(3)
    state = F.new_state()
    for i in range(60):
        t = txn(amount=rng.choice([5.0, 150.0, 900.0]), at=T0 + i * 17 * ONE_MINUTE,
                category=rng.choice(["grocery_pos", "travel", "home"]),
                merchant=f"m{rng.randrange(4)}", gender=rng.choice(["F", "M", None]),
                state=rng.choice(["NY", None]), birth_year=rng.choice([1970, 1995, None]))
        vector = F.update(state, t)
        score = rng.random()
        fields, row = event_fields(t, vector, score), event_row(t, vector, score)
        assert list(row) == [fields[n] for n in ROW_FIELDS]
        for c in compiled:
            assert c.predicate(fields) is c.row_predicate(row)


# --- errors ---------------------------------------------------------------------------------

ERRORS = [
    # expression, reason fragment, column, caret length
    ("amout > 5", "unknown identifier 'amout' (did you mean 'amount'?)", 1, 5),
    ("amount > 2000 and categry == 'x'", "unknown identifier 'categry'", 19, 7),
    ("category > 5", "type mismatch: > compares numbers, category is a string", 1, 12),
    ("amount == 'big'", "amount is a number, 'big' is a string", 1, 15),
    ("category == 5", "category is a string, 5 is a number", 1, 13),
    ("category in ('travel', 5)", "the list holds 5 (a number)", 24, 1),
    ("amount in (5, 'x')", "the list holds 'x'", 15, 3),
    ("merchant_is_new == 'yes'", "type mismatch", 1, 24),
    ("true < 1", "type mismatch", 1, 8),
    ("amount >", "expression ends too early", 9, 1),
    ("(amount > 5", "unbalanced '('", 1, 1),
    ("amount > 5)", "unbalanced ')'", 11, 1),
    ("amount = 5", "use == for equality", 8, 1),
    ("amount <> 5", "use !=", 8, 2),
    ("amount > 5 && is_night", "use 'and'", 12, 1),
    ("amount > 5 || is_night", "use 'or'", 12, 1),
    ("!is_night", "use 'not'", 1, 1),
    ("1 < amount < 3", "comparisons do not chain", 12, 1),
    ("amount", "amount is a number, not a condition", 1, 6),
    ("'abc", "unterminated string", 1, 4),
    ("merchant == 'a\\nb'", "unknown escape", 15, 2),
    ("amount > 5abc", "malformed number", 10, 4),
    ("amount > 1e999", "number out of range", 10, 5),
    ("amount > 5 is_night", "unexpected 'is_night'; expected 'and', 'or' or the end", 12, 8),
    ("amount in ()", "empty 'in' list", 12, 1),
    ("amount in 5", "expected '(' after 'in'", 11, 1),
    ("category in (merchant)", "'in' lists hold values, not field names", 14, 8),
    ("5 in (5)", "the left side of 'in' must be a field name", 1, 1),
    ("amount > 5 and", "expression ends too early", 15, 1),
    ("", "empty expression", 1, 1),
    ("   ", "empty expression", 1, 1),
    ("amount > 5 ; drop table", "unexpected character ';'", 12, 1),
    ("amount > 5 €", "unexpected character '€'", 12, 1),
    ("amount\x00 > 5", "unexpected character U+0000", 7, 1),
    ("amount > -x", "unexpected character '-'", 10, 1),
    ("category in ('a', 'b'", "unbalanced '('", 13, 1),
    ("category in ('a' 'b')", "expected ',' or ')'", 18, 3),
]


@pytest.mark.parametrize("expression,reason,column,length", ERRORS)
def test_errors_point_at_the_spot(expression, reason, column, length):
    e = error_of(expression)
    assert reason in e.reason
    assert (e.column, e.length) == (column, length), str(e)
    lines = str(e).splitlines()
    assert lines[0] == f"{e.reason} at column {column}"
    assert lines[1] == "  " + expression
    caret = lines[2][2:]
    assert caret.index("^") == column - 1
    assert caret.count("^") == max(1, min(length, len(expression) - column + 1))


def test_errors_on_a_later_line_name_line_and_column():
    e = error_of("amount > 5\n  and\tcategry == 'x'")
    assert (e.line, e.column) == (2, 7)
    lines = str(e).splitlines()
    assert lines[0].endswith("at line 2, column 7")
    assert lines[1] == "    and\tcategry == 'x'"
    assert lines[2] == "       \t^^^^^^^"  # the tab kept, so the caret lines up


def test_errors_on_long_lines_show_a_window():
    expression = "amount > 1 or " * 100 + "amuont > 2 or " + "amount > 1 or " * 100 + "true"
    e = error_of(expression)
    assert e.column == 1401
    _, shown, caret = str(e).splitlines()
    assert len(shown) < 140 and shown.startswith("  ...") and shown.endswith("...")
    assert shown[caret.index("^"):].startswith("amuont") and caret.count("^") == 6


@pytest.mark.parametrize("expression", [
    "__import__('os')",
    "__import__('os').system('true')",
    "amount.__class__",
    "().__class__.__bases__",
    "exec('1')",
    "eval('1')",
    "lambda: 1",
    "open('/etc/passwd')",
    "amount > 5 and __builtins__",
    "[x for x in ()]",
    "amount if true else 1",
    "f'{amount}'",
])
def test_python_is_never_evaluated(expression):
    with pytest.raises(RuleError):
        compile_expression(expression)


def test_no_eval_exec_or_compile_anywhere(monkeypatch):
    def boom(*_args, **_kwargs):
        raise AssertionError("rules must not evaluate Python source")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, boom)
    rule = Rule("r", "amount > 5 and category in ('travel',) or not merchant_is_new",
                created_at=AT)
    assert rule.matches({"amount": 6.0, "category": "travel", "merchant_is_new": 1.0})
    assert Rule.from_json(rule.to_json()) == rule
    assert format_expression(rule.expression)


def test_limits_on_length_and_depth():
    e = error_of("amount > 1 or " * (MAX_EXPRESSION_CHARS // 10) + "is_night")
    assert "longer than" in e.reason
    e = error_of("(" * (MAX_DEPTH + 1) + "is_night" + ")" * (MAX_DEPTH + 1))
    assert "nested deeper than" in e.reason and e.column == MAX_DEPTH + 1
    e = error_of("not " * (MAX_DEPTH + 1) + "is_night")
    assert "nested deeper than" in e.reason
    ok = "(" * MAX_DEPTH + "is_night" + ")" * MAX_DEPTH
    assert compile_expression(ok).predicate({"is_night": 1.0})
    # long flat chains are fine (no recursion per term)
    flat = " or ".join(["amount > 1"] * 250)
    assert compile_expression(flat).predicate({"amount": 2.0})
    assert error_of("amount in (" + ", ".join(["1"] * 1001) + ")").reason.startswith(
        "'in' list longer than"
    )


def test_expression_must_be_text():
    with pytest.raises(RuleError):
        compile_expression(b"amount > 5")  # type: ignore[arg-type]


# --- property: parse what we render, with the semantics of a reference interpreter ----------

_NUMS = {"amount": [0.0, 5.0, 2000.0, 2500.5], "count_1h": [1.0, 3.0],
         "birth_year": [1970.0, 1999.0, None]}
_STRS = {"category": ["travel", "misc_net", "it's"], "state": ["NY", "CA", None]}
_FLAGS = {"merchant_is_new": [0.0, 1.0], "is_night": [0.0, 1.0]}
_NULLABLE = {"birth_year", "state"}

num_lit = st.sampled_from([-1.0, 0.0, 5.0, 1999.5, 2000.0, 1970.0, 3.0, 0.25])
str_lit = st.sampled_from(["travel", "misc_net", "it's", 'say "hi"', "back\\slash", "NY", ""])


@st.composite
def leaves(draw):
    kind = draw(st.sampled_from(["num", "str", "flag", "in", "fields", "bool"]))
    if kind == "num":
        return ("cmp", draw(st.sampled_from([o for o, _ in OPS])),
                draw(st.sampled_from(sorted(_NUMS))), draw(num_lit), draw(st.booleans()))
    if kind == "str":
        return ("cmp", draw(st.sampled_from(["==", "!="])), draw(st.sampled_from(sorted(_STRS))),
                draw(str_lit), draw(st.booleans()))
    if kind == "flag":
        return ("flag", draw(st.sampled_from(sorted(_FLAGS))))
    if kind == "bool":
        return ("bool", draw(st.booleans()))
    if kind == "fields":
        return ("fields", draw(st.sampled_from([o for o, _ in OPS])), "amount", "count_1h")
    name = draw(st.sampled_from(sorted(_NUMS) + sorted(_STRS)))
    values = draw(st.lists(num_lit if name in _NUMS else str_lit, min_size=1, max_size=4))
    return ("in", draw(st.booleans()), name, tuple(values))


trees = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.tuples(st.just("not"), inner),
        st.tuples(st.sampled_from(["and", "or"]), st.lists(inner, min_size=2, max_size=3)),
    ),
    max_leaves=8,
)


def _lit(v) -> str:
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(v)


def render(tree) -> str:
    """Fully parenthesised text: independent of the precedence under test."""
    kind = tree[0]
    if kind == "cmp":
        _, op, name, value, flipped = tree
        flip = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
        return f"{_lit(value)} {flip[op]} {name}" if flipped else f"{name} {op} {_lit(value)}"
    if kind == "flag":
        return tree[1]
    if kind == "bool":
        return "TRUE" if tree[1] else "false"
    if kind == "fields":
        return f"{tree[2]} {tree[1]} {tree[3]}"
    if kind == "in":
        _, negated, name, values = tree
        return f"{name} {'not in' if negated else 'in'} ({', '.join(map(_lit, values))})"
    if kind == "not":
        return f"not ({render(tree[1])})"
    return "(" + f") {kind} (".join(render(c) for c in tree[1]) + ")"


def reference(tree, env) -> bool:
    kind = tree[0]
    if kind == "cmp":
        _, op, name, value, _ = tree
        v = env[name]
        return v is not None and dict(OPS)[op](v, value)
    if kind == "flag":
        return env[tree[1]] != 0
    if kind == "bool":
        return tree[1]
    if kind == "fields":
        return dict(OPS)[tree[1]](env[tree[2]], env[tree[3]])
    if kind == "in":
        _, negated, name, values = tree
        v = env[name]
        if v is None:
            return False
        return (v not in values) if negated else (v in values)
    if kind == "not":
        return not reference(tree[1], env)
    results = [reference(c, env) for c in tree[1]]
    return all(results) if kind == "and" else any(results)


envs = st.fixed_dictionaries(
    {n: st.sampled_from(v) for n, v in {**_NUMS, **_STRS, **_FLAGS}.items()}
)


@property_settings(300)
@given(tree=trees, rows=st.lists(envs, min_size=1, max_size=8))
def test_parse_of_rendered_trees_matches_the_reference(tree, rows):
    text = render(tree)
    compiled = compile_expression(text)
    canonical = format_expression(text)
    assert format_expression(canonical) == canonical  # canonical text is a fixed point
    again = compile_expression(canonical)
    for env in rows:
        want = reference(tree, env)
        assert compiled.predicate(env) is want, (text, env)
        assert again.predicate(env) is want, (canonical, env)


# --- rules and their JSON -------------------------------------------------------------------


def test_rule_names_actions_and_flags_are_validated():
    for name in ("a", "big-net_2", "x" * 64, "0"):
        assert Rule(name, "true", created_at=AT).name == name
    for name in ("", "x" * 65, "Big", "a b", "a/b", "rule:x", "é", 5):
        with pytest.raises(RuleFormatError, match="rule name"):
            Rule(name, "true", created_at=AT)
    with pytest.raises(RuleFormatError, match="action"):
        Rule("r", "true", "block", created_at=AT)
    with pytest.raises(RuleFormatError, match="enabled"):
        Rule("r", "true", enabled=1, created_at=AT)  # type: ignore[arg-type]
    with pytest.raises(RuleFormatError, match="timezone-aware"):
        Rule("r", "true", created_at=datetime(2024, 1, 1))
    with pytest.raises(RuleError):
        Rule("r", "amount >", created_at=AT)


def test_rule_time_is_utc_milliseconds_and_reason_is_prefixed():
    plus2 = timezone(timedelta(hours=2))
    rule = Rule("r", "true", created_at=datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=plus2))
    assert rule.created_at == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert rule.reason == "RULE:r"
    assert json.loads(rule.to_json())["created_at"] == "2024-05-01T12:00:00.123Z"


def test_rule_json_round_trip_and_shape():
    rule = Rule("big-net", "amount > 2000 and category in ('shopping_net', \"misc_net\")",
                "suppress", enabled=False, created_at=AT)
    doc = json.loads(rule.to_json())
    assert doc == {"v": 1, "name": "big-net", "expression": rule.expression,
                   "action": "suppress", "enabled": False,
                   "created_at": "2024-05-01T12:00:00.000Z"}
    back = Rule.from_json(rule.to_json())
    assert back == rule and back.compiled.tree == rule.compiled.tree
    assert Rule.from_json(rule.to_json().encode()) == rule


GOOD = {"v": 1, "name": "r", "expression": "amount > 5", "action": "alert", "enabled": True,
        "created_at": "2024-05-01T12:00:00.000Z"}


@pytest.mark.parametrize("change,message", [
    ({"v": 2}, "version 2 is not supported"),
    ({"v": "1"}, "version '1'"),
    ({"v": True}, "version True"),
    ({"v": 1.0}, "version 1.0"),
    ({"extra": 1}, "unknown fields ['extra']"),
    ({"name": None}, "name must be a string"),
    ({"enabled": "yes"}, "'enabled' must be true or false"),
    ({"enabled": 1}, "'enabled' must be true or false"),
    ({"action": "ALERT"}, "action"),
    ({"created_at": "2024-05-01T12:00:00"}, "offset"),
    ({"created_at": "2024-05-01"}, "offset"),
    ({"created_at": "yesterday"}, "not an ISO 8601 time"),
    ({"created_at": 1714564800000}, "created_at must be a string"),
    ({"expression": ["amount > 5"]}, "expression must be a string"),
])
def test_rule_json_is_strict(change, message):
    doc = {**GOOD, **change}
    with pytest.raises(RuleFormatError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        Rule.from_json(json.dumps(doc))


@pytest.mark.parametrize("text,message", [
    ('{"v":1,"v":1,"name":"r"}', "duplicate key 'v'"),
    ("[1]", "expected a JSON object"),
    ("{", "not valid JSON"),
    ('{"v": NaN}', "NaN is not valid JSON"),
    (b"\xff{}", "not UTF-8"),
    ('{"v":1}' + " " * 20_000, "longer than"),
])
def test_rule_json_rejects_bad_documents(text, message):
    with pytest.raises(RuleFormatError, match=message):
        Rule.from_json(text)


def test_rule_json_missing_field_and_bad_expression():
    doc = dict(GOOD)
    del doc["enabled"]
    with pytest.raises(RuleFormatError, match=r"lacks fields \['enabled'\]"):
        Rule.from_json(json.dumps(doc))
    with pytest.raises(RuleError, match="unknown identifier"):
        Rule.from_json(json.dumps({**GOOD, "expression": "__import__('os')"}))


rule_names = st.from_regex(r"\A[a-z0-9_-]{1,64}\Z")
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]))


@property_settings(150)
@given(name=rule_names, tree=trees, action=st.sampled_from(["alert", "suppress"]),
       enabled=st.booleans(), created_at=times)
def test_rule_json_round_trip_property(name, tree, action, enabled, created_at):
    rule = Rule(name, render(tree), action, enabled, created_at)
    back = Rule.from_json(rule.to_json())
    assert back == rule
    assert back.to_json() == rule.to_json()
    assert back.compiled.tree == rule.compiled.tree


# --- rule sets ------------------------------------------------------------------------------


def _rule(name, expression, action="alert", enabled=True):
    return Rule(name, expression, action, enabled, AT)


PASS = FakeDecision(0.1, False, ())
ALERT = FakeDecision(0.9, True, ())


def test_rule_set_precedence_suppress_wins():
    rules = RuleSet([
        _rule("big", "amount > 1000"),
        _rule("net", "category == 'shopping_net'"),
        _rule("trusted", "merchant == 'fraud_Good'", "suppress"),
        _rule("small", "amount < 2", "suppress"),
    ])
    f = {"amount": 50.0, "category": "travel", "merchant": "fraud_X"}
    assert rules.apply(f, PASS) == RuleVerdict(False)
    assert rules.apply(f, ALERT) == RuleVerdict(True)
    # alert rules raise an alert and name themselves (name order)
    f2 = {**f, "amount": 5000.0, "category": "shopping_net"}
    assert rules.apply(f2, PASS) == RuleVerdict(True, ("RULE:big", "RULE:net"))
    assert rules.apply(f2, ALERT) == RuleVerdict(True, ("RULE:big", "RULE:net"))
    # a suppress rule clears the model's alert
    f3 = {**f, "merchant": "fraud_Good"}
    assert rules.apply(f3, ALERT) == RuleVerdict(False, ("RULE:trusted",), True)
    # ... and an alert rule's: suppress wins, every matching rule is named
    f4 = {**f2, "merchant": "fraud_Good"}
    assert rules.apply(f4, PASS) == RuleVerdict(
        False, ("RULE:big", "RULE:net", "RULE:trusted"), True
    )
    # suppress rules are not evaluated when nothing would alert
    assert rules.apply({**f, "merchant": "fraud_Good"}, PASS) == RuleVerdict(False)
    f5 = {**f, "amount": 1.0, "merchant": "fraud_Good"}
    assert rules.apply(f5, ALERT) == RuleVerdict(False, ("RULE:small", "RULE:trusted"), True)


def test_disabled_and_always_false_rules_are_skipped():
    rules = RuleSet([_rule("off", "amount > 0", enabled=False),
                     _rule("never", "amount > 0 and false"),
                     _rule("mute", "true", "suppress", enabled=False)])
    assert not rules.active and rules.identifiers == frozenset()
    assert rules.apply({"amount": 5.0}, PASS) == RuleVerdict(False)
    assert rules.apply({"amount": 5.0}, ALERT) == RuleVerdict(True)
    assert len(rules) == 3  # still held, so the control state knows them


def test_rule_set_put_remove_and_duplicates():
    a, b = _rule("a", "amount > 1"), _rule("b", "amount > 2")
    rules = RuleSet([b, a])
    assert [r.name for r in rules] == ["a", "b"]
    a2 = _rule("a", "amount > 100")
    assert rules.put(a2).get("a") == a2 and len(rules.put(a2)) == 2
    assert [r.name for r in rules.remove("a")] == ["b"]
    assert rules.remove("zzz").rules == rules.rules
    assert rules.get("a") == a  # immutable: the original is unchanged
    with pytest.raises(RuleFormatError, match="two rules named 'a'"):
        RuleSet([a, a2])


def test_all_apply_forms_agree():
    rules = RuleSet([
        _rule("v1h", "count_1h >= 2 and amount > 50"),
        _rule("scored", "score > 0.8 and category == 'travel'"),
        _rule("home", "distance_from_home_km < 1 and amount < 20", "suppress"),
    ])
    features_only = RuleSet([_rule("v1h", "count_1h >= 2 and amount > 50"),
                             _rule("tiny", "amount < 20", "suppress")])
    assert not rules.features_only and features_only.features_only
    state = F.new_state()
    txns, vectors, decisions = [], [], []
    rng = random.Random(5)
    for i in range(80):
        t = txn(amount=rng.choice([5.0, 60.0, 500.0]), at=T0 + i * 7 * ONE_MINUTE,
                category=rng.choice(["travel", "home"]))
        txns.append(t)
        vectors.append(F.update(state, t))
        score = rng.random()
        decisions.append(FakeDecision(score, score > 0.7, ()))
    for rs in (rules, features_only):
        rows = [event_row(t, v, d.score) for t, v, d in zip(txns, vectors, decisions,
                                                             strict=True)]
        fields = [event_fields(t, v, d.score) for t, v, d in zip(txns, vectors, decisions,
                                                                  strict=True)]
        by_rows = rs.apply_rows(rows, decisions)
        assert rs.apply_events(txns, vectors, decisions) == by_rows
        assert rs.apply_batch(zip(fields, decisions, strict=True)) == by_rows
        assert [rs.apply(f, d) for f, d in zip(fields, decisions, strict=True)] == by_rows
        assert any(v.reasons for v in by_rows) and any(v.suppressed for v in by_rows)
    empty = RuleSet()
    assert empty.apply_events(txns, vectors, decisions) == [
        RuleVerdict(d.is_alert) for d in decisions
    ]


# --- backtest -------------------------------------------------------------------------------


def test_backtest_counts_on_a_hand_made_set():
    rule = _rule("big", "amount > 1000")
    rows = [
        {"amount": 2000.0, "is_fraud": 1},  # TP
        {"amount": 3000.0, "is_fraud": 1},  # TP
        {"amount": 1500.0, "is_fraud": 0},  # FP
        {"amount": 10.0, "is_fraud": 1},  # FN
        {"amount": 20.0, "is_fraud": 0},  # TN
        {"amount": 30.0, "is_fraud": 0},  # TN
        {"amount": 5000.0, "is_fraud": None},  # unlabelled hit
        {"amount": 5.0},  # unlabelled miss
    ]
    r = backtest(rule, rows)
    assert (r.rows, r.hits, r.labelled, r.frauds) == (8, 4, 6, 3)
    assert (r.true_positives, r.false_positives, r.false_negatives) == (2, 1, 1)
    assert r.unlabelled_hits == 1
    assert r.precision == pytest.approx(2 / 3)
    assert r.recall == pytest.approx(2 / 3)
    assert r.hit_rate == 0.5
    d = r.as_dict()
    assert d["precision"] == r.precision and d["rule"] == "big" and d["action"] == "alert"


def test_backtest_edges():
    rule = _rule("never", "amount > 1e9", "suppress", enabled=False)
    r = backtest(rule, [{"amount": 1.0, "is_fraud": 0}])
    assert (r.hits, r.precision, r.recall) == (0, None, None)
    empty = backtest(rule, [])
    assert (empty.rows, empty.hit_rate) == (0, 0.0)
    with pytest.raises(BacktestError, match="row 2 lacks category"):
        backtest(_rule("c", "category == 'x'"), [{"category": "x"}, {"amount": 1.0}])
    with pytest.raises(BacktestError, match="score needs a model"):
        backtest(_rule("s", "score > 0.5"), [{"amount": 1.0}])


def _stream():
    t = []
    for i in range(12):
        t.append(txn(card="a" * 64, amount=10.0 + i, at=T0 + i * 10 * ONE_MINUTE,
                     label=i % 5 == 0))
        t.append(txn(card="b" * 64, amount=900.0, at=T0 + i * ONE_HOUR, category="shopping_net",
                     label=1))
    return [dataclasses.replace(x, label=int(x.label)) for x in t]


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_read_rows_replays_generated_files_through_the_feature_state(tmp_path, suffix):
    stream = _stream()
    shuffled = stream[:]
    random.Random(1).shuffle(shuffled)
    path = tmp_path / f"txns.{suffix}"
    write_records(shuffled, path)
    rows = list(read_rows(path))
    ordered = sorted(stream, key=lambda t: (t.event_time_ms, t.card_token, t.transaction_id))
    expected = [(t, v) for t, v in F.offline_features(ordered)]
    assert len(rows) == len(expected)
    for row, (t, vector) in zip(rows, expected, strict=True):
        assert [row[n] for n in F.FEATURE_NAMES] == pytest.approx(vector)
        assert row["is_fraud"] == t.label and row["merchant"] == t.merchant
        assert row["category"] == t.category and "score" not in row
    r = backtest(_rule("burst", "count_1h >= 3 and category == 'grocery_pos'"), rows)
    assert r.rows == 24 and r.hits > 0 and r.frauds == sum(t.label for t in stream)


def test_read_rows_takes_feature_files_as_they_are(tmp_path):
    path = tmp_path / "scored.csv"
    names = [*F.FEATURE_NAMES, "category", "state", "is_fraud"]
    with path.open("w", encoding="utf-8") as fh:
        fh.write(",".join(names) + "\n")
        vec = ["1"] * len(F.FEATURE_NAMES)
        fh.write(",".join([*vec, "travel", "", "1"]) + "\n")
        fh.write(",".join([*vec, "home", "NY", ""]) + "\n")
    rows = list(read_rows(path))
    assert rows[0]["amount"] == 1.0 and rows[0]["category"] == "travel"
    assert rows[0]["state"] is None and rows[0]["is_fraud"] == 1
    assert rows[1]["state"] == "NY" and rows[1]["is_fraud"] is None
    jl = tmp_path / "scored.jsonl"
    jl.write_text(json.dumps({**{n: 2 for n in F.FEATURE_NAMES}, "label": 0}) + "\n\n")
    assert list(read_rows(jl)) == [{**{n: 2.0 for n in F.FEATURE_NAMES}, "is_fraud": 0}]


class _AmountScorer:
    feature_names = F.FEATURE_NAMES

    def __init__(self):
        self.calls = 0

    def score_batch(self, rows):
        self.calls += 1
        return [min(1.0, r[0] / 1000.0) for r in rows]


def test_read_rows_adds_the_model_score(tmp_path, monkeypatch):
    monkeypatch.setattr("models.rules.SCORE_CHUNK", 5)
    path = tmp_path / "t.csv"
    write_records(_stream(), path)
    scorer = _AmountScorer()
    rows = list(read_rows(path, scorer=scorer))
    assert scorer.calls == 5  # 24 rows in chunks of 5
    assert all(row["score"] == min(1.0, row["amount"] / 1000.0) for row in rows)
    r = backtest(_rule("s", "score > 0.5"), rows)
    assert r.hits == 12 and r.precision == 1.0


def test_read_rows_refuses_unknown_input(tmp_path):
    with pytest.raises(BacktestError, match="unknown input format"):
        read_rows(tmp_path / "x.txt")
    with pytest.raises(BacktestError, match="no such file"):
        read_rows(tmp_path / "x.csv")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(BacktestError, match="first line is not JSON"):
        read_rows(bad)
