"""Control messages: model promotion/shadowing and analyst rules, one envelope, one topic.

Pure Python (no pyflink). The scoring job reads these from a COMPACTED Kafka topic; the CLI
writes them. Every message is one JSON object with a version and a kind:

    {"v":1,"kind":"model.promote","version":"<model version>","issued_at":"...Z",
     "model":{"sha256":"<hex>","onnx_b64":"<the ONNX file, base64>"}}
    {"v":1,"kind":"model.shadow", ... the same fields as model.promote}
    {"v":1,"kind":"model.unshadow","version":"<model version>","issued_at":"...Z"}
    {"v":1,"kind":"rule.put","rule":{"name","expression","action","enabled","created_at"},
     "issued_at":"...Z"}
    {"v":1,"kind":"rule.disable","name":"<rule name>","issued_at":"...Z"}

`model` is optional on the wire but the scoring job refuses a promote or shadow without it:
the job takes its models from the topic (so from its checkpointed state), never from a file
a TaskManager may lack. Its checksum is checked when the message is parsed.

Keys (`ControlMessage.key`): `model:champion` (promote), `model:shadow` (shadow and
unshadow), `rule:<name>` (put and disable). Parsing is strict: unknown version, kind or
field, a missing field, a wrong type, duplicate JSON keys, NaN, or a key that does not
match the message -> `ControlMessageError`.

State (`ControlState`) is a function of the LAST message per key only, so a reader that
replays the compacted topic from the start ends in the state a live reader is in:
- `model:champion`: the last promote names the champion (a tombstone: back to the
  registry default, `champion=None`);
- `model:shadow`: shadow -> that version is the shadow; unshadow -> no shadow, whatever
  version it names (the version is for the audit trail; the CLI checks it before sending);
- `rule:<name>`: put -> that rule (enabled or not); disable or tombstone -> no rule. A
  disabled rule is gone from the topic once compacted: to turn it on again, put it again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.rules import (
    RULE_NAME_RE,
    Rule,
    RuleError,
    RuleFormatError,
    RuleSet,
    parse_time,
    strict_json_object,
)

__all__ = [
    "CONTROL_FORMAT_VERSION",
    "KEY_CHAMPION",
    "KEY_SHADOW",
    "KINDS",
    "ControlMessage",
    "ControlMessageError",
    "ControlState",
    "decode_record",
    "rule_key",
]

CONTROL_FORMAT_VERSION = 1
PROMOTE = "model.promote"
SHADOW = "model.shadow"
UNSHADOW = "model.unshadow"
RULE_PUT = "rule.put"
RULE_DISABLE = "rule.disable"
KINDS: tuple[str, ...] = (PROMOTE, SHADOW, UNSHADOW, RULE_PUT, RULE_DISABLE)
MODEL_KINDS = frozenset({PROMOTE, SHADOW, UNSHADOW})
KEY_CHAMPION = "model:champion"
KEY_SHADOW = "model:shadow"
RULE_KEY_PREFIX = "rule:"
# Registry directory names (models.registry.version_dir refuses '/' and a leading '.');
# stricter here so a version is always a plain, printable name.
MODEL_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# The control topic allows 16 MB messages (deploy.local.kafka.CONTROL_TOPIC_CONFIG); base64
# grows the file by a third.
MAX_MODEL_BYTES = 11 * 1024 * 1024
MAX_MESSAGE_CHARS = (MAX_MODEL_BYTES + 2) // 3 * 4 + 16 * 1024  # the model, base64, + the rest

_FIELDS = {
    PROMOTE: {"v", "kind", "version", "issued_at"},
    SHADOW: {"v", "kind", "version", "issued_at"},
    UNSHADOW: {"v", "kind", "version", "issued_at"},
    RULE_PUT: {"v", "kind", "rule", "issued_at"},
    RULE_DISABLE: {"v", "kind", "name", "issued_at"},
}


class ControlMessageError(ValueError):
    """A control record that is not a valid message (the text says which part and why)."""


def rule_key(name: str) -> str:
    return RULE_KEY_PREFIX + name


def _now() -> datetime:
    return datetime.now(UTC)


def _format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """One control message. Build it with `promote`/`shadow`/`unshadow`/`put_rule`/
    `disable_rule`; the constructor checks that the fields fit the kind.

    `issued_at` is kept in UTC at millisecond precision (what the JSON carries).
    """

    kind: str
    version: str | None = None  # model.*
    rule: Rule | None = None  # rule.put
    rule_name: str | None = None  # rule.disable (for rule.put: rule.name)
    issued_at: datetime = field(default_factory=_now)
    model_onnx: bytes | None = field(default=None, repr=False)  # promote/shadow: the file

    def __post_init__(self) -> None:
        kind = self.kind
        if kind not in KINDS:
            raise ControlMessageError(f"unknown kind {kind!r}; expected one of {KINDS}")
        if kind in MODEL_KINDS:
            if not isinstance(self.version, str) or not MODEL_VERSION_RE.fullmatch(self.version):
                raise ControlMessageError(
                    f"{kind}: model version {self.version!r} must be 1-128 characters of "
                    "A-Z a-z 0-9 . _ - starting with a letter or digit"
                )
            if self.rule is not None or self.rule_name is not None:
                raise ControlMessageError(f"{kind} carries a model version only")
            if self.model_onnx is not None and (
                kind == UNSHADOW or not isinstance(self.model_onnx, bytes)
                or len(self.model_onnx) > MAX_MODEL_BYTES
            ):
                raise ControlMessageError(
                    f"{kind}: the model must be bytes of at most {MAX_MODEL_BYTES} "
                    "(promote and shadow only)"
                )
        elif kind == RULE_PUT:
            if not isinstance(self.rule, Rule):
                raise ControlMessageError("rule.put needs a rule")
            if self.version is not None:
                raise ControlMessageError("rule.put carries no model version")
            if self.rule_name is None:
                object.__setattr__(self, "rule_name", self.rule.name)
            elif self.rule_name != self.rule.name:
                raise ControlMessageError("rule.put: rule_name differs from the rule's name")
        else:  # rule.disable
            if not isinstance(self.rule_name, str) or not RULE_NAME_RE.fullmatch(self.rule_name):
                raise ControlMessageError(
                    f"rule.disable: rule name {self.rule_name!r} must be 1-64 characters of "
                    "a-z, 0-9, '_' or '-'"
                )
            if self.version is not None or self.rule is not None:
                raise ControlMessageError("rule.disable carries a rule name only")
        moment = self.issued_at
        if not isinstance(moment, datetime) or moment.utcoffset() is None:
            raise ControlMessageError(f"issued_at must be a timezone-aware time: {moment!r}")
        moment = moment.astimezone(UTC)
        object.__setattr__(
            self, "issued_at", moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        )

    # --- constructors ---
    @classmethod
    def promote(cls, version: str, issued_at: datetime | None = None, *,
                onnx: bytes | None = None) -> ControlMessage:
        """Make `version` (ONNX file `onnx`) the champion (the model whose decisions count)."""
        return cls(PROMOTE, version=version, issued_at=issued_at or _now(), model_onnx=onnx)

    @classmethod
    def shadow(cls, version: str, issued_at: datetime | None = None, *,
               onnx: bytes | None = None) -> ControlMessage:
        """Score every event with `version` (ONNX file `onnx`) too, beside the champion,
        without acting on it."""
        return cls(SHADOW, version=version, issued_at=issued_at or _now(), model_onnx=onnx)

    @classmethod
    def unshadow(cls, version: str, issued_at: datetime | None = None) -> ControlMessage:
        """Stop shadow scoring (`version` names the shadow being stopped, for the audit)."""
        return cls(UNSHADOW, version=version, issued_at=issued_at or _now())

    @classmethod
    def put_rule(cls, rule: Rule, issued_at: datetime | None = None) -> ControlMessage:
        """Add `rule`, or replace the rule of its name."""
        return cls(RULE_PUT, rule=rule, issued_at=issued_at or _now())

    @classmethod
    def disable_rule(cls, name: str, issued_at: datetime | None = None) -> ControlMessage:
        """Drop the rule `name` from the rules in force."""
        return cls(RULE_DISABLE, rule_name=name, issued_at=issued_at or _now())

    @property
    def key(self) -> str:
        """The record key on the compacted topic."""
        if self.kind == PROMOTE:
            return KEY_CHAMPION
        if self.kind in (SHADOW, UNSHADOW):
            return KEY_SHADOW
        return rule_key(str(self.rule_name))

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"v": CONTROL_FORMAT_VERSION, "kind": self.kind}
        if self.kind in MODEL_KINDS:
            doc["version"] = self.version
            if self.model_onnx is not None:
                doc["model"] = {
                    "sha256": hashlib.sha256(self.model_onnx).hexdigest(),
                    "onnx_b64": base64.b64encode(self.model_onnx).decode("ascii"),
                }
        elif self.kind == RULE_PUT:
            doc["rule"] = self.rule.to_dict()  # type: ignore[union-attr]  # set for rule.put
        else:
            doc["name"] = self.rule_name
        doc["issued_at"] = _format_time(self.issued_at)
        return doc

    def to_json(self) -> str:
        """Compact JSON text (UTF-8 when encoded; non-ASCII kept as is)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    def to_record(self) -> tuple[bytes, bytes]:
        """(key, value) bytes for the producer."""
        return self.key.encode("utf-8"), self.to_json().encode("utf-8")

    @classmethod
    def from_json(cls, text: str | bytes) -> ControlMessage:
        """Inverse of `to_json` (strict; see the module docstring)."""
        try:
            doc = strict_json_object(text, "control message", MAX_MESSAGE_CHARS)
        except RuleFormatError as exc:
            raise ControlMessageError(str(exc)) from None
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ControlMessage:
        version = doc.get("v")
        if type(version) is not int or version != CONTROL_FORMAT_VERSION:
            raise ControlMessageError(
                f"control message version {version!r} is not supported (expected "
                f"{CONTROL_FORMAT_VERSION})"
            )
        kind = doc.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            raise ControlMessageError(f"unknown kind {kind!r}; expected one of {KINDS}")
        expected = _FIELDS[kind]
        optional = {"model"} if kind in (PROMOTE, SHADOW) else set()
        extra = sorted(set(doc) - expected - optional)
        missing = sorted(expected - set(doc))
        if extra:
            raise ControlMessageError(f"{kind}: unknown fields {extra}")
        if missing:
            raise ControlMessageError(f"{kind}: missing fields {missing}")
        issued = doc["issued_at"]
        if not isinstance(issued, str):
            raise ControlMessageError(f"{kind}: issued_at must be a string")
        try:
            issued_at = parse_time(issued, f"{kind}.issued_at")
        except RuleFormatError as exc:
            raise ControlMessageError(str(exc)) from None
        if kind in MODEL_KINDS:
            if not isinstance(doc["version"], str):
                raise ControlMessageError(f"{kind}: version must be a string")
            onnx = _model_bytes(kind, doc["model"]) if "model" in doc else None
            return cls(kind, version=doc["version"], issued_at=issued_at, model_onnx=onnx)
        if kind == RULE_PUT:
            try:
                rule = Rule.from_dict(doc["rule"], where="rule.put: rule")
            except RuleError as exc:
                raise ControlMessageError(f"rule.put: bad expression: {exc}") from None
            except RuleFormatError as exc:
                raise ControlMessageError(str(exc)) from None
            return cls(kind, rule=rule, issued_at=issued_at)
        if not isinstance(doc["name"], str):
            raise ControlMessageError("rule.disable: name must be a string")
        return cls(kind, rule_name=doc["name"], issued_at=issued_at)


