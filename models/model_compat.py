"""May a registry model replace (or shadow) the running one without restarting the job?

Pure Python (no pyflink, no onnxruntime session): the ONNX file is read with `onnx` (graph
inputs/outputs and `metadata_props`, what `models.scoring.Scorer` trusts) next to the
registry's `metadata.json` sidecar (see `models.registry` for the layout).

    current = describe_model(scorer.source)            # or describe_version(<version>)
    verdict = check_candidate(current, "hist_gbm-...")  # -> Compatibility
    if not verdict.compatible: print(verdict.summary())

A candidate is COMPATIBLE when the job can feed it the very rows it feeds the current model
and read its score the same way:
- its `model.onnx` exists and parses; its metadata passes `models.scoring.check_metadata`
  (feature-set version and feature order of this code, reference values, threshold);
- its metadata names the version asked for (the registry directory name);
- same feature-set version and the same feature names in the same order as the current;
- one ONNX input, same name, float32, shape (batch, n_features) with the same n_features
  and a free batch dimension;
- the output the scorer reads (`probabilities`, float, (batch, 2)) is there;
- the sidecar, when present, agrees with the ONNX metadata (version, features) and with
  the file (size `onnx_bytes`, and `onnx_sha256` when the registry stores one: today it
  does not, so only the size is checked).
A different threshold, model kind or reference values is expected of a new model: they
are reported as notes, never as problems.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.features import FEATURE_SET_VERSION
from models.registry import registry_root, version_dir

__all__ = [
    "Compatibility",
    "ModelInfo",
    "ModelReadError",
    "TensorSpec",
    "check_candidate",
    "compare",
    "describe_model",
    "describe_version",
]

PROBABILITY_OUTPUT = "probabilities"
SIDECAR = "metadata.json"
MODEL_FILE = "model.onnx"

_ELEM_TYPES = {1: "float", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool",
               10: "float16", 11: "double", 8: "string"}

Dim = int | str | None  # fixed size, symbolic name, or unknown


class ModelReadError(Exception):
    """The model file is missing or cannot be read as ONNX."""


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One graph input or output: name, element type ("float", ...; "non-tensor" for
    sequences/maps such as a ZipMap output) and shape (None/str dims are free)."""

    name: str
    elem_type: str
    shape: tuple[Dim, ...] | None  # None: no shape recorded

    def describe(self) -> str:
        dims = "?" if self.shape is None else ", ".join(
            "?" if d is None else str(d) for d in self.shape
        )
        return f"{self.name}: {self.elem_type}[{dims}]"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the check needs to know about one registry model."""

    version: str  # the registry directory name (the file's parent), else the metadata's
    path: Path | None
    metadata: Mapping[str, str]  # ONNX metadata_props: the contract the scorer reads
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    sidecar: Mapping[str, Any] | None = None  # metadata.json, None when absent
    sidecar_problem: str | None = None  # metadata.json present but unreadable
    size: int | None = None
    sha256: str | None = None

    @property
    def feature_names(self) -> tuple[str, ...] | None:
        try:
            names = json.loads(self.metadata["feature_names"])
        except (KeyError, TypeError, ValueError):
            return None
        return tuple(names) if isinstance(names, list) else None


@dataclass(frozen=True, slots=True)
class Compatibility:
    """The verdict: `compatible` iff `problems` is empty. `notes` list expected differences
    (threshold, model kind); `reason` is the first problem (or "compatible")."""

    current: str
    candidate: str
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def compatible(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> str:
        return self.problems[0] if self.problems else "compatible"

    def summary(self) -> str:
        if self.compatible:
            head = f"{self.candidate} is compatible with {self.current}"
            return head + (f" ({'; '.join(self.notes)})" if self.notes else "")
        return (f"{self.candidate} is NOT compatible with {self.current}: "
                + "; ".join(self.problems))


# --- reading --------------------------------------------------------------------------------


def _tensor(value_info: Any) -> TensorSpec:
    kind = value_info.type.WhichOneof("value")
    if kind != "tensor_type":
        return TensorSpec(value_info.name, "non-tensor", None)
    tt = value_info.type.tensor_type
    elem = _ELEM_TYPES.get(tt.elem_type, f"type#{tt.elem_type}")
    if not tt.HasField("shape"):
        return TensorSpec(value_info.name, elem, None)
    dims: list[Dim] = []
    for d in tt.shape.dim:
        which = d.WhichOneof("value")
        dims.append(d.dim_value if which == "dim_value" else (d.dim_param or None))
    return TensorSpec(value_info.name, elem, tuple(dims))


def describe_model(path: str | Path) -> ModelInfo:
    """Read a model file (or a registry version directory) and its `metadata.json` sidecar.

    Raises `ModelReadError` when the file is missing or not ONNX. A missing or unreadable
    sidecar is recorded (`sidecar=None` / `sidecar_problem`), not raised.
    """
    import onnx
    from google.protobuf.message import DecodeError

    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.is_file():
        raise ModelReadError(f"model file missing: {p}")
    data = p.read_bytes()
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelReadError(f"{p} is not an ONNX model: {exc}") from exc
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    initializers = {i.name for i in model.graph.initializer}
    inputs = tuple(_tensor(i) for i in model.graph.input if i.name not in initializers)
    outputs = tuple(_tensor(o) for o in model.graph.output)
    sidecar, problem = None, None
    side = p.parent / SIDECAR
    if side.is_file():
        try:
            loaded = json.loads(side.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                sidecar = loaded
            else:
                problem = f"{SIDECAR} is not a JSON object"
        except (OSError, ValueError) as exc:
            problem = f"{SIDECAR} unreadable: {exc}"
    version = p.parent.name if p.name == MODEL_FILE else metadata.get("model_version", p.stem)
    return ModelInfo(
        version=version, path=p, metadata=metadata, inputs=inputs, outputs=outputs,
        sidecar=sidecar, sidecar_problem=problem, size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def describe_version(version: str, root: str | Path | None = None,
                     feature_set: str = FEATURE_SET_VERSION) -> ModelInfo:
    """`describe_model` of registry version `version` (raises `ModelReadError`)."""
    try:
        directory = version_dir(version, root, feature_set)
    except ValueError as exc:
        raise ModelReadError(str(exc)) from exc
    if not directory.is_dir():
        raise ModelReadError(
            f"version {version!r} is not in the registry ({registry_root(root) / feature_set})"
        )
    return describe_model(directory)


# --- the check ------------------------------------------------------------------------------


def check_candidate(current: ModelInfo, version: str, root: str | Path | None = None,
                    feature_set: str = FEATURE_SET_VERSION) -> Compatibility:
    """Whether registry version `version` may replace/shadow `current` (never raises for a
    bad candidate: a missing or unreadable one is an incompatible verdict)."""
    try:
        candidate = describe_version(version, root, feature_set)
    except ModelReadError as exc:
        return Compatibility(current.version, version, (str(exc),))
    result = compare(current, candidate)
    if candidate.metadata.get("model_version") not in (None, version):
        problem = (f"metadata names version {candidate.metadata['model_version']!r}, "
                   f"the registry directory is {version!r}")
        return Compatibility(result.current, version, (*result.problems, problem), result.notes)
    return result


def compare(current: ModelInfo, candidate: ModelInfo) -> Compatibility:
    """The verdict for `candidate` against `current` (pure: no file access)."""
    from models.scoring import ModelMismatchError, check_metadata

    problems: list[str] = []
    notes: list[str] = []
    cur_meta, new_meta = current.metadata, candidate.metadata

    # same features as the running model
    if new_meta.get("feature_set_version") != cur_meta.get("feature_set_version"):
        problems.append(
            f"feature set {new_meta.get('feature_set_version')!r} differs from the current "
            f"{cur_meta.get('feature_set_version')!r}"
        )
    problems.extend(_feature_problems(current.feature_names, candidate.feature_names))
    # the contract of this code (the scorer refuses the model otherwise); its feature
    # messages would repeat the ones above
    try:
        check_metadata(dict(new_meta), candidate.version)
    except ModelMismatchError as exc:
        text = str(exc)
        repeats = problems and ("feature order differs" in text or "feature set" in text)
        if not repeats:
            problems.append(text)

    # the ONNX input the job feeds
    problems.extend(_input_problems(current, candidate))
    # the output the scorer reads
    problems.extend(_output_problems(current, candidate))
    # the registry's own record of the file
    problems.extend(_sidecar_problems(candidate))
    if candidate.sidecar is None and candidate.sidecar_problem is None:
        notes.append(f"no {SIDECAR} beside the model: size/checksum not checked")

    for key, label in (("threshold", "threshold"), ("model_kind", "model kind")):
        old, new = cur_meta.get(key), new_meta.get(key)
        if old != new:
            notes.append(f"{label} {_short(old)} -> {_short(new)}")
    if cur_meta.get("reference_values") != new_meta.get("reference_values"):
        notes.append("reason-code reference values differ")
    # keep order, drop duplicates (check_metadata and the list check can say the same)
    return Compatibility(current.version, candidate.version, tuple(dict.fromkeys(problems)),
                         tuple(notes))


def _short(value: Any) -> str:
    if value is None:
        return "(none)"
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


def _feature_problems(current: Sequence[str] | None, new: Sequence[str] | None) -> list[str]:
    if new is None:
        return ["feature_names missing or not a JSON list in the model metadata"]
    if current is None or list(current) == list(new):
        return []
    if set(current) == set(new) and len(current) == len(new):
        pos = next(i for i, (a, b) in enumerate(zip(current, new, strict=True)) if a != b)
        return [f"feature order differs at position {pos}: {new[pos]!r} where the current "
                f"model has {current[pos]!r}"]
    added = [n for n in new if n not in set(current)]
    removed = [n for n in current if n not in set(new)]
    parts = [f"feature set differs ({len(new)} features, the current model has {len(current)}"]
    if added:
        parts.append(f"added {added[:5]}{' ...' if len(added) > 5 else ''}")
    if removed:
        parts.append(f"removed {removed[:5]}{' ...' if len(removed) > 5 else ''}")
    return [", ".join(parts) + ")"]


def _input_problems(current: ModelInfo, candidate: ModelInfo) -> list[str]:
    if len(candidate.inputs) != 1:
        return [f"the model takes {len(candidate.inputs)} inputs, the job feeds one"]
    new = candidate.inputs[0]
    problems = []
    cur = current.inputs[0] if len(current.inputs) == 1 else None
    if cur is not None and new.name != cur.name:
        problems.append(f"ONNX input is named {new.name!r}, the current model's {cur.name!r}")
    if new.elem_type != "float":
        problems.append(f"ONNX input {new.name!r} is {new.elem_type}, not float32")
    names = candidate.feature_names
    n_features = len(names) if names is not None else None
    if new.shape is None or len(new.shape) != 2:
        problems.append(f"ONNX input {new.describe()} is not (batch, features)")
        return problems
    batch, width = new.shape
    if isinstance(batch, int) and batch > 0:
        problems.append(f"ONNX input {new.describe()} fixes the batch size at {batch}")
    if cur is not None and cur.shape is not None and len(cur.shape) == 2 and (
        width != cur.shape[1]
    ):
        problems.append(f"ONNX input {new.describe()} differs in width from the current "
                        f"{cur.describe()}")
    elif n_features is not None and isinstance(width, int) and width != n_features:
        problems.append(f"ONNX input {new.describe()} does not take the {n_features} "
                        "features its metadata names")
    return problems


def _output_problems(current: ModelInfo, candidate: ModelInfo) -> list[str]:
    current_names = [o.name for o in current.outputs]
    wanted = PROBABILITY_OUTPUT if PROBABILITY_OUTPUT in current_names else (
        current_names[-1] if current_names else PROBABILITY_OUTPUT
    )
    found = next((o for o in candidate.outputs if o.name == wanted), None)
    if found is None:
        return [f"ONNX output {wanted!r} (the score the job reads) is missing; outputs are "
                f"{[o.name for o in candidate.outputs]}"]
    if found.elem_type != "float" or (
        found.shape is not None and (len(found.shape) != 2 or found.shape[1] not in (2, None))
    ):
        return [f"ONNX output {found.describe()} is not float (batch, 2) class probabilities"]
    return []


def _sidecar_problems(candidate: ModelInfo) -> list[str]:
    if candidate.sidecar_problem:
        return [candidate.sidecar_problem]
    side = candidate.sidecar
    if side is None:
        return []
    problems = []
    side_version = side.get("model_version")
    meta_version = candidate.metadata.get("model_version")
    if side_version is not None and side_version != meta_version:
        problems.append(f"{SIDECAR} names version {side_version!r}, the ONNX metadata "
                        f"{meta_version!r}")
    side_names = side.get("feature_names")
    if side_names is not None and candidate.feature_names is not None and (
        tuple(side_names) != candidate.feature_names
    ):
        problems.append(f"{SIDECAR} lists other features than the ONNX metadata")
    expected_size = side.get("onnx_bytes")
    if isinstance(expected_size, int) and candidate.size is not None and (
        expected_size != candidate.size
    ):
        problems.append(f"{MODEL_FILE} has {candidate.size} bytes, {SIDECAR} recorded "
                        f"{expected_size}: the file changed after registration")
    expected_sha = side.get("onnx_sha256")
    if isinstance(expected_sha, str) and candidate.sha256 is not None and (
        expected_sha.lower() != candidate.sha256
    ):
        problems.append(f"{MODEL_FILE} checksum mismatch: sha256 {candidate.sha256[:12]}..., "
                        f"{SIDECAR} recorded {expected_sha[:12]}...")
    return problems
