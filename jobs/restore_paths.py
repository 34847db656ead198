"""Which savepoint or retained checkpoint a job resumes from (`fraudstream submit
--from-savepoint PATH|latest`, `--from-checkpoint PATH|latest`).

Layout (Flink's): savepoints are `<savepoint dir>/savepoint-<job id prefix>-<random>/_metadata`;
retained checkpoints are `<checkpoint dir>/<job id>/chk-<n>/_metadata`. A directory without
`_metadata` is incomplete (a crash while writing it) and never chosen. "latest" = the newest
complete one by the modification time of its `_metadata`, over every job that wrote into the
directory, so give each job that must not be confused with another its own directory (or an
explicit path). Only local (`file://` or plain) directories can be searched; for others give the
path. Pure Python.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse


class RestorePathError(ValueError):
    """No savepoint/checkpoint to resume from; the message names the directory searched."""


def local_dir(uri: str) -> Path:
    """The local path of a `file://` URI or plain path; RestorePathError for other schemes."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri)
    raise RestorePathError(
        f"cannot search {uri} for 'latest' ({parsed.scheme}:// is not a local directory): "
        "pass the savepoint or checkpoint path itself"
    )


def latest_savepoint(directory: str) -> Path:
    """The newest complete savepoint under `directory` (RestorePathError if none)."""
    return _newest(local_dir(directory).glob("savepoint-*/_metadata"), "savepoint", directory)


def latest_checkpoint(directory: str) -> Path:
    """The newest complete retained checkpoint under `directory` (RestorePathError if none)."""
    return _newest(local_dir(directory).glob("*/chk-*/_metadata"), "checkpoint", directory)


def _newest(candidates, what: str, directory: str) -> Path:
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise RestorePathError(f"no complete {what} (with _metadata) under {directory}")
    return max(found, key=lambda p: (p.stat().st_mtime_ns, str(p))).parent


def resolve(value: str, kind: str, directory: str | None) -> str:
    """The path to pass to `flink run -s`: `value` itself, or for "latest" the newest
    savepoint (`kind` "savepoint") or retained checkpoint (`kind` "checkpoint") in
    `directory`."""
    if value != "latest":
        return value
    if not directory:
        raise RestorePathError(
            f"--from-{kind} latest needs the {kind} directory: set "
            f"{'savepoint_dir' if kind == 'savepoint' else 'checkpoint_dir'}"
        )
    newest = latest_savepoint(directory) if kind == "savepoint" else latest_checkpoint(directory)
    return str(newest)
