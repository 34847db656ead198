"""The process and log helpers every layer shares (deploy/local/procs.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from deploy.local.procs import pid_alive, stop_process_groups, tail, tail_lines


def test_tail_lines_skips_blank_lines_and_reports_an_unreadable_log(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("one\n\ntwo  \nthree\n\n")
    assert tail_lines(log, 2) == ["two", "three"]
    assert tail_lines(tmp_path / "missing.log", 2) is None
    assert tail(log, 2) == "two | three"
    assert tail(tmp_path / "missing.log") == "no log"


def test_stop_process_groups_reaches_the_whole_group_and_escalates():
    # The child ignores SIGTERM, so only the SIGKILL step ends it; its grandchild (`sleep`)
    # is in the same group and must die with it.
    script = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
              "p = subprocess.Popen(['sleep', '60']); print(p.pid, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    grandchild = int(proc.stdout.readline())
    started = time.monotonic()
    stop_process_groups([proc], ((signal.SIGTERM, 0.5), (signal.SIGKILL, 5.0)))
    assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5.0
    deadline = time.monotonic() + 5
    while pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(grandchild)
    proc.stdout.close()


def test_stop_process_groups_leaves_finished_processes_alone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait(10)
    stop_process_groups([proc], ((signal.SIGKILL, 1.0),))
    assert proc.returncode == 0
