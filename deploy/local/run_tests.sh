#!/usr/bin/env bash
# `make test`: lint (ruff), bring the stack up (with the Flink standalone cluster), run the whole
# suite (tests/unit, tests/pipeline, tests/integration), and stop the stack again when this run
# started it (always the case in CI on a fresh machine).
# pytest's exit status is returned unchanged: exit 5 ("no tests collected") fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
FS=.venv/bin/fraudstream
T0=$(date +%s)

# Lint first, before any stack is started: a lint error fails the run in seconds.
echo "[test] ruff check ."
if ! .venv/bin/ruff check .; then
    echo "[test] error: ruff check . failed (findings above); fix them (many: .venv/bin/ruff check --fix .) and rerun" >&2
    exit 1
fi

# `status` exits 0 when Kafka and Postgres already run (someone else's stack: leave it up).
started=0
$FS status >/dev/null 2>&1 || started=1
cleanup() {
    if [ "$started" -eq 1 ]; then
        echo "[test] stopping the stack this run started"
        $FS down || true
    fi
}
trap cleanup EXIT

$FS up --flink-cluster
echo "[test] stack ready after $(( $(date +%s) - T0 ))s; running pytest"
rc=0
# --durations: every run names its 25 slowest steps, so a suite drifting past its budget
# (well under 25 min on 2 cores) shows where.
.venv/bin/pytest -q -p no:cacheprovider --timeout=900 --durations=25 tests "$@" || rc=$?
echo "[test] pytest exit $rc after $(( $(date +%s) - T0 ))s"
if [ "$rc" -eq 5 ]; then
    echo "[test] error: pytest collected no tests" >&2
fi
exit "$rc"
