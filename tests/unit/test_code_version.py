"""A worker whose interpreter kept older fraudstream modules refuses the job (thread mode)."""

from __future__ import annotations

import shutil

import pytest

from jobs import code_version
from jobs.code_version import StaleCodeError, check_loaded, current_fingerprint


def test_the_fingerprint_follows_the_sources(tmp_path):
    for package in code_version.PACKAGES:
        shutil.copytree(code_version.ROOT / package, tmp_path / package)
    before = current_fingerprint(tmp_path)
    assert before == current_fingerprint(code_version.ROOT)
    (tmp_path / "models" / "features.py").write_text("# changed\n", encoding="utf-8")
    assert current_fingerprint(tmp_path) != before


def test_loaded_code_is_checked_against_the_jobs_fingerprint():
    check_loaded(code_version.LOADED_FINGERPRINT)
    check_loaded("")  # jobs built without one (tests) are accepted
    with pytest.raises(StaleCodeError, match="Restart the TaskManagers"):
        check_loaded("0123456789abcdef")


def test_operator_commands_are_not_part_of_the_jobs_code(tmp_path):
    from jobs.code_version import current_fingerprint

    (tmp_path / "jobs" / "cli").mkdir(parents=True)
    (tmp_path / "jobs" / "functions.py").write_text("x = 1\n")
    (tmp_path / "jobs" / "cli" / "model.py").write_text("y = 1\n")
    before = current_fingerprint(tmp_path)
    (tmp_path / "jobs" / "cli" / "model.py").write_text("y = 2\n")
    assert current_fingerprint(tmp_path) == before
    (tmp_path / "jobs" / "functions.py").write_text("x = 2\n")
    assert current_fingerprint(tmp_path) != before
