"""What the operator commands (`alerts`, `review`, `demo`) share: their consoles, the one-line
error exit, the stack settings and Ctrl-C as a stop flag.

Exit codes: 0 ok, 1 a precise user-facing error (unknown alert id, stack not reachable, ...),
2 bad usage (typer's own).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear error line to stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def stack_settings() -> Any:
    """The stack settings (`connectors.settings.load_settings`), or a precise error."""
    from connectors.settings import load_settings  # noqa: PLC0415 - keeps --help fast

    try:
        return load_settings()
    except Exception as exc:  # settings raise their own precise errors; show them, no trace
        raise fail(f"cannot load stack settings: {exc}. Run `fraudstream up` first.") from exc


@contextmanager
def stop_on_sigint() -> Iterator[threading.Event]:
    """Turn Ctrl-C into a stop flag, so loops end at their next poll and clean up.

    A second Ctrl-C falls back to the default handler (immediate KeyboardInterrupt).
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals only reach the main thread (e.g. under some test runners)
        return
    previous = signal.getsignal(signal.SIGINT)

    def _handler(signum: int, frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, _handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
