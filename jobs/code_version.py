"""Which fraudstream Python code a process runs, to catch a TaskManager that runs an older one.

In thread mode each TaskManager JVM embeds ONE CPython for its whole life, and Python caches
every imported module: a job submitted after the code changed runs the modules the FIRST job
imported, silently (measured 2026-12-01: instrumentation added to `jobs/functions.py` did not
run on the standing local cluster until its TaskManagers were restarted). The job's Python
functions therefore carry the client's `current_fingerprint()` and compare it in `open()` with
`LOADED_FINGERPRINT`, computed when this module was first imported in the worker (with the
other modules of the job), and refuse to run on a mismatch (`StaleCodeError`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("connectors", "jobs", "models", "schemas")
# Operator tooling the job never imports: editing a command must not make the standing
# cluster's TaskManagers stale.
NOT_IN_JOB = ("jobs/cli", "jobs/console")


class StaleCodeError(RuntimeError):
    """The worker's interpreter holds other fraudstream modules than the submitted job."""


def current_fingerprint(root: Path = ROOT) -> str:
    """SHA-256 (first 16 hex digits) over the Python sources of the job's packages, now."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if path.relative_to(root).as_posix().startswith(NOT_IN_JOB):
                continue
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


LOADED_FINGERPRINT = current_fingerprint()


def check_loaded(expected: str) -> None:
    """Raise `StaleCodeError` unless this interpreter loaded the code the job was built from.

    An empty `expected` (a job built without a fingerprint, e.g. in unit tests) is accepted.
    """
    if expected and expected != LOADED_FINGERPRINT:
        raise StaleCodeError(
            f"this TaskManager's Python interpreter runs fraudstream code {LOADED_FINGERPRINT}, "
            f"imported by an earlier job, but the job was built from {expected}: thread mode "
            "keeps one interpreter and its modules for the TaskManager's life. Restart the "
            "TaskManagers (local stack: fraudstream down && fraudstream up --flink-cluster)."
        )
