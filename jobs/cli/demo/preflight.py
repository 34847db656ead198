"""What must exist before the demo starts anything: the model the scoring job loads."""

from __future__ import annotations

from pathlib import Path

from jobs.cli.demo.plan import DemoError


def preflight() -> list[str]:
    """What is missing, one precise line each (empty when all is there)."""
    try:
        default_model_path()
    except DemoError as exc:
        return [str(exc)]
    return []


def default_model_path() -> Path:
    """The default model the job loads (`models.scoring.resolve_model_path(None)`, i.e. the
    registry's default); DemoError naming what is missing if there is none."""
    from models.scoring import resolve_model_path  # noqa: PLC0415 - keeps --help fast

    try:
        return resolve_model_path(None)
    except Exception as exc:  # RegistryError / FileNotFoundError: their text names the file
        raise DemoError(f"default model: {exc}") from exc
