"""Model registry on the file system: one directory per feature set and model version.

Layout (the committed default lives in the package, so the demo runs without training):
    models/registry/<feature_set_version>/<model_version>/model.onnx
                                                        /metadata.json
                                                        /report.md
                                                        /plots/*.png
    models/registry/<feature_set_version>/default.json  ({"model_version": ...}: the default)
`FRAUDSTREAM_MODEL_REGISTRY` points the registry elsewhere (e.g. a mounted volume).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from models.features import FEATURE_SET_VERSION

REGISTRY_ENV_VAR = "FRAUDSTREAM_MODEL_REGISTRY"
PACKAGE_REGISTRY = Path(__file__).resolve().parent / "registry"
DEFAULT_POINTER = "default.json"  # .json so package-data ships it


class RegistryError(LookupError):
    """No default model, or a pointer to a version that is not there."""


def registry_root(root: str | Path | None = None) -> Path:
    """`root`, else `$FRAUDSTREAM_MODEL_REGISTRY`, else the package registry."""
    if root is not None:
        return Path(root)
    env = os.environ.get(REGISTRY_ENV_VAR)
    return Path(env) if env else PACKAGE_REGISTRY


def version_dir(
    model_version: str, root: str | Path | None = None, feature_set: str = FEATURE_SET_VERSION
) -> Path:
    if not model_version or "/" in model_version or model_version.startswith("."):
        raise ValueError(f"invalid model version {model_version!r}")
    return registry_root(root) / feature_set / model_version


def list_versions(
    root: str | Path | None = None, feature_set: str = FEATURE_SET_VERSION
) -> list[str]:
    base = registry_root(root) / feature_set
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "model.onnx").is_file())


def default_version(root: str | Path | None = None, feature_set: str = FEATURE_SET_VERSION) -> str:
    pointer = registry_root(root) / feature_set / DEFAULT_POINTER
    if not pointer.is_file():
        raise RegistryError(f"no default model: {pointer} is missing (run `fraudstream train`)")
    try:
        return str(json.loads(pointer.read_text(encoding="utf-8"))["model_version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryError(f"{pointer} is not a valid default pointer: {exc}") from exc


def default_model_dir(
    root: str | Path | None = None, feature_set: str = FEATURE_SET_VERSION
) -> Path:
    """Directory of the default model for `feature_set`."""
    path = version_dir(default_version(root, feature_set), root, feature_set)
    if not (path / "model.onnx").is_file():
        raise RegistryError(f"default model points at {path}, which has no model.onnx")
    return path


def set_default(
    model_version: str, root: str | Path | None = None, feature_set: str = FEATURE_SET_VERSION
) -> Path:
    """Point the default at `model_version` (which must exist)."""
    path = version_dir(model_version, root, feature_set)
    if not (path / "model.onnx").is_file():
        raise RegistryError(f"cannot make {model_version} the default: {path} has no model.onnx")
    pointer = path.parent / DEFAULT_POINTER
    pointer.write_text(json.dumps({"model_version": model_version}) + "\n", encoding="utf-8")
    return pointer
