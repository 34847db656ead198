"""Analyst rules: a small expression language over transaction fields, features and the score.

    amount > 2000 and category in ('shopping_net', 'misc_net') and count_1h >= 3

Pure Python (no pyflink). Expressions are parsed here by a recursive-descent parser and
compiled once to closures; Python source is never evaluated (no eval/exec/compile), so an
expression can only read the fields named below and compare them with literals.

Grammar (keywords case-insensitive, identifiers lower case as listed)
-------
    rule        := or_expr
    or_expr     := and_expr ("or" and_expr)*
    and_expr    := not_expr ("and" not_expr)*
    not_expr    := "not" not_expr | "(" or_expr ")" | condition
    condition   := operand [cmp operand | ["not"] "in" "(" literal ("," literal)* [","] ")"]
    cmp         := "<" | "<=" | ">" | ">=" | "==" | "!="
    operand     := identifier | literal
    literal     := number | string | "true" | "false"
    number      := -?digits[.digits][e[+-]digits]         (also .5; no nan/inf)
    string      := '...' or "..." (backslash escapes only \\ \' \")
Precedence, loosest first: `or`, `and`, `not`, comparison (Python's: `not a > 1 and b`
is `(not (a > 1)) and b`). Comparisons do not chain (`1 < a < 2` is an error).

Types: every identifier has one (see `IDENTIFIERS`): number, string or flag (a 0/1 number
feature such as `merchant_is_new`). Ordering (< <= > >=) needs numbers; == and != need the
same type on both sides (a flag also compares with true/false); `in` lists hold literals of
the left side's type. A bare flag (`merchant_is_new`) or `true`/`false` is a condition on its
own; a bare number or string is not. A nullable field (gender, birth_year, zip, state) that
is missing (None) makes every comparison on it false, `!=` and `not in` included; `not`
still negates the result (SQL-like, documented, tested).

Errors (unknown identifier, type mismatch, bad token, unbalanced parentheses, too long or
too deep) raise `RuleError`, whose text points at the spot: `... at column 7` and the
expression with a caret line under the offending part.

Decisions (`RuleSet`)
---------------------
`alert` rules raise an alert, `suppress` rules clear one; SUPPRESS WINS: a suppress rule is
an analyst's explicit "never alert on this" (a known-good merchant, a test card pattern),
and it must be able to silence a noisy alert rule without disabling it. Order per event:
1. every enabled alert rule is evaluated; each match adds `RULE:<name>`;
2. if the model or an alert rule alerts, every enabled suppress rule is evaluated; each match
   adds `RULE:<name>` and the alert is cleared (`suppressed=True`, the model score stays);
3. suppress rules are not evaluated for events that would not alert (nothing to clear).
Rules are evaluated in name order, so reasons are deterministic.

The streaming job's fast path is `RuleSet.apply_events(txns, vectors, decisions)`: rules are
compiled over flat rows in `ROW_FIELDS` order (`event_row(txn, features, score)`: the feature
vector, then the transaction fields that are not features, then the score), each identifier
to `itemgetter(index)`, so no per-event dict is built; when the enabled rules read features
only, the feature vector itself is the row (no copy). `apply_rows` takes prebuilt rows;
`Rule.matches` / `RuleSet.apply` / `apply_batch` take mappings (backtest, tests).
Figures: `python -m bench.rules_bench`.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.features import CATEGORIES, FEATURE_NAMES
from schemas.transaction import Transaction

__all__ = [
    "ACTIONS",
    "IDENTIFIERS",
    "ROW_FIELDS",
    "BacktestError",
    "BacktestResult",
    "CompiledExpression",
    "Rule",
    "RuleError",
    "RuleFormatError",
    "RuleSet",
    "RuleVerdict",
    "backtest",
    "compile_expression",
    "event_fields",
    "event_row",
    "format_expression",
    "read_rows",
]

RULE_FORMAT_VERSION = 1
ACTIONS: tuple[str, ...] = ("alert", "suppress")
RULE_NAME_RE = re.compile(r"[a-z0-9_-]{1,64}")
REASON_PREFIX = "RULE:"
MAX_EXPRESSION_CHARS = 4000
MAX_DEPTH = 64  # nesting of parentheses and `not`
MAX_IN_VALUES = 1000
MAX_JSON_CHARS = 16 * 1024

NUMBER = "number"
STRING = "string"
FLAG = "flag"  # a 0/1 number feature: compares with numbers and with true/false
BOOLEAN = "boolean"  # the type of true/false literals only


@dataclass(frozen=True, slots=True)
class Identifier:
    """What a rule may read: its type and whether it can be missing (None)."""

    name: str
    type: str
    nullable: bool = False
    source: str = "feature"  # feature | transaction | decision


_FLAG_FEATURES = frozenset(
    {"merchant_is_new", "category_is_new", "is_night"}
    | {f"category_{c}" for c in (*CATEGORIES, "other")}
)

# Transaction fields a rule may read, besides `amount` (also a feature, same value). Left
# out on purpose: identifiers of the record or the card (transaction_id, card_token,
# card_last4: a rule about one card is not what rules are for and the token is opaque), the
# ground-truth label and the schema version. tests/unit/test_rules.py checks that every
# Transaction field is either here, a feature, or in TRANSACTION_FIELDS_LEFT_OUT.
TRANSACTION_FIELDS: tuple[Identifier, ...] = (
    Identifier("event_time_ms", NUMBER, source="transaction"),
    Identifier("merchant", STRING, source="transaction"),
    Identifier("category", STRING, source="transaction"),
    Identifier("merchant_lat", NUMBER, source="transaction"),
    Identifier("merchant_long", NUMBER, source="transaction"),
    Identifier("home_lat", NUMBER, source="transaction"),
    Identifier("home_long", NUMBER, source="transaction"),
    Identifier("city_pop", NUMBER, source="transaction"),
    Identifier("gender", STRING, nullable=True, source="transaction"),
    Identifier("birth_year", NUMBER, nullable=True, source="transaction"),
    Identifier("zip", STRING, nullable=True, source="transaction"),
    Identifier("state", STRING, nullable=True, source="transaction"),
)
TRANSACTION_FIELDS_LEFT_OUT = frozenset(
    {"transaction_id", "card_token", "card_last4", "label", "schema_version"}
)
SCORE = Identifier("score", NUMBER, source="decision")  # the model's fraud probability

IDENTIFIERS: dict[str, Identifier] = {
    **{n: Identifier(n, FLAG if n in _FLAG_FEATURES else NUMBER) for n in FEATURE_NAMES},
    **{i.name: i for i in TRANSACTION_FIELDS if i.name not in FEATURE_NAMES},
    SCORE.name: SCORE,
}
_TXN_ONLY: tuple[str, ...] = tuple(
    i.name for i in TRANSACTION_FIELDS if i.name not in FEATURE_NAMES
)
# The flat row of the job's fast path: features, then transaction-only fields, then score.
ROW_FIELDS: tuple[str, ...] = (*FEATURE_NAMES, *_TXN_ONLY, SCORE.name)
ROW_INDEX: dict[str, int] = {name: i for i, name in enumerate(ROW_FIELDS)}
_FEATURE_SET = frozenset(FEATURE_NAMES)
_TXN_GET = operator.attrgetter(*_TXN_ONLY)


def event_row(txn: Transaction, features: Sequence[float], score: float) -> list:
    """The flat row `RuleSet.apply_rows` reads (`ROW_FIELDS` order); one list, no dict."""
    row = list(features)
    row.extend(_TXN_GET(txn))
    row.append(score)
    return row


def event_fields(txn: Transaction, features: Sequence[float], score: float | None = None) -> dict:
    """Every identifier's value as a dict (`score` left out when None): for backtests/tests."""
    out: dict[str, Any] = dict(zip(FEATURE_NAMES, features, strict=True))
    for name in _TXN_ONLY:
        out[name] = getattr(txn, name)
    if score is not None:
        out[SCORE.name] = score
    return out


