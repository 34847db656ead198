#!/usr/bin/env bash
# `make test`: lint (ruff), the unit tier on 2 workers, then bring the stack up (with the Flink
# standalone cluster), run tests/pipeline and tests/integration, and stop the stack again when
# this run started it (always the case in CI on a fresh machine).
# Any pytest failure fails the run; exit 5 ("no tests collected") too.
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

# The unit tier needs no stack and runs its modules on 2 workers (~70 s instead of ~110 s
# serially on 2 cores; the integration tier cannot: its tests share one stack). It runs
# first, so a broken unit is reported before the stack's start.
echo "[test] tests/unit on 2 workers (property tests at full strength)"
rc_unit=0
.venv/bin/pytest -q -p no:cacheprovider --timeout=900 --durations=10 -n 2 --dist loadscope \
    tests/unit || rc_unit=$?
echo "[test] tests/unit: pytest exit $rc_unit after $(( $(date +%s) - T0 ))s"

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
echo "[test] stack ready after $(( $(date +%s) - T0 ))s; running tests/pipeline and tests/integration"
rc=0
# --durations: every run names its 25 slowest steps, so a suite drifting past its budget
# (well under 25 min on 2 cores) shows where.
.venv/bin/pytest -q -p no:cacheprovider --timeout=900 --durations=25 tests/pipeline \
    tests/integration || rc=$?
echo "[test] tests/pipeline + tests/integration: pytest exit $rc after $(( $(date +%s) - T0 ))s"
for code in "$rc_unit" "$rc"; do
    if [ "$code" -eq 5 ]; then
        echo "[test] error: a pytest run collected no tests" >&2
    fi
done
[ "$rc_unit" -ne 0 ] && exit "$rc_unit"
exit "$rc"
