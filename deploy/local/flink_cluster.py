"""Local Flink standalone cluster (1 JobManager + TaskManagers) from the PyFlink installation.

`site-packages/pyflink` is a complete FLINK_HOME (bin/, lib/, opt/, conf/). The cluster gets its
own conf dir `<home>/flink/conf` (copied from pyflink/conf, `config.yaml` written by
`write_config`): loopback only, REST on `flink_rest_port` (28081), JobManager RPC on
`flink_rpc_port` (26123), 2 slots per TaskManager, `python.executable` and
`python.client.executable` = this interpreter (the venv), `pipeline.jars` = the connector jars
(so `bin/flink run` ships them with every job), checkpoints under `<home>/flink/checkpoints`.

The daemons also get their own lib dir `<home>/flink/lib` (`write_lib_dir`, passed to the bin/
scripts as FLINK_LIB_DIR): symlinks to pyflink/lib/*.jar plus pyflink/opt/flink-python-*.jar,
and `classloader.parent-first-patterns.additional` includes `pemja.`. So flink-python and the
PEMJA classes it bundles are loaded once per JVM by the system classloader (the image does the
same: deploy/docker/Dockerfile copies opt/flink-python-*.jar into lib/). Without it every
thread-mode job loaded PEMJA in its own user classloader; the native library can belong to one
classloader only, and the second thread-mode job on a TaskManager failed at open with
`NoSuchFieldException: loadedLibraryNames` (docs/runtime-notes.md;
tests/integration/test_cluster_thread_mode_resubmit.py). `bin/flink run` (the client) keeps the
stock lib/.
Logs: `<home>/logs/flink/`; pid files: `<home>/flink/pids/`.

API for jobs, tests and benchmarks (all take an optional StackSettings, default
`load_settings()`):
  flink_home(), flink_bin()             where the distribution and `bin/flink` are
  submit_python_job(target, args, detached=True) -> job id   (`bin/flink run -py/-pym`)
  list_jobs() / job_state(id) / wait_for_job(id, states, timeout) / cancel_job(id)  (REST)
  taskmanager_pids()                     live TaskManager pids (kill one to test failover)
  start_taskmanager()                    start one more TaskManager (restore after a kill)
  kill_jobmanager() / start_jobmanager() SIGKILL the JobManager (no HA: its jobs are lost,
                                         their retained checkpoints stay) / start it again
  stop_with_savepoint(id, dir, drain)    REST stop-with-savepoint; returns the savepoint path
  overview()                             REST /overview (taskmanagers, slots, jobs)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from connectors.jars import flink_jar_urls
from connectors.settings import StackSettings, job_secret_env, load_settings
from deploy.local.flink_rest import rest_call, stop_with_savepoint
from deploy.local.procs import (
    StackError,
    pid_alive,
    read_pids,
    require_free_ports,
    require_java,
    terminate,
    wait_until,
)
from deploy.local.prometheus import reporter_options, write_reporter_plugin
from deploy.local.service import StackService

TASKMANAGERS = 2
SLOTS_PER_TASKMANAGER = 2
START_TIMEOUT_S = 240.0
IDENT = "fraudstream"  # FLINK_IDENT_STRING: names the pid and log files
TERMINAL_STATES = frozenset({"FINISHED", "FAILED", "CANCELED"})
# Classes the user classloader must take from the daemons' classpath (PEMJA, in flink-python).
PARENT_FIRST_ADDITIONAL = ["pemja."]


def flink_home() -> Path:
    """The PyFlink installation used as FLINK_HOME (has bin/, lib/, conf/)."""
    import importlib.util

    spec = importlib.util.find_spec("pyflink")
    if spec is None or not spec.submodule_search_locations:
        raise StackError(
            "pyflink is not installed in this interpreter: run deploy/local/bootstrap.sh"
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def flink_bin() -> Path:
    """Path of `bin/flink` (the CLI client) of the PyFlink installation."""
    return flink_home() / "bin" / "flink"


@dataclass(frozen=True)
class FlinkCluster(StackService):
    """The standalone cluster of one stack home (`<home>/flink`). Methods are called by
    `deploy.local.stack`."""

    name = "flink"

    @property
    def conf_dir(self) -> Path:
        return self.dir / "conf"

    @property
    def lib_dir(self) -> Path:
        """FLINK_LIB_DIR of the JobManager and TaskManagers (see `write_lib_dir`)."""
        return self.dir / "lib"

    @property
    def plugins_dir(self) -> Path:
        """FLINK_PLUGINS_DIR of the daemons: the loopback Prometheus reporter
        (`deploy.local.prometheus.write_reporter_plugin`, written by `write_config`)."""
        return self.dir / "plugins"

    @property
    def pid_dir(self) -> Path:
        return self.dir / "pids"

    @property
    def log_dir(self) -> Path:
        return self.settings.logs_dir / "flink"

    @property
    def log_file(self) -> Path:
        """The JobManager log (TaskManager logs sit next to it)."""
        return self.log_dir / f"flink-{IDENT}-standalonesession-0-{os.uname().nodename}.log"

    @property
    def address(self) -> str:
        return self.settings.flink_rest_url

    def _pid_file(self, daemon: str) -> Path:
        return self.pid_dir / f"flink-{IDENT}-{daemon}.pid"

    def jobmanager_pids(self) -> list[int]:
        marker = str(self.conf_dir)
        return [p for p in read_pids(self._pid_file("standalonesession")) if pid_alive(p, marker)]

    def taskmanager_pids(self) -> list[int]:
        marker = str(self.conf_dir)
        return [p for p in read_pids(self._pid_file("taskexecutor")) if pid_alive(p, marker)]

    def pids(self) -> list[int]:
        return self.jobmanager_pids() + self.taskmanager_pids()

    def is_running(self) -> bool:
        return bool(self.jobmanager_pids())

    def env(self) -> dict[str, str]:
        """Environment for `bin/flink run`: our conf dir, ident and JAVA (the daemons' scripts
        get `daemon_env()`)."""
        env = dict(os.environ)
        env["FLINK_CONF_DIR"] = str(self.conf_dir)
        env["FLINK_IDENT_STRING"] = IDENT
        env["FLINK_HOME"] = str(flink_home())
        env.setdefault("JAVA_HOME", str(Path(require_java()).resolve().parents[1]))
        env["FRAUDSTREAM_HOME"] = str(self.settings.home)
        return env

    def daemon_env(self) -> dict[str, str]:
        """`env()` plus FLINK_LIB_DIR = our lib dir (flink-python on the daemons' classpath)
        and the job's secrets (`job_secret_env`: the writer password and the card-token key,
        from the environment or `<home>/secrets.env`), for jobmanager.sh / taskmanager.sh.
        The job reads those from its process environment when its functions open; they are
        never in a submitted job (issue 10)."""
        return {**self.env(), **job_secret_env(self.settings), "FLINK_LIB_DIR": str(self.lib_dir),
                "FLINK_PLUGINS_DIR": str(self.plugins_dir)}

    def write_lib_dir(self) -> list[str]:
        """(Re)build `<home>/flink/lib`: a symlink to every pyflink/lib/*.jar and to
        pyflink/opt/flink-python-*.jar. Returns the jar names."""
        home = flink_home()
        python_jars = sorted((home / "opt").glob("flink-python-*.jar"))
        if len(python_jars) != 1:
            raise StackError(
                f"expected one flink-python-*.jar in {home / 'opt'}, found "
                f"{[p.name for p in python_jars] or 'none'}: reinstall apache-flink"
            )
        if self.lib_dir.is_dir() and not self.lib_dir.is_symlink():
            shutil.rmtree(self.lib_dir)
        else:
            self.lib_dir.unlink(missing_ok=True)
        self.lib_dir.mkdir(parents=True)
        for jar in [*sorted((home / "lib").glob("*.jar")), *python_jars]:
            (self.lib_dir / jar.name).symlink_to(jar)
        return sorted(p.name for p in self.lib_dir.iterdir())

    def write_config(self) -> None:
        """Copy pyflink/conf to our conf dir and write config.yaml (flattened keys)."""
        src = flink_home() / "conf"
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        for item in src.iterdir():
            if item.is_file() and item.name != "config.yaml":
                shutil.copyfile(item, self.conf_dir / item.name)
        java_opts = _default_java_opts(src / "config.yaml")
        jars = flink_jar_urls(self.settings)
        python = sys.executable
        s = self.settings
        options: dict[str, object] = {
            "env.java.opts.all": java_opts,
            "env.log.dir": str(self.log_dir),
            "env.pid.dir": str(self.pid_dir),
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": s.flink_rpc_port,
            "jobmanager.bind-host": "127.0.0.1",
            "jobmanager.memory.process.size": "1024m",
            "jobmanager.execution.failover-strategy": "region",
            # A killed TaskManager is noticed after 15 s instead of 50 s (failover tests).
            "heartbeat.interval": 3000,
            "heartbeat.timeout": 15000,
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.host": "127.0.0.1",
            "taskmanager.numberOfTaskSlots": SLOTS_PER_TASKMANAGER,
            "taskmanager.memory.process.size": "2048m",
            "parallelism.default": 2,
            # Decision, measured: spread a job's slots over the TaskManagers. Without it both
            # subtasks of a parallelism-2 job landed on ONE TaskManager, so their Python ran
            # under one GIL (thread mode: one CPython per JVM) and the second TM sat idle.
            "taskmanager.load-balance.mode": "SLOTS",
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": s.flink_rest_port,
            "python.executable": python,
            "python.client.executable": python,
            "pipeline.jars": jars,
            # flink-python is in the daemons' lib dir (write_lib_dir); its bundled PEMJA must
            # come from there too, never from a job's copy of the jar (one native library
            # per JVM: a second thread-mode job failed with NoSuchFieldException).
            "classloader.parent-first-patterns.additional": PARENT_FIRST_ADDITIONAL,
            "execution.checkpointing.dir": (self.dir / "checkpoints").as_uri(),
            "execution.checkpointing.savepoint-dir": (self.dir / "savepoints").as_uri(),
        }
        # Metrics: the JobManager and each TaskManager serve Prometheus on 127.0.0.1, first
        # free port of `flink_metrics_ports` (when bootstrap built the reporter jar).
        if write_reporter_plugin(self.plugins_dir, s, flink_home()):
            options.update(reporter_options(s))
        lines = ["# Written by fraudstream up (deploy/local/flink_cluster.py)."]
        lines += [f"{key}: {json.dumps(value)}" for key, value in options.items()]
        (self.conf_dir / "config.yaml").write_text("\n".join(lines) + "\n")
        (self.conf_dir / "masters").write_text(f"127.0.0.1:{s.flink_rest_port}\n")
        (self.conf_dir / "workers").write_text("127.0.0.1\n" * TASKMANAGERS)

    def _script(self, name: str, *args: str) -> None:
        script = flink_home() / "bin" / name
        result = subprocess.run(
            ["bash", str(script), *args],
            env=self.daemon_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=True,
        )
        if result.returncode != 0:
            detail = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
            raise StackError(
                f"bin/{name} {' '.join(args)} failed: {detail[0]}; log: {self.log_dir}"
            )

    def start(self) -> None:
        """Start the JobManager and TASKMANAGERS TaskManagers; wait until all slots are
        registered (REST /overview)."""
        require_java()
        require_free_ports(
            [
                ("Flink REST", self.settings.flink_rest_port),
                ("Flink JobManager RPC", self.settings.flink_rpc_port),
            ],
            self.log_file,
        )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        for daemon in ("standalonesession", "taskexecutor"):
            self._pid_file(daemon).unlink(missing_ok=True)  # drop pids of killed daemons
        self.write_config()
        self.write_lib_dir()
        self._script("jobmanager.sh", "start")
        for _ in range(TASKMANAGERS):
            self._script("taskmanager.sh", "start")
        self.wait_for_taskmanagers(TASKMANAGERS)

    def wait_for_taskmanagers(self, count: int, timeout: float = START_TIMEOUT_S) -> None:
        """Block until the JobManager reports `count` registered TaskManagers."""
        wait_until(
            lambda: self.overview().get("taskmanagers", 0) >= count,
            timeout,
            f"Flink cluster on {self.address} ({count} TaskManagers)",
            self.log_file,
            alive=lambda: bool(self.jobmanager_pids()),
        )

    def _started(self, live_pids, before: set[int], daemon: str) -> list[int]:
        """The pids of `daemon` started since `before`. Polled: flink-daemon.sh writes the
        pid of its forked child at once, but the child is still bash until it execs java,
        and only java's command line names our conf dir (a single look once raised "did not
        start" for a TaskManager that ran)."""
        found: list[int] = []

        def started() -> bool:
            found[:] = [p for p in live_pids() if p not in before]
            return bool(found)

        try:
            wait_until(started, 15, f"the {daemon}'s JVM", self.log_file, interval=0.2)
        except StackError as err:
            raise StackError(f"{daemon} did not start; log: {self.log_dir}") from err
        return found

    def start_taskmanager(self, wait: bool = True) -> int:
        """Start one more TaskManager (e.g. to restore one killed by a failover test) and wait
        until it registers. Returns its pid."""
        before = set(self.taskmanager_pids())
        expected = len(before) + 1
        if not self.lib_dir.is_dir():  # a cluster started before the lib dir existed
            self.write_lib_dir()
        self._script("taskmanager.sh", "start")
        new = self._started(self.taskmanager_pids, before, "TaskManager")
        if wait:
            self.wait_for_taskmanagers(expected)
        return new[0]

    def ensure_taskmanagers(self, count: int = TASKMANAGERS) -> list[int]:
        """Start TaskManagers until `count` run (after a failover test killed some); returns
        the pids started."""
        started = []
        while len(self.taskmanager_pids()) < count:
            started.append(self.start_taskmanager(wait=False))
        if started:
            self.wait_for_taskmanagers(count)
        return started

    def kill_jobmanager(self) -> list[int]:
        """SIGKILL the JobManager (a crash, not a shutdown); returns the pids killed. Without
        HA its jobs are gone for good; their retained checkpoints stay on disk. TaskManagers
        keep running and register again with the next JobManager."""
        pids = self.jobmanager_pids()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: not self.jobmanager_pids(), 30, "the JobManager to die", self.log_file
        )
        self._pid_file("standalonesession").unlink(missing_ok=True)
        return pids

    def start_jobmanager(self, taskmanagers: int = TASKMANAGERS) -> int:
        """Start the JobManager (after `kill_jobmanager`) and wait until `taskmanagers`
        TaskManagers registered with it. Returns its pid."""
        if self.jobmanager_pids():
            raise StackError(f"a JobManager already runs: {self.jobmanager_pids()}")
        self._script("jobmanager.sh", "start")
        pids = self._started(self.jobmanager_pids, set(), "JobManager")
        self.wait_for_taskmanagers(taskmanagers)
        return pids[0]

    def stop(self) -> list[int]:
        """Stop every JobManager/TaskManager started from this home (pid files); returns pids."""
        marker = str(self.conf_dir)
        pids = read_pids(self._pid_file("taskexecutor")) + read_pids(
            self._pid_file("standalonesession")
        )
        stopped = terminate(pids, marker, timeout=20)
        for daemon in ("standalonesession", "taskexecutor"):
            self._pid_file(daemon).unlink(missing_ok=True)
        return stopped

    # ---- REST -------------------------------------------------------------------------------

    def rest(self, path: str, method: str = "GET", timeout: float = 5.0) -> dict:
        """One call to this cluster's REST API (`flink_rest.rest_call`)."""
        return rest_call(self.settings.flink_rest_url, path, method, timeout=timeout)

    def overview(self) -> dict:
        """REST /overview: taskmanagers, slots-total, slots-available, jobs-running, ..."""
        return self.rest("/overview")

    def list_jobs(self) -> list[dict]:
        """REST /jobs/overview: [{jid, name, state, start-time, ...}], newest first."""
        return self.rest("/jobs/overview").get("jobs", [])

    def job_state(self, job_id: str) -> str:
        return self.rest(f"/jobs/{job_id}").get("state", "UNKNOWN")

    def wait_for_job(
        self, job_id: str, states: str | tuple[str, ...] = "FINISHED", timeout: float = 120.0
    ) -> str:
        """Poll until the job reaches one of `states` (returns it). Raises StackError if it
        reaches another terminal state first, or on timeout."""
        wanted = (states,) if isinstance(states, str) else tuple(states)
        deadline = time.monotonic() + timeout
        state = "UNKNOWN"
        while time.monotonic() < deadline:
            try:
                state = self.job_state(job_id)
            except OSError:  # URLError, FlinkRestError
                state = "UNREACHABLE"
            if state in wanted:
                return state
            if state in TERMINAL_STATES:
                raise StackError(
                    f"job {job_id} ended {state}, expected {'/'.join(wanted)}; "
                    f"see {self.settings.flink_rest_url}/#/job/{job_id} and {self.log_dir}"
                )
            time.sleep(0.5)
        raise StackError(f"job {job_id} still {state} after {timeout:.0f}s; log: {self.log_dir}")

    def cancel_job(self, job_id: str) -> None:
        self.rest(f"/jobs/{job_id}?mode=cancel", method="PATCH")

    def stop_with_savepoint(
        self, job_id: str, target_dir: str | None = None, drain: bool = False,
        timeout: float = 300.0,
    ) -> str:
        """Stop the job with a savepoint (REST); returns the savepoint's path. See the
        module-level `stop_with_savepoint`."""
        return stop_with_savepoint(self.address, job_id, target_dir, drain, timeout)

    # ---- submission -------------------------------------------------------------------------

    def submit_python_job(
        self,
        target: str,
        args: list[str] | tuple[str, ...] = (),
        detached: bool = True,
        parallelism: int | None = None,
        timeout: float = 300.0,
    ) -> str:
        """Submit a PyFlink job with `bin/flink run -m 127.0.0.1:<rest> [-d] -py FILE | -pym
        MODULE`. `target` is a path ending in .py or a dotted module importable by the venv.
        Returns the job id printed by the client. Raises StackError with the client output tail
        on failure. With detached=False the call returns after the job finished."""
        cmd = [str(flink_bin()), "run", "-m", f"127.0.0.1:{self.settings.flink_rest_port}"]
        if detached:
            cmd.append("-d")
        if parallelism:
            cmd += ["-p", str(parallelism)]
        if target.endswith(".py"):
            cmd += ["-py", str(Path(target).resolve())]
        else:
            cmd += ["-pym", target]
        cmd += list(args)
        result = subprocess.run(
            cmd,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        output = result.stdout + result.stderr
        match = re.search(r"JobID\s+([0-9a-f]{32})", output)
        if result.returncode != 0 or not match:
            last = [ln for ln in output.strip().splitlines() if ln.strip()][-3:]
            raise StackError(
                f"flink run {target} failed (exit {result.returncode}): {' | '.join(last)}"
            )
        return match.group(1)


def _default_java_opts(config_yaml: Path) -> str:
    """The `env.java.opts.all` value of the shipped config (the --add-opens Flink needs)."""
    match = re.search(r"^\s+all:\s*(--add-.+)$", config_yaml.read_text(), re.MULTILINE)
    return match.group(1).strip() if match else ""


def cluster(settings: StackSettings | None = None) -> FlinkCluster:
    return FlinkCluster(settings or load_settings())


def submit_python_job(
    target: str,
    args: list[str] | tuple[str, ...] = (),
    detached: bool = True,
    settings: StackSettings | None = None,
    parallelism: int | None = None,
) -> str:
    """Module-level shortcut for `FlinkCluster.submit_python_job` on the default settings."""
    return cluster(settings).submit_python_job(target, args, detached, parallelism)


def list_jobs(settings: StackSettings | None = None) -> list[dict]:
    return cluster(settings).list_jobs()


def wait_for_job(
    job_id: str,
    states: str | tuple[str, ...] = "FINISHED",
    timeout: float = 120.0,
    settings: StackSettings | None = None,
) -> str:
    return cluster(settings).wait_for_job(job_id, states, timeout)


def cancel_job(job_id: str, settings: StackSettings | None = None) -> None:
    cluster(settings).cancel_job(job_id)


def taskmanager_pids(settings: StackSettings | None = None) -> list[int]:
    return cluster(settings).taskmanager_pids()


def start_taskmanager(settings: StackSettings | None = None, wait: bool = True) -> int:
    return cluster(settings).start_taskmanager(wait)