# --- errors ---------------------------------------------------------------------------------


_ERROR_CONTEXT = 50  # characters shown either side of the spot on a long line


class RuleError(ValueError):
    """A rule expression that does not parse or type-check; the text points at the spot.

    `reason` is the bare message, `position` the 0-based offset into `expression`, `column`
    its 1-based column on its line, `length` how many characters the caret line marks.
    """

    def __init__(self, reason: str, expression: str = "", position: int = 0, length: int = 1):
        self.reason = reason
        self.expression = expression
        self.position = max(0, min(position, len(expression)))
        self.length = max(1, length)
        line_start = expression.rfind("\n", 0, self.position) + 1
        line_end = expression.find("\n", self.position)
        line_end = len(expression) if line_end < 0 else line_end
        self.line = expression.count("\n", 0, self.position) + 1
        self.column = self.position - line_start + 1
        where = f"line {self.line}, column {self.column}" if "\n" in expression else (
            f"column {self.column}"
        )
        text = expression[line_start:line_end]
        at = self.column - 1
        marks = "^" * max(1, min(self.length, len(text) - at))
        if len(text) > 2 * _ERROR_CONTEXT + 20:  # show a window around the spot
            lo = max(0, at - _ERROR_CONTEXT)
            hi = min(len(text), at + len(marks) + _ERROR_CONTEXT)
            marks = marks[: hi - at]
            head, tail = ("..." if lo else ""), ("..." if hi < len(text) else "")
            text = head + text[lo:hi] + tail
            at = at - lo + len(head)
        # keep tabs so the caret lines up under tab-indented text
        pad = "".join("\t" if ch == "\t" else " " for ch in text[:at])
        super().__init__(f"{reason} at {where}\n  {text}\n  {pad}{marks}")


class RuleFormatError(ValueError):
    """A rule (or its JSON) that is not well formed: name, action, fields, version."""


# --- lexer ----------------------------------------------------------------------------------

_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})
_CMP_OPS = ("<=", ">=", "==", "!=", "<", ">")
_NUMBER_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WS = " \t\r\n"
_HINTS = {
    "=": "use == for equality",
    "&": "use 'and'",
    "|": "use 'or'",
    "!": "use 'not' (or != for inequality)",
}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # num | str | name | kw | op | ( | ) | , | end
    value: Any
    pos: int
    end: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _WS:
            i += 1
            continue
        if ch in "(),":
            toks.append(_Tok(ch, ch, i, i + 1))
            i += 1
            continue
        if ch in "<>=!":
            two = text[i : i + 2]
            if two in _CMP_OPS:
                toks.append(_Tok("op", two, i, i + 2))
                i += 2
                continue
            if ch in "<>":
                if two == "<>":
                    raise RuleError("'<>' is not an operator; use !=", text, i, 2)
                toks.append(_Tok("op", ch, i, i + 1))
                i += 1
                continue
            raise RuleError(f"unexpected {ch!r}; {_HINTS[ch]}", text, i)
        if ch in "'\"":
            value, end = _string(text, i)
            toks.append(_Tok("str", value, i, end))
            i = end
            continue
        m = _NUMBER_RE.match(text, i)
        if m:
            end = m.end()
            if end < n and (text[end].isalnum() or text[end] in "_."):
                bad = end
                while bad < n and (text[bad].isalnum() or text[bad] in "_."):
                    bad += 1
                raise RuleError("malformed number", text, i, bad - i)
            value = float(m.group())
            if not math.isfinite(value):
                raise RuleError("number out of range", text, i, end - i)
            toks.append(_Tok("num", value, i, end))
            i = end
            continue
        m = _NAME_RE.match(text, i)
        if m:
            word = m.group()
            lower = word.lower()
            if lower in _KEYWORDS:
                toks.append(_Tok("kw", lower, i, m.end()))
            else:
                toks.append(_Tok("name", word, i, m.end()))
            i = m.end()
            continue
        hint = _HINTS.get(ch)
        shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"
        raise RuleError(f"unexpected character {shown}" + (f"; {hint}" if hint else ""), text, i)
    toks.append(_Tok("end", None, n, n))
    return toks