def _model_bytes(kind: str, model: Any) -> bytes:
    """The ONNX bytes of a message's `model` object, checked against its sha256."""
    if not isinstance(model, Mapping) or set(model) != {"sha256", "onnx_b64"}:
        raise ControlMessageError(f"{kind}: model must be an object with sha256 and onnx_b64")
    text, digest = model["onnx_b64"], model["sha256"]
    if not isinstance(text, str) or not isinstance(digest, str):
        raise ControlMessageError(f"{kind}: model sha256 and onnx_b64 must be strings")
    if len(text) > (MAX_MODEL_BYTES + 2) // 3 * 4:
        raise ControlMessageError(f"{kind}: model larger than {MAX_MODEL_BYTES} bytes")
    try:
        onnx = base64.b64decode(text, validate=True)
    except ValueError:
        raise ControlMessageError(f"{kind}: model onnx_b64 is not base64") from None
    if hashlib.sha256(onnx).hexdigest() != digest:
        raise ControlMessageError(f"{kind}: model bytes do not match their sha256")
    return onnx


def _key_text(key: str | bytes | None) -> str:
    if key is None:
        raise ControlMessageError("control record without a key")
    if isinstance(key, bytes | bytearray):
        try:
            key = bytes(key).decode("utf-8")
        except UnicodeDecodeError:
            raise ControlMessageError("control record key is not UTF-8") from None
    if key in (KEY_CHAMPION, KEY_SHADOW):
        return key
    if key.startswith(RULE_KEY_PREFIX) and RULE_NAME_RE.fullmatch(key[len(RULE_KEY_PREFIX):]):
        return key
    shown = key if len(key) <= 80 else key[:80] + "..."
    raise ControlMessageError(
        f"unknown control key {shown!r} (model:champion, model:shadow or rule:<name>)"
    )


