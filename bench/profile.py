"""Where the engine's Python time goes: py-spy samples of the running engine, summarised.

Optional (`--profile-s N` on the bench command; needs `py-spy` in the venv). Started by the
throughput driver once 10 % of the events are persisted, so start-up is not in the profile.
Profiles every engine process that runs a CPython: the TaskManager/MiniCluster JVM in thread
mode (PEMJA loads libpython into the JVM) and the Beam workers in process mode.

`summarize_collapsed(lines)` is pure (unit-tested): from py-spy's raw collapsed stacks it
returns, per pipeline stage, the share of the samples of Python threads that were working.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

# Stage -> function names (as py-spy prints them) whose inclusive samples make up the stage.
STAGES: dict[str, tuple[str, ...]] = {
    "parse (all)": ("parse_transaction",),
    "parse: JSON Schema validation": ("Validator.iter_errors",),
    "features update": ("update",),
    "state access (Flink MapState)": ("MapStateImpl.get", "MapStateImpl.put_all",
                                      "ValueStateImpl.value", "ValueStateImpl.update"),
    "state (de)serialization": ("state_to_bytes", "state_from_bytes"),
    "timers": ("TimerServiceImpl.register_event_time_timer",
               "TimerServiceImpl.delete_event_time_timer"),
    "model (decide_batch)": ("Scorer.decide_batch",),
    "model: onnxruntime run": ("Session.run",),
    "reason codes (explain_batch)": ("Scorer.explain_batch",),
    "output rows / JSON": ("scored_to_tuple", "features_to_json", "JSONEncoder.encode"),
    "Flink row conversion": ("RowDataConverter.to_internal", "RowDataConverter.to_external"),
}


def _name(frame: str) -> str:
    """`func (file.py:12)` -> `func`; strips `create.<locals>.` style prefixes."""
    name = frame.split(" (", 1)[0]
    return name.replace("create.<locals>.", "")


def summarize_collapsed(lines: Iterable[str]) -> dict:
    """Busy samples and each stage's share of them, from py-spy `--format raw` lines.

    A sample counts as busy when its stack has a frame below the thread root (idle threads
    show as a single empty frame). Shares are inclusive (a stage includes what it calls), so
    they overlap where stages nest (e.g. JSON Schema validation is inside parse).
    """
    busy = 0
    per_stage: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        names = {_name(f) for f in stack.split(";") if f.strip()}
        if not names:
            continue
        n = int(count)
        busy += n
        for stage, funcs in STAGES.items():
            if any(f in names for f in funcs):
                per_stage[stage] += n
    return {
        "busy_samples": busy,
        "stage_share": {k: round(per_stage[k] / busy, 4) if busy else 0.0 for k in STAGES},
    }


def python_pids(pids: Iterable[int]) -> list[int]:
    """The pids among `pids` that have a CPython loaded (libpython or a python executable)."""
    found = []
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
            exe = Path(f"/proc/{pid}/exe").resolve().name
        except OSError:
            continue
        if "libpython3" in maps or exe.startswith("python"):
            found.append(pid)
    return found


def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    """Start `py-spy record` on `pid` for `seconds` (non-blocking); None if py-spy is absent."""
    exe = shutil.which("py-spy") or str(Path(__import__("sys").executable).parent / "py-spy")
    if not Path(exe).exists():
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
         "--nonblocking", "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