def _string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt not in ("\\", "'", '"'):
                raise RuleError("unknown escape in string (only \\\\ \\' \\\")", text, i, 2)
            out.append(nxt)
            i += 2
            continue
        if ch == "\n":
            break
        out.append(ch)
        i += 1
    raise RuleError("unterminated string", text, start, i - start)


# --- parser ---------------------------------------------------------------------------------
# AST (tuples, immutable, comparable):
#   ("or", (child, ...)) | ("and", (child, ...)) | ("not", child)
#   ("cmp", op, left, right) | ("in", negated, left, values) | ("truth", operand)
#   operand: ("id", name) | ("lit", value)   (value: float | str | bool)


def _type_of(operand: tuple) -> str:
    if operand[0] == "id":
        return IDENTIFIERS[operand[1]].type
    value = operand[1]
    if isinstance(value, bool):
        return BOOLEAN
    return STRING if isinstance(value, str) else NUMBER


def _a(kind: str) -> str:
    return {NUMBER: "a number", STRING: "a string", FLAG: "a flag", BOOLEAN: "true/false"}[kind]


def _comparable(op: str, left: str, right: str) -> bool:
    numeric = (NUMBER, FLAG)
    if op in ("<", "<=", ">", ">="):
        return left in numeric and right in numeric
    if left in numeric and right in numeric:
        return True
    if left == right:
        return True
    return {left, right} == {FLAG, BOOLEAN}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.names: set[str] = set()

    def error(self, reason: str, tok: _Tok) -> RuleError:
        return RuleError(reason, self.text, tok.pos, tok.end - tok.pos)

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def at_kw(self, word: str) -> bool:
        tok = self.toks[self.i]
        return tok.kind == "kw" and tok.value == word

    def parse(self) -> tuple:
        if self.peek().kind == "end":
            raise RuleError("empty expression", self.text, 0)
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            if tok.kind == ")":
                raise self.error("unbalanced ')'", tok)
            raise self.error(f"unexpected {_describe(tok)}; expected 'and', 'or' or the end", tok)
        return node

    def or_expr(self) -> tuple:
        parts = [self.and_expr()]
        while self.at_kw("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else ("or", tuple(parts))

    def and_expr(self) -> tuple:
        parts = [self.not_expr()]
        while self.at_kw("and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else ("and", tuple(parts))

    def deeper(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested deeper than {MAX_DEPTH} levels", tok)

    def not_expr(self) -> tuple:
        tok = self.peek()
        if tok.kind == "kw" and tok.value == "not":
            self.take()
            self.deeper(tok)
            node = ("not", self.not_expr())
            self.depth -= 1
            return node
        if tok.kind == "(":
            self.take()
            self.deeper(tok)
            node = self.or_expr()
            close = self.peek()
            if close.kind != ")":
                if close.kind == "end":
                    raise self.error("unbalanced '(': no matching ')'", tok)
                raise self.error(f"unexpected {_describe(close)}; expected ')'", close)
            self.take()
            self.depth -= 1
            return node
        return self.condition()

    def operand(self) -> tuple[tuple, _Tok]:
        tok = self.take()
        if tok.kind == "name":
            if tok.value not in IDENTIFIERS:
                raise self.error(_unknown(tok.value), tok)
            self.names.add(tok.value)
            return ("id", tok.value), tok
        if tok.kind in ("num", "str"):
            return ("lit", tok.value), tok
        if tok.kind == "kw" and tok.value in ("true", "false"):
            return ("lit", tok.value == "true"), tok
        if tok.kind == "end":
            raise self.error("expression ends too early: expected a field, a value or '('", tok)
        raise self.error(f"unexpected {_describe(tok)}; expected a field, a value or '('", tok)

    def condition(self) -> tuple:
        left, ltok = self.operand()
        nxt = self.peek()
        if nxt.kind == "op":
            op = self.take().value
            right, rtok = self.operand()
            lt, rt = _type_of(left), _type_of(right)
            if not _comparable(op, lt, rt):
                if op in ("<", "<=", ">", ">="):
                    side, st = (right, rt) if lt in (NUMBER, FLAG) else (left, lt)
                    why = f"{op} compares numbers, {_show(side)} is {_a(st)}"
                else:
                    why = (f"{_show(left)} is {_a(lt)}, {_show(right)} is {_a(rt)}; "
                           f"{op} needs the same type on both sides")
                raise RuleError(
                    f"type mismatch: {why}", self.text, ltok.pos, rtok.end - ltok.pos
                )
            after = self.peek()
            if after.kind == "op":
                raise self.error("comparisons do not chain; use 'and'", after)
            return ("cmp", op, left, right)
        negated = False
        if nxt.kind == "kw" and nxt.value == "not" and self.toks[self.i + 1].kind == "kw" and (
            self.toks[self.i + 1].value == "in"
        ):
            self.take()
            negated = True
            nxt = self.peek()
        if nxt.kind == "kw" and nxt.value == "in":
            self.take()
            return self.in_list(left, ltok, negated)
        lt = _type_of(left)
        if lt in (FLAG, BOOLEAN):
            return ("truth", left)
        raise RuleError(
            f"{_show(left)} is {_a(lt)}, not a condition: compare it (e.g. {_show(left)} > ...)",
            self.text, ltok.pos, ltok.end - ltok.pos,
        )

    def in_list(self, left: tuple, ltok: _Tok, negated: bool) -> tuple:
        if left[0] != "id":
            raise self.error("the left side of 'in' must be a field name", ltok)
        lt = _type_of(left)
        want = NUMBER if lt == FLAG else lt
        open_tok = self.take()
        if open_tok.kind != "(":
            raise self.error(f"expected '(' after 'in', found {_describe(open_tok)}", open_tok)
        values: list = []
        while True:
            tok = self.peek()
            if tok.kind == ")" and values:
                self.take()
                break
            if tok.kind == ")":
                raise self.error("empty 'in' list", tok)
            value, vtok = self.operand()
            if value[0] != "lit":
                raise self.error("'in' lists hold values, not field names", vtok)
            vt = _type_of(value)
            if vt != want:
                raise RuleError(
                    f"type mismatch: {_show(left)} is {_a(lt)}, the list holds {_show(value)} "
                    f"({_a(vt)})",
                    self.text, vtok.pos, vtok.end - vtok.pos,
                )
            values.append(value[1])
            if len(values) > MAX_IN_VALUES:
                raise self.error(f"'in' list longer than {MAX_IN_VALUES} values", vtok)
            sep = self.take()
            if sep.kind == ")":
                break
            if sep.kind != ",":
                if sep.kind == "end":
                    raise self.error("unbalanced '(': no matching ')'", open_tok)
                raise self.error(f"unexpected {_describe(sep)}; expected ',' or ')'", sep)
        return ("in", negated, left, tuple(values))


def _describe(tok: _Tok) -> str:
    if tok.kind == "end":
        return "end of expression"
    return repr(tok.value if tok.kind != "str" else _quote(tok.value))


def _show(operand: tuple) -> str:
    if operand[0] == "id":
        return operand[1]
    return _literal_text(operand[1])


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), IDENTIFIERS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown identifier {name!r}{hint}"


# --- rendering (canonical text) ---------------------------------------------------------------


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _literal_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


def _render(node: tuple, parent: int = 0) -> str:
    kind = node[0]
    if kind in ("or", "and"):
        level = 1 if kind == "or" else 2
        text = f" {kind} ".join(_render(c, level) for c in node[1])
        return f"({text})" if parent > level else text
    if kind == "not":
        return f"not {_render(node[1], 3)}"
    if kind == "cmp":
        return f"{_show(node[2])} {node[1]} {_show(node[3])}"
    if kind == "in":
        values = ", ".join(_literal_text(v) for v in node[3])
        return f"{_show(node[2])} {'not in' if node[1] else 'in'} ({values})"
    return _show(node[1])  # truth


def format_expression(text: str) -> str:
    """The canonical text of an expression (lower-case keywords, single quotes, minimal
    parentheses); parsing it gives the same tree. Raises `RuleError` like the parser."""
    return _render(_parse(text)[0])


# --- compilation ----------------------------------------------------------------------------

Env = Any
Predicate = Callable[[Env], bool]
Getter = Callable[[str], Callable[[Env], Any]]


def _true(_env: Env) -> bool:
    return True


def _false(_env: Env) -> bool:
    return False


_OPS = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
# field-vs-constant comparisons written out: one Python frame per comparison
_CMP_CONST: dict[str, Callable[[Any, Any], Predicate]] = {
    "<": lambda g, c: lambda e: g(e) < c,
    "<=": lambda g, c: lambda e: g(e) <= c,
    ">": lambda g, c: lambda e: g(e) > c,
    ">=": lambda g, c: lambda e: g(e) >= c,
    "==": lambda g, c: lambda e: g(e) == c,
    "!=": lambda g, c: lambda e: g(e) != c,
}
_CMP_FIELDS: dict[str, Callable[[Any, Any], Predicate]] = {
    "<": lambda g, h: lambda e: g(e) < h(e),
    "<=": lambda g, h: lambda e: g(e) <= h(e),
    ">": lambda g, h: lambda e: g(e) > h(e),
    ">=": lambda g, h: lambda e: g(e) >= h(e),
    "==": lambda g, h: lambda e: g(e) == h(e),
    "!=": lambda g, h: lambda e: g(e) != h(e),
}


def _const_value(operand: tuple, other_type: str) -> Any:
    value = operand[1]
    if isinstance(value, bool) and other_type == FLAG:
        return 1.0 if value else 0.0
    return value


def _compile(node: tuple, get: Getter) -> tuple[Predicate, bool | None]:
    """-> (predicate, constant): `constant` is True/False when the node never varies."""
    kind = node[0]
    if kind in ("and", "or"):
        is_and = kind == "and"
        parts = []
        for child in node[1]:
            fn, const = _compile(child, get)
            if const is None:
                parts.append(fn)
            elif const is not is_and:  # False in `and`, True in `or`: decides the whole
                return (_false, False) if is_and else (_true, True)
        if not parts:
            return (_true, True) if is_and else (_false, False)
        if len(parts) == 1:
            return parts[0], None
        return (_all(parts) if is_and else _any(parts)), None
    if kind == "not":
        fn, const = _compile(node[1], get)
        if const is not None:
            return (_false, False) if const else (_true, True)
        return (lambda e: not fn(e)), None
    if kind == "truth":
        operand = node[1]
        if operand[0] == "lit":
            return (_true, True) if operand[1] else (_false, False)
        g = get(operand[1])
        return (lambda e: g(e) != 0), None
    if kind == "in":
        _, negated, left, values = node
        g = get(left[1])
        members = frozenset(values)
        if IDENTIFIERS[left[1]].nullable:
            if negated:
                return (lambda e: (v := g(e)) is not None and v not in members), None
            return (lambda e: g(e) in members), None  # None is never a member
        if negated:
            return (lambda e: g(e) not in members), None
        return (lambda e: g(e) in members), None
    # cmp
    _, op, left, right = node
    if left[0] == "lit" and right[0] == "lit":
        const = bool(_OPS[op](_const_value(left, _type_of(right)),
                              _const_value(right, _type_of(left))))
        return (_true, True) if const else (_false, False)
    if left[0] == "lit":  # 5 < amount  ->  amount > 5
        left, right, op = right, left, _FLIP[op]
    g = get(left[1])
    left_null = IDENTIFIERS[left[1]].nullable
    if right[0] == "lit":
        c = _const_value(right, _type_of(left))
        if not left_null:
            return _CMP_CONST[op](g, c), None
        f = _OPS[op]
        return (lambda e: (v := g(e)) is not None and f(v, c)), None
    h = get(right[1])
    if not (left_null or IDENTIFIERS[right[1]].nullable):
        return _CMP_FIELDS[op](g, h), None
    f = _OPS[op]
    return (lambda e: (a := g(e)) is not None and (b := h(e)) is not None and f(a, b)), None


def _all(parts: list[Predicate]) -> Predicate:
    if len(parts) == 2:
        a, b = parts
        return lambda e: a(e) and b(e)
    if len(parts) == 3:
        a, b, c = parts
        return lambda e: a(e) and b(e) and c(e)
    first, rest = parts[0], tuple(parts[1:])

    def all_of(e: Env) -> bool:
        if not first(e):
            return False
        for p in rest:
            if not p(e):
                return False
        return True

    return all_of


def _any(parts: list[Predicate]) -> Predicate:
    if len(parts) == 2:
        a, b = parts
        return lambda e: a(e) or b(e)
    if len(parts) == 3:
        a, b, c = parts
        return lambda e: a(e) or b(e) or c(e)
    first, rest = parts[0], tuple(parts[1:])

    def any_of(e: Env) -> bool:
        if first(e):
            return True
        for p in rest:
            if p(e):
                return True
        return False

    return any_of


def _parse(text: str) -> tuple[tuple, frozenset[str]]:
    if not isinstance(text, str):
        raise RuleError(f"an expression is text, not {type(text).__name__}")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise RuleError(
            f"expression longer than {MAX_EXPRESSION_CHARS} characters", text,
            MAX_EXPRESSION_CHARS,
        )
    parser = _Parser(text)
    return parser.parse(), frozenset(parser.names)


def _mapping_getter(name: str) -> Callable[[Mapping], Any]:
    return operator.itemgetter(name)


def _row_getter(name: str) -> Callable[[Sequence], Any]:
    return operator.itemgetter(ROW_INDEX[name])


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    """A parsed, type-checked expression and its two compiled forms.

    - `predicate(fields)`: `fields` maps every name in `identifiers` to its value (None only
      for nullable fields); a missing name raises KeyError.
    - `row_predicate(row)`: the same test over a flat row in `ROW_FIELDS` order.
    Both return a bool and never raise for well-typed values.
    """

    text: str
    tree: tuple
    identifiers: frozenset[str]
    predicate: Callable[[Mapping[str, object]], bool]
    row_predicate: Callable[[Sequence[object]], bool]
    constant: bool | None  # True/False when the expression does not depend on the event

    @property
    def canonical(self) -> str:
        return _render(self.tree)


def compile_expression(text: str) -> CompiledExpression:
    """Parse, type-check and compile `text` (raises `RuleError`)."""
    tree, names = _parse(text)
    predicate, constant = _compile(tree, _mapping_getter)
    row_predicate, _ = _compile(tree, _row_getter)
    return CompiledExpression(text, tree, names, predicate, row_predicate, constant)


# --- rules ----------------------------------------------------------------------------------


def _format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Rule:
    """One analyst rule. Validated and compiled on construction (`RuleFormatError` for the
    name/action/flags, `RuleError` for the expression).

    `name`: `[a-z0-9_-]{1,64}` (the reason code is `RULE:<name>`, the control-topic key
    `rule:<name>`); `action`: `alert` or `suppress`; `created_at`: timezone-aware, kept in
    UTC at millisecond precision (what the JSON carries).
    """

    name: str
    expression: str
    action: str = "alert"
    enabled: bool = True
    created_at: datetime = field(default_factory=_now)
    compiled: CompiledExpression = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not RULE_NAME_RE.fullmatch(self.name):
            raise RuleFormatError(
                f"rule name {self.name!r} must be 1-64 characters of a-z, 0-9, '_' or '-'"
            )
        if self.action not in ACTIONS:
            raise RuleFormatError(f"rule action {self.action!r} must be one of {ACTIONS}")
        if type(self.enabled) is not bool:
            raise RuleFormatError(f"rule 'enabled' must be true or false, not {self.enabled!r}")
        moment = self.created_at
        if not isinstance(moment, datetime) or moment.utcoffset() is None:
            raise RuleFormatError(f"rule created_at must be a timezone-aware time: {moment!r}")
        moment = moment.astimezone(UTC)
        object.__setattr__(
            self, "created_at", moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        )
        object.__setattr__(self, "compiled", compile_expression(self.expression))

    @property
    def reason(self) -> str:
        """The reason code this rule adds: `RULE:<name>`."""
        return REASON_PREFIX + self.name

    @property
    def identifiers(self) -> frozenset[str]:
        return self.compiled.identifiers

    def matches(self, fields: Mapping[str, object]) -> bool:
        """Whether the expression holds for `fields` (ignores `enabled`)."""
        return self.compiled.predicate(fields)

    def to_dict(self) -> dict[str, Any]:
        """The rule's fields as JSON-ready values (no version: see `to_json`)."""
        return {
            "name": self.name,
            "expression": self.expression,
            "action": self.action,
            "enabled": self.enabled,
            "created_at": _format_time(self.created_at),
        }

    def to_json(self) -> str:
        """`{"v": 1, "name", "expression", "action", "enabled", "created_at"}` as compact JSON."""
        return json.dumps({"v": RULE_FORMAT_VERSION, **self.to_dict()}, separators=(",", ":"),
                          ensure_ascii=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str = "rule") -> Rule:
        """Strict: exactly the five fields of `to_dict`, each of its type."""
        if not isinstance(doc, Mapping):
            raise RuleFormatError(f"{where} must be a JSON object")
        expected = {"name", "expression", "action", "enabled", "created_at"}
        extra = sorted(set(doc) - expected)
        missing = sorted(expected - set(doc))
        if extra:
            raise RuleFormatError(f"{where} has unknown fields {extra}")
        if missing:
            raise RuleFormatError(f"{where} lacks fields {missing}")
        for key in ("name", "expression", "action", "created_at"):
            if not isinstance(doc[key], str):
                raise RuleFormatError(f"{where}.{key} must be a string")
        return cls(
            name=doc["name"],
            expression=doc["expression"],
            action=doc["action"],
            enabled=doc["enabled"],
            created_at=parse_time(doc["created_at"], f"{where}.created_at"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Rule:
        """Inverse of `to_json`; unknown version or fields -> `RuleFormatError`."""
        doc = strict_json_object(text, "rule")
        version = doc.pop("v", None)
        if type(version) is not int or version != RULE_FORMAT_VERSION:
            raise RuleFormatError(
                f"rule format version {version!r} is not supported (expected "
                f"{RULE_FORMAT_VERSION})"
            )
        return cls.from_dict(doc)


def parse_time(text: str, where: str) -> datetime:
    """An RFC 3339 time with an offset (`Z` or `+hh:mm`) -> aware datetime."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RuleFormatError(f"{where}: not an ISO 8601 time: {text!r}") from exc
    if moment.utcoffset() is None or "T" not in text:
        raise RuleFormatError(f"{where}: needs a date, a time and an offset (Z): {text!r}")
    return moment


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise RuleFormatError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise RuleFormatError(f"{name} is not valid JSON")


def strict_json_object(text: str | bytes, what: str,
                       max_chars: int = MAX_JSON_CHARS) -> dict[str, Any]:
    """Parse a JSON object strictly: no duplicate keys, no NaN/Infinity, at most `max_chars`."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RuleFormatError(f"{what}: not UTF-8: {exc}") from exc
    if not isinstance(text, str):
        raise RuleFormatError(f"{what}: expected JSON text, got {type(text).__name__}")
    if len(text) > max_chars:
        raise RuleFormatError(f"{what}: message longer than {max_chars} characters")
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except RuleFormatError as exc:
        raise RuleFormatError(f"{what}: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise RuleFormatError(f"{what}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise RuleFormatError(f"{what}: expected a JSON object")
    return doc


# --- rule sets ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """The decision after rules.

    `is_alert`: the final decision; `reasons`: `RULE:<name>` of every alert rule that
    matched, then of every suppress rule that matched (each group in name order);
    `suppressed`: a suppress rule cleared an alert (the model's or an alert rule's).
    """

    is_alert: bool
    reasons: tuple[str, ...] = ()
    suppressed: bool = False


_PASS = RuleVerdict(False)
_ALERT = RuleVerdict(True)


class RuleSet:
    """The rules in force: immutable; `put`/`remove` return a new set.

    Only enabled rules are evaluated. See the module docstring for the precedence
    (suppress wins) and the evaluation order.
    """

    __slots__ = ("rules", "_alert", "_suppress", "_alert_rows", "_suppress_rows", "identifiers",
                 "features_only")

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        by_name: dict[str, Rule] = {}
        for rule in rules:
            if rule.name in by_name:
                raise RuleFormatError(f"two rules named {rule.name!r}")
            by_name[rule.name] = rule
        self.rules: tuple[Rule, ...] = tuple(by_name[n] for n in sorted(by_name))
        live = [r for r in self.rules if r.enabled and r.compiled.constant is not False]
        alert = [r for r in live if r.action == "alert"]
        suppress = [r for r in live if r.action == "suppress"]
        self._alert = tuple((r.reason, r.compiled.predicate) for r in alert)
        self._suppress = tuple((r.reason, r.compiled.predicate) for r in suppress)
        self._alert_rows = tuple((r.reason, r.compiled.row_predicate) for r in alert)
        self._suppress_rows = tuple((r.reason, r.compiled.row_predicate) for r in suppress)
        self.identifiers: frozenset[str] = frozenset().union(*(r.identifiers for r in live))
        # ROW_FIELDS starts with FEATURE_NAMES: rules that read features only can take the
        # feature vector itself as their row (no copy per event)
        self.features_only: bool = self.identifiers <= _FEATURE_SET

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({[r.name for r in self.rules]})"

    def get(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def put(self, rule: Rule) -> RuleSet:
        """A set with `rule` added, or replacing the rule of the same name."""
        return RuleSet([*(r for r in self.rules if r.name != rule.name), rule])

    def remove(self, name: str) -> RuleSet:
        """A set without the rule `name` (unchanged when there is none)."""
        return RuleSet(r for r in self.rules if r.name != name)

    @property
    def active(self) -> bool:
        """Whether any enabled rule can change a decision (the job may skip rules if not)."""
        return bool(self._alert or self._suppress)

    def apply(self, fields: Mapping[str, object], decision: Any) -> RuleVerdict:
        """The verdict for one event; `decision` has `is_alert` (the model's decision)."""
        return _verdict(fields, bool(decision.is_alert), self._alert, self._suppress)

    def apply_batch(self, items: Iterable[tuple[Mapping[str, object], Any]]) -> list[RuleVerdict]:
        """`apply` over (fields, decision) pairs, in order."""
        alert, suppress = self._alert, self._suppress
        return [_verdict(f, bool(d.is_alert), alert, suppress) for f, d in items]

    def apply_rows(self, rows: Sequence[Sequence[object]], decisions: Sequence[Any]
                   ) -> list[RuleVerdict]:
        """The job's fast path: rows in `ROW_FIELDS` order (`event_row`), one decision each."""
        alert, suppress = self._alert_rows, self._suppress_rows
        if not alert and not suppress:
            return [_ALERT if d.is_alert else _PASS for d in decisions]
        return [_verdict(r, bool(d.is_alert), alert, suppress)
                for r, d in zip(rows, decisions, strict=True)]

    def apply_events(self, txns: Sequence[Transaction], vectors: Sequence[Sequence[float]],
                     decisions: Sequence[Any]) -> list[RuleVerdict]:
        """The job's call: per event its transaction, feature vector (`FEATURE_NAMES` order)
        and model decision (`is_alert`, `score`). Builds a flat row per event only when an
        enabled rule reads a transaction field or the score; else reads the vector."""
        alert, suppress = self._alert_rows, self._suppress_rows
        if not alert and not suppress:
            return [_ALERT if d.is_alert else _PASS for d in decisions]
        if self.features_only:
            return [_verdict(v, bool(d.is_alert), alert, suppress)
                    for v, d in zip(vectors, decisions, strict=True)]
        return [_verdict(event_row(t, v, d.score), bool(d.is_alert), alert, suppress)
                for t, v, d in zip(txns, vectors, decisions, strict=True)]


def _verdict(env: Env, model_alert: bool, alert: tuple, suppress: tuple) -> RuleVerdict:
    hits = None
    for reason, predicate in alert:
        if predicate(env):
            if hits is None:
                hits = [reason]
            else:
                hits.append(reason)
    if not model_alert and hits is None:
        return _PASS
    suppressed = False
    for reason, predicate in suppress:  # evaluated only for would-be alerts
        if predicate(env):
            suppressed = True
            if hits is None:
                hits = [reason]
            else:
                hits.append(reason)
    if suppressed:
        return RuleVerdict(False, tuple(hits), True)
    if hits is None:
        return _ALERT
    return RuleVerdict(True, tuple(hits))


# --- backtest -------------------------------------------------------------------------------

LABEL_FIELD = "is_fraud"


class BacktestError(ValueError):
    """The rows cannot back-test the rule (fields missing, unreadable input)."""


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """What a rule would have matched over labelled rows.

    The counts compare MATCHES with the label, whatever the action: for an `alert` rule
    precision is the fraud share of what it would flag and recall the share of fraud it
    catches; for a `suppress` rule the same numbers say how much fraud it would silence
    (there, high is bad). `precision` is None without a labelled hit, `recall` None
    without a labelled fraud.
    """

    rule: str
    action: str
    rows: int
    hits: int
    labelled: int
    frauds: int
    true_positives: int
    false_positives: int
    false_negatives: int
    unlabelled_hits: int

    @property
    def precision(self) -> float | None:
        judged = self.true_positives + self.false_positives
        return self.true_positives / judged if judged else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.frauds if self.frauds else None

    @property
    def hit_rate(self) -> float:
        return self.hits / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out.update(precision=self.precision, recall=self.recall, hit_rate=self.hit_rate)
        return out


def backtest(rule: Rule, rows: Iterable[Mapping[str, object]], label: str = LABEL_FIELD
             ) -> BacktestResult:
    """Run `rule` (enabled or not) over `rows`: each maps the rule's identifiers to values and
    `label` to 1 (fraud), 0 (legit) or None/absent (unknown). Raises `BacktestError` when a
    row lacks a field the rule reads (the message names it and the row)."""
    predicate = rule.compiled.predicate
    needed = sorted(rule.identifiers)
    n = hits = labelled = frauds = tp = fp = unlabelled_hits = 0
    for n, row in enumerate(rows, start=1):  # noqa: B007 - n is the count after the loop
        try:
            hit = predicate(row)
        except KeyError:
            missing = [k for k in needed if k not in row]
            raise BacktestError(
                f"row {n} lacks {', '.join(missing)}, which rule {rule.name!r} reads"
                + (" (score needs a model: pass one to read_rows)" if "score" in missing else "")
            ) from None
        except TypeError as exc:
            raise BacktestError(f"row {n}: a field has the wrong type for {rule.name!r}: {exc}"
                                ) from None
        truth = row.get(label)
        if truth is None:
            unlabelled_hits += hit
        else:
            labelled += 1
            fraud = bool(truth)
            frauds += fraud
            if hit:
                if fraud:
                    tp += 1
                else:
                    fp += 1
        hits += hit
    return BacktestResult(
        rule=rule.name, action=rule.action, rows=n, hits=hits, labelled=labelled,
        frauds=frauds, true_positives=tp, false_positives=fp, false_negatives=frauds - tp,
        unlabelled_hits=unlabelled_hits,
    )


# --- backtest input -------------------------------------------------------------------------

_READ_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
                  ".parquet": "parquet", ".pq": "parquet"}
_BACKTEST_TOKEN_KEY = b"fraudstream rules backtest: tokens only group rows by card"
SCORE_CHUNK = 8192


def read_rows(path: str | Path, *, scorer: Any = None, token_key: bytes | None = None
              ) -> Iterator[dict[str, Any]]:
    """Rows for `backtest` from a file (CSV, JSONL or Parquet).

    - A file that already holds every feature column (`FEATURE_NAMES`, e.g. an export of
      scored rows) is read as is: identifier columns are converted to their types, `is_fraud`
      (or `label`) to 0/1/None.
    - Otherwise it is a transaction file as `fraudstream generate` writes it (JSONL wire
      records, CSV/Parquet of `Transaction` columns) or a Kaggle CSV: transactions are read
      with `models.training.dataset.read_transactions`, sorted into event-time order
      (`event_order_key`, as training does) and replayed through the per-card feature state
      (`models.features.offline_features`), so the features are the ones the job computes
      for an in-order stream. `token_key` only matters for raw card numbers (JSONL/Kaggle): it
      groups rows by card within this run.
    - `scorer` (a `models.scoring.Scorer`): adds `score` (rules that read it need it).
    Returns an iterator of one dict per row (event-time order for transaction files); the
    format and the file are checked at once (`BacktestError`), the rows read lazily.
    """
    path = Path(path)
    kind = _READ_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise BacktestError(f"{path}: unknown input format {path.suffix!r} (csv, jsonl, parquet)")
    if not path.is_file():
        raise BacktestError(f"{path}: no such file")
    columns = _columns(path, kind)
    if set(FEATURE_NAMES) <= columns:
        rows: Iterator[dict[str, Any]] = (_typed(r) for r in _raw_rows(path, kind))
    else:
        rows = _replayed(path, token_key or _BACKTEST_TOKEN_KEY)
    return rows if scorer is None else _with_scores(rows, scorer)


def _with_scores(rows: Iterator[dict[str, Any]], scorer: Any) -> Iterator[dict[str, Any]]:
    names = list(scorer.feature_names)
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= SCORE_CHUNK:
            yield from _scored(chunk, names, scorer)
            chunk = []
    if chunk:
        yield from _scored(chunk, names, scorer)


def _scored(chunk: list[dict], names: list[str], scorer: Any) -> list[dict]:
    scores = scorer.score_batch([[row[n] for n in names] for row in chunk])
    for row, score in zip(chunk, scores, strict=True):
        row[SCORE.name] = float(score)
    return chunk


def _columns(path: Path, kind: str) -> set[str]:
    if kind == "csv":
        with path.open(newline="", encoding="utf-8") as fh:
            return set(next(csv.reader(fh), []))
    if kind == "parquet":
        import pyarrow.parquet as pq

        return set(pq.ParquetFile(path).schema_arrow.names)
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    doc = json.loads(line)
                except ValueError as exc:
                    raise BacktestError(f"{path}: first line is not JSON: {exc}") from exc
                return set(doc) if isinstance(doc, dict) else set()
    return set()


def _raw_rows(path: Path, kind: str) -> Iterator[dict[str, Any]]:
    if kind == "csv":
        with path.open(newline="", encoding="utf-8") as fh:
            yield from csv.DictReader(fh)
    elif kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()
    else:
        with path.open("rb") as fh:
            for n, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        doc = json.loads(line)
                    except ValueError as exc:
                        raise BacktestError(f"{path}:{n}: not JSON: {exc}") from exc
                    if not isinstance(doc, dict):
                        raise BacktestError(f"{path}:{n}: not a JSON object")
                    yield doc


def _typed(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Identifier columns to their types ("" and None -> None); the label to 0/1/None."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        ident = IDENTIFIERS.get(name)
        if ident is None:
            continue
        if value is None or value == "":
            out[name] = None
        elif ident.type == STRING:
            out[name] = str(value)
        else:
            try:
                out[name] = float(value)
            except (TypeError, ValueError):
                raise BacktestError(f"column {name}: {value!r} is not a number") from None
    truth = raw.get(LABEL_FIELD, raw.get("label"))
    if truth is None or truth == "":
        out[LABEL_FIELD] = None
    else:
        try:
            out[LABEL_FIELD] = int(float(truth))
        except (TypeError, ValueError):
            raise BacktestError(f"label {truth!r} is not 0 or 1") from None
    return out


def _replayed(path: Path, token_key: bytes) -> Iterator[dict[str, Any]]:
    from models.features import offline_features
    from models.training.dataset import DatasetError, event_order_key, read_transactions

    try:
        txns = read_transactions(path, token_key)
    except DatasetError as exc:
        raise BacktestError(str(exc)) from exc
    txns.sort(key=event_order_key)
    for txn, vector in offline_features(txns):
        row = event_fields(txn, vector)
        row[LABEL_FIELD] = txn.label
        yield row
