"""The Flink JobManager REST client: one JSON call, and stop-with-savepoint built on it.

Used by the local cluster (`deploy.local.flink_cluster`), `fraudstream stop` and the benchmarks;
any JobManager works (`base_url` like http://host:port). Plain urllib, no dependency.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from deploy.local.procs import StackError


class FlinkRestError(StackError, OSError):
    """The JobManager answered a REST call with an HTTP error; the message has Flink's error
    text. An OSError too, like the connection errors a caller may already retry on."""


def rest_call(
    base_url: str, path: str, method: str = "GET", body: dict | None = None, timeout: float = 10.0
) -> dict:
    """One REST call; the decoded JSON reply ({} for an empty one). An HTTP error raises
    FlinkRestError; a connection failure raises urllib's URLError (an OSError)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:2000]
        raise FlinkRestError(f"{method} {base_url}{path} failed ({exc.code}): {detail}") from exc
    return json.loads(raw) if raw else {}


def stop_with_savepoint(
    base_url: str, job_id: str, target_dir: str | None = None, drain: bool = False,
    timeout: float = 300.0,
) -> str:
    """Stop `job_id` with a savepoint: POST /jobs/<id>/stop, then poll
    /jobs/<id>/savepoints/<trigger id> until it completes. `target_dir` None: the cluster's
    `execution.checkpointing.savepoint-dir`. `drain` True also fires every event-time timer
    and window (use it to end a job for good, not to upgrade it). Returns the savepoint path;
    raises StackError with Flink's failure cause, or on timeout."""
    body: dict[str, object] = {"drain": drain}
    if target_dir:
        body["targetDirectory"] = target_dir
    trigger = rest_call(base_url, f"/jobs/{job_id}/stop", "POST", body)["request-id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = rest_call(base_url, f"/jobs/{job_id}/savepoints/{trigger}")
        if reply.get("status", {}).get("id") == "COMPLETED":
            operation = reply.get("operation") or {}
            if operation.get("location"):
                return str(operation["location"])
            cause = operation.get("failure-cause") or {}
            raise StackError(
                f"stop-with-savepoint of job {job_id} failed: "
                f"{cause.get('stack-trace', cause) if cause else reply}"[:3000]
            )
        time.sleep(0.5)
    raise StackError(f"stop-with-savepoint of job {job_id} not done after {timeout:.0f} s")
