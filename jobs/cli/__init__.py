"""The `fraudstream` command: one typer app, subcommands registered by the area that owns them.

Each area module exposes `register(app)`; heavy imports (pyflink, sklearn) stay inside the
command functions so `fraudstream --help` is instant.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="fraudstream: real-time card-fraud detection on Apache Flink.",
    no_args_is_help=True,
    add_completion=False,
)

# Modules that add commands to `app`. A module that is not there yet is skipped, so a partial
# checkout still gives a working CLI for what exists.
_COMMAND_MODULES = (
    "deploy.local.cli",  # up, down, status
    "models.data.cli",  # generate, load-kaggle
    "models.cli",  # train, evaluate
    "jobs.cli.run",  # run, submit
    "jobs.cli.lifecycle",  # stop
    "jobs.cli.ops",  # alerts, review, demo
    "bench.cli",  # bench
)

for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not _name.startswith(exc.name):
            raise
        continue
    _module.register(app)

