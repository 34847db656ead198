"""Registry models for tests of live promotion: copies of the committed default model under
another version (and optionally another threshold, or a feature list this code does not
compute), written as a registry directory (model.onnx + metadata.json) or returned as bytes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from models.features import FEATURE_SET_VERSION
from models.registry import default_model_dir


def variant_bytes(version: str, *, threshold: float | None = None,
                  drop_last_feature: bool = False) -> bytes:
    """The default model's ONNX file with `model_version` (and `threshold`) rewritten in its
    metadata; `drop_last_feature` names one feature fewer, which no Scorer accepts."""
    import onnx

    model = onnx.load(str(default_model_dir() / "model.onnx"))
    for prop in model.metadata_props:
        if prop.key == "model_version":
            prop.value = version
        elif prop.key == "threshold" and threshold is not None:
            prop.value = repr(float(threshold))
        elif prop.key == "feature_names" and drop_last_feature:
            prop.value = json.dumps(json.loads(prop.value)[:-1])
    return model.SerializeToString()


def write_variant(root: Path, version: str, **changes) -> Path:
    """`variant_bytes` as registry version `version` under `root` (metadata.json beside it,
    the default's with the same changes); returns the version directory."""
    source = default_model_dir()
    target = Path(root) / FEATURE_SET_VERSION / version
    target.mkdir(parents=True, exist_ok=True)
    onnx = variant_bytes(version, **changes)
    (target / "model.onnx").write_bytes(onnx)
    metadata = json.loads((source / "metadata.json").read_text())
    metadata["model_version"] = version
    if changes.get("threshold") is not None:
        metadata["threshold"] = float(changes["threshold"])
    if changes.get("drop_last_feature"):
        metadata["feature_names"] = metadata["feature_names"][:-1]
    metadata["onnx_bytes"] = len(onnx)
    metadata.pop("onnx_sha256", None)
    (target / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return target


def copy_default(root: Path) -> str:
    """Copy the committed default model (and its pointer) into registry `root`."""
    source = default_model_dir()
    shutil.copytree(source, Path(root) / FEATURE_SET_VERSION / source.name, dirs_exist_ok=True)
    pointer = source.parent / "default.json"
    shutil.copy(pointer, Path(root) / FEATURE_SET_VERSION / "default.json")
    return source.name
