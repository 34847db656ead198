"""The control configuration a scorer applies between two batches: champion and shadow
models and the analyst rules, fed record by record from the control topic.

Pure Python (no pyflink). The Flink scorer keeps the accepted records in broadcast state
(checkpointed; replayed into a fresh `LiveControl` after a restore) and hands every new
control record to `apply`. Contract:
- `apply(key, value)` either changes the configuration and returns an accepted `Outcome`, or
  changes nothing and returns a refused one with the reason (malformed message, unknown key,
  a model that does not fit this code's features or input, a model whose bytes name another
  version than the message). Nothing raises on bad input: a bad control record never stops
  scoring.
- A tombstone (value None) clears its key: champion back to the default model, no shadow, or
  the rule gone.
- Same records in the same order per key -> same configuration, on every subtask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.control import (
    PROMOTE,
    SHADOW,
    ControlMessageError,
    ControlState,
    decode_record,
)
from models.rules import RuleSet
from models.scoring import ModelMismatchError, Scorer


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `apply` did with one control record."""

    accepted: bool
    detail: str


class LiveControl:
    """Champion, shadow and rules in force, built from control records (see module doc)."""

    def __init__(
        self, default_scorer: Any, load_model: Callable[[bytes, str], Any] = Scorer.from_bytes
    ) -> None:
        self.default_scorer = default_scorer
        self._load_model = load_model
        self._state = ControlState()
        self.champion: Any = default_scorer
        self.shadow: Any = None

    @property
    def rules(self) -> RuleSet:
        return self._state.rules

    def apply(self, key: str | bytes | None, value: str | bytes | None) -> Outcome:
        """Apply one control record, or refuse it and keep everything as it was."""
        model = None
        try:
            message = decode_record(key, value)
            if message is not None and message.kind in (PROMOTE, SHADOW):
                model = self._model_of(message)
            state = self._state.apply_record(key, value)
        except ControlMessageError as exc:
            return Outcome(False, f"refused control record {_shown(key)}: {exc}")
        except ModelMismatchError as exc:
            return Outcome(False, f"refused model for {_shown(key)}: {exc}")
        if message is None:  # tombstone
            if state.champion is None:
                self.champion = self.default_scorer
            if state.shadow is None:
                self.shadow = None
        elif message.kind == PROMOTE:
            self.champion = model
        elif message.kind == SHADOW:
            self.shadow = model
        elif state.shadow is None:
            self.shadow = None
        self._state = state
        return Outcome(True, f"applied {_shown(key)}: {self.describe()}")

    def describe(self) -> str:
        """One line: the models and rules in force."""
        shadow = self.shadow.model_version if self.shadow is not None else "none"
        rules = ", ".join(r.name for r in self.rules if r.enabled) or "none"
        return f"champion {self.champion.model_version}, shadow {shadow}, rules {rules}"

    def _model_of(self, message: Any) -> Any:
        """The scorer a promote/shadow message carries, checked against this code."""
        source = f"control {message.kind} {message.version}"
        if message.model_onnx is None:
            raise ModelMismatchError(f"{source}: the message carries no model file")
        model = self._load_model(message.model_onnx, source)
        if str(model.model_version) != message.version:
            raise ModelMismatchError(
                f"{source}: the model file is version {model.model_version!r}"
            )
        return model


def _shown(key: str | bytes | None) -> str:
    if isinstance(key, bytes | bytearray):
        key = bytes(key).decode("utf-8", "replace")
    text = str(key)
    return text if len(text) <= 80 else text[:80] + "..."

