"""`python -m jobs.cli`: the `fraudstream` command (used where the console script is not on PATH,
e.g. the demo's and the benchmarks' job subprocesses)."""

from jobs.cli import app

app()
