"""Model registry layout: versions, the default pointer, and the scorer's path resolution."""

from __future__ import annotations

import pytest

from models import registry as R
from models.features import FEATURE_SET_VERSION
from models.scoring import resolve_model_path


def make_version(root, name):
    d = root / FEATURE_SET_VERSION / name
    d.mkdir(parents=True)
    (d / "model.onnx").write_bytes(b"onnx")
    return d


def test_default_pointer_round_trip(tmp_path):
    make_version(tmp_path, "a")
    b = make_version(tmp_path, "b")
    assert R.list_versions(tmp_path) == ["a", "b"]
    with pytest.raises(R.RegistryError, match="no default model"):
        R.default_model_dir(tmp_path)
    R.set_default("b", tmp_path)
    assert R.default_version(tmp_path) == "b"
    assert R.default_model_dir(tmp_path) == b


def test_set_default_refuses_a_missing_version(tmp_path):
    with pytest.raises(R.RegistryError, match="no model.onnx"):
        R.set_default("ghost", tmp_path)
    with pytest.raises(ValueError, match="invalid model version"):
        R.version_dir("../escape", tmp_path)


def test_env_var_moves_the_registry(tmp_path, monkeypatch):
    d = make_version(tmp_path, "v1")
    R.set_default("v1", tmp_path)
    monkeypatch.setenv(R.REGISTRY_ENV_VAR, str(tmp_path))
    assert resolve_model_path(None) == d / "model.onnx"
    assert resolve_model_path(d) == d / "model.onnx"
    with pytest.raises(FileNotFoundError):
        resolve_model_path(tmp_path / "nope.onnx")


def test_package_registry_has_a_default_with_its_report():
    d = R.default_model_dir(R.PACKAGE_REGISTRY)
    for name in ("model.onnx", "metadata.json", "report.md"):
        assert (d / name).is_file()
    assert (d / "model.onnx").stat().st_size < 5 * 1024 * 1024
    assert len(list((d / "plots").glob("*.png"))) == 4
