"""Describe the machine a benchmark ran on: cores, memory, CPU model, software versions, load.

Called once per benchmark run by the harness; the result goes verbatim into `result.json`
and as one line into `result.md`. Never fails: unknown values are reported as None.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _mem_total_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _java_version() -> str | None:
    try:
        out = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (out.stderr or out.stdout).splitlines()
    return first[0].strip() if first else None


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def load_average() -> tuple[float, float, float] | None:
    """1/5/15-minute load average (a sign of contention from other work on the box)."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def describe_machine() -> dict:
    """Cores, memory, CPU model, OS, Python/Java and key library versions, current load."""
    packages = ("apache-flink", "confluent-kafka", "onnxruntime", "psycopg", "numpy",
                "scikit-learn")
    return {
        "cores": os.cpu_count(),
        "memory_bytes": _mem_total_bytes(),
        "cpu_model": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "java": _java_version(),
        "packages": {name: _dist_version(name) for name in packages},
        "load_average": load_average(),
    }


def machine_line(machine: dict) -> str:
    """One Markdown line summarising `describe_machine()` output."""
    mem = machine.get("memory_bytes")
    mem_gib = f"{mem / 2**30:.0f} GiB" if mem else "? GiB"
    pk = machine.get("packages", {})
    load = machine.get("load_average")
    load_s = "/".join(f"{x:.2f}" for x in load) if load else "?"
    return (
        f"{machine.get('cores')} cores ({machine.get('cpu_model') or '?'}), {mem_gib}, "
        f"{machine.get('os')}, Python {machine.get('python')}, {machine.get('java') or 'java ?'}, "
        f"apache-flink {pk.get('apache-flink')}, onnxruntime {pk.get('onnxruntime')}, "
        f"confluent-kafka {pk.get('confluent-kafka')}; load avg at start {load_s}"
    )
