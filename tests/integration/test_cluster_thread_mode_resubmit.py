"""Two thread-mode (PEMJA) jobs, one after the other, on the same standalone TaskManagers.

The second one used to fail at operator open with `NoSuchFieldException: loadedLibraryNames`:
flink-python (which bundles PEMJA) was only shipped with each job, so every job loaded PEMJA
and its native library in its own user classloader, and a native library can belong to one
classloader per JVM. The cluster now has flink-python in its lib dir (see
deploy/local/flink_cluster.py and docs/runtime-notes.md).

This file is also the job: `flink run -py <this file> NAME` runs `_job` below.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.flink_cluster]

ELEMENTS = 20


def _job(name: str) -> None:
    """A bounded job whose only Python operator runs in thread mode on every free slot."""
    import site

    from pyflink.common import Configuration, Types
    from pyflink.datastream import StreamExecutionEnvironment

    conf = Configuration()
    conf.set_string("python.execution-mode", "thread")
    # The embedded interpreter does not see the venv by itself (docs/runtime-notes.md).
    conf.set_string("python.pythonpath", ":".join(site.getsitepackages()))
    conf.set_string("pipeline.name", name)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    numbers = env.from_collection(list(range(ELEMENTS)), type_info=Types.INT())
    numbers.map(lambda x: x * 2, output_type=Types.INT()).name("thread-map").print()
    env.execute(name)


def _root_cause(cluster, job_id: str) -> str:
    """The last `Caused by` line of the job's first recorded exception (for the message)."""
    entries = cluster.rest(f"/jobs/{job_id}/exceptions").get("exceptionHistory", {})
    for entry in entries.get("entries", []):
        causes = [ln for ln in entry["stacktrace"].splitlines() if ln.startswith("Caused by")]
        return causes[-1] if causes else entry["stacktrace"].splitlines()[0]
    return "no exception recorded"


def _taskmanagers_of_map(cluster, job_id: str) -> set[str]:
    job = cluster.rest(f"/jobs/{job_id}")
    vertex = next(v for v in job["vertices"] if "thread-map" in v["name"])
    tms = cluster.rest(f"/jobs/{job_id}/vertices/{vertex['id']}/taskmanagers")["taskmanagers"]
    return {tm["taskmanager-id"] for tm in tms}


def test_second_thread_mode_job_on_the_same_taskmanagers_finishes(flink_cluster):
    from deploy.local.procs import StackError

    overview = flink_cluster.overview()
    slots = overview["slots-available"]
    assert slots >= 2 and slots == overview["slots-total"], f"cluster busy: {overview}"
    placements = []
    for attempt in (1, 2):
        # parallelism = every slot: the Python operator runs on every TaskManager each time
        job_id = flink_cluster.submit_python_job(
            str(Path(__file__).resolve()), [f"thread-mode-resubmit-{attempt}"], parallelism=slots
        )
        try:
            flink_cluster.wait_for_job(job_id, "FINISHED", timeout=90)
        except StackError as error:
            pytest.fail(
                f"thread-mode job {attempt} failed: {_root_cause(flink_cluster, job_id)} ({error})"
            )
        placements.append(_taskmanagers_of_map(flink_cluster, job_id))
    assert placements[0] & placements[1], f"the jobs never shared a TaskManager: {placements}"


if __name__ == "__main__":
    _job(sys.argv[1] if len(sys.argv) > 1 else "thread-mode-resubmit")