def decode_record(key: str | bytes | None, value: str | bytes | None) -> ControlMessage | None:
    """One record of the control topic -> its message, or None for a tombstone (value None).

    The key must be a known one and match the message (`ControlMessageError` otherwise).
    """
    key_text = _key_text(key)
    if value is None:
        return None
    message = ControlMessage.from_json(value)
    if message.key != key_text:
        raise ControlMessageError(
            f"record key {key_text!r} does not match the message's key {message.key!r}"
        )
    return message


@dataclass(frozen=True, slots=True)
class ControlState:
    """What the control topic says: champion and shadow model versions and the rules.

    `champion=None` means the registry default. Immutable: `apply` returns a new state.
    """

    champion: str | None = None
    shadow: str | None = None
    rules: RuleSet = field(default_factory=RuleSet)

    def apply(self, message: ControlMessage) -> ControlState:
        """The state after `message` (depends only on the message, never on the past of
        its key: see the module docstring)."""
        kind = message.kind
        if kind == PROMOTE:
            return ControlState(message.version, self.shadow, self.rules)
        if kind == SHADOW:
            return ControlState(self.champion, message.version, self.rules)
        if kind == UNSHADOW:
            return ControlState(self.champion, None, self.rules)
        if message.rule is not None:  # rule.put
            return ControlState(self.champion, self.shadow, self.rules.put(message.rule))
        return ControlState(self.champion, self.shadow, self.rules.remove(str(message.rule_name)))

    def apply_record(self, key: str | bytes | None, value: str | bytes | None) -> ControlState:
        """`decode_record` then `apply`; a tombstone clears its key's entry."""
        message = decode_record(key, value)
        if message is not None:
            return self.apply(message)
        key_text = _key_text(key)
        if key_text == KEY_CHAMPION:
            return ControlState(None, self.shadow, self.rules)
        if key_text == KEY_SHADOW:
            return ControlState(self.champion, None, self.rules)
        return ControlState(self.champion, self.shadow,
                            self.rules.remove(key_text[len(RULE_KEY_PREFIX):]))
