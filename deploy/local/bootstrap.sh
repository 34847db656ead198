#!/usr/bin/env bash
# Installs what the local fraudstream stack needs; idempotent and fast on re-run.
#   1. .venv (python3.11) with `pip install -e '.[dev]' -c deploy/local/constraints.txt`
#      (skipped while pyproject.toml and constraints.txt are unchanged)
#   2. Debian packages: postgresql, maven, openjdk-17-jre-headless (apt-get, only when missing;
#      needs root, otherwise prints the package to install and exits 1)
#   3. jars from Maven Central via deploy/local/pom.xml into $FRAUDSTREAM_JARS_DIR
#      (default .fraudstream/jars/{kafka,flink}; skipped while pom.xml is unchanged)
#   4. the project's Java operators (connectors/java) compiled with javac against the venv's
#      PyFlink jars into <jars>/flink/fraudstream-flink-ops.jar (skipped while unchanged)
#   5. the loopback Prometheus reporter (deploy/monitoring/java) into <jars>/metrics/
#   Prometheus itself (Debian `prometheus`) is installed by `fraudstream up --monitoring` when
#   missing (deploy/local/prometheus.py), not here: only monitoring needs it.
# Cold: 4-10 min (pip dominates; 10 min measured on a loaded 2-core box); warm: under 1 s.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
HOME_DIR="${FRAUDSTREAM_HOME:-$REPO/.fraudstream}"
JARS_DIR="${FRAUDSTREAM_JARS_DIR:-$HOME_DIR/jars}"
VENV="$REPO/.venv"
PYTHON="${PYTHON:-python3.11}"
T0=$(date +%s)

say() { printf '[bootstrap %3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }
sha() { sha256sum "$@" | sha256sum | cut -c1-16; }
is_root() { [ "$(id -u)" -eq 0 ]; }

APT_UPDATED=0
apt_install() {  # apt_install <package...>: as root only; otherwise name the packages and fail
    if ! is_root; then
        die "missing $*: install it (sudo apt-get install -y $*) or run this script as root"
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
        APT_UPDATED=1
    fi
    say "apt-get install $* (about 1 min)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confold "$@" </dev/null >/dev/null
}

# --- 1. Python environment -----------------------------------------------------------------
command -v "$PYTHON" >/dev/null || apt_install python3.11 python3.11-venv
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV ($PYTHON)"
    "$PYTHON" -m venv "$VENV" || { apt_install python3.11-venv; "$PYTHON" -m venv "$VENV"; }
fi
CONSTRAINTS="$REPO/deploy/local/constraints.txt"
PIP_STAMP="$VENV/.fraudstream-pip-$(sha pyproject.toml "$CONSTRAINTS")"
if [ -f "$PIP_STAMP" ]; then
    say "python deps up to date (pyproject.toml unchanged)"
else
    say "pip install -e '.[dev]' -c constraints.txt (cold: 2-4 min; cached wheels: about 1 min)"
    "$VENV/bin/pip" install -q --no-compile --disable-pip-version-check -c "$CONSTRAINTS" -e '.[dev]' </dev/null
    # Bytecode once, here, on both cores (about 50 s): where PYTHONDONTWRITEBYTECODE is set (as
    # in some containers) nothing else ever caches it, and every Python start (CLI, test
    # worker, TaskManager worker) compiled sklearn, scipy, pyflink... again: 9 of the 26 s it
    # took to collect tests/unit. compileall writes .pyc whatever that variable says.
    say "compiling the venv's bytecode (about 1 min)"
    "$VENV/bin/python" -m compileall -q -j 0 "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null \
        || say "a few files of the venv did not compile (Python compiles them if imported)"
    rm -f "$VENV"/.fraudstream-pip-*
    touch "$PIP_STAMP"
    say "python deps installed"
fi

# --- 2. System packages ----------------------------------------------------------------------
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null; then
    # Our cluster is project-local: keep the package from creating and starting its own
    # cluster on port 5432.
    if is_root; then
        mkdir -p /etc/postgresql-common
        [ -f /etc/postgresql-common/createcluster.conf ] \
            || echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
    fi
    apt_install postgresql
fi
say "postgres server: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)"
command -v java >/dev/null || apt_install openjdk-17-jre-headless
command -v javac >/dev/null || apt_install openjdk-17-jdk-headless
command -v mvn >/dev/null || apt_install maven
say "java: $(java -version 2>&1 | head -1)"

# --- 3. Jars -------------------------------------------------------------------------------------
POM="$REPO/deploy/local/pom.xml"
JAR_STAMP="$JARS_DIR/.stamp-$(sha "$POM")"
if [ -f "$JAR_STAMP" ]; then
    say "jars up to date in $JARS_DIR (pom.xml unchanged)"
else
    say "resolving jars from Maven Central into $JARS_DIR (cold: about 1 min)"
    mkdir -p "$JARS_DIR"
    for profile in kafka flink; do
        # Resolve into a fresh dir and swap only when the set changed: a running broker or
        # cluster keeps using the jars in place.
        fresh="$JARS_DIR/.new-$profile"
        rm -rf "$fresh"
        mvn -B -q -Dstyle.color=never -f "$POM" -P "$profile" dependency:copy-dependencies \
            -DoutputDirectory="$fresh" </dev/null 2>&1 | sed 's/\x1b\[[0-9;]*m//g' \
            || die "maven could not resolve the $profile jars (see output above)"
        if diff -rq "$fresh" "$JARS_DIR/$profile" >/dev/null 2>&1; then
            rm -rf "$fresh"
        else
            rm -rf "$JARS_DIR/$profile" && mv "$fresh" "$JARS_DIR/$profile"
        fi
    done
    rm -f "$JARS_DIR"/.stamp-*
    touch "$JAR_STAMP"
    say "jars: $(ls "$JARS_DIR/kafka" | wc -l) kafka, $(ls "$JARS_DIR/flink" | wc -l) flink"
fi
# --- 4. The project's Java operators -------------------------------------------------------------
# Compiled against the exact Flink of the venv (pyflink/lib + flink-python), so no Flink version
# can drift between the operators and the runtime. Flink jobs ship the jar with the connectors.
OPS_SRC="$REPO/connectors/java"
OPS_JAR="$JARS_DIR/flink/fraudstream-flink-ops.jar"
PYFLINK_HOME="$("$VENV/bin/python" -c 'import os, pyflink; print(os.path.dirname(pyflink.__file__))')"
mapfile -t OPS_SOURCES < <(find "$OPS_SRC" -name '*.java' | sort)
mapfile -t OPS_RESOURCES < <(find "$OPS_SRC/META-INF" -type f | sort)
PG_DRIVER="$(ls "$JARS_DIR"/flink/postgresql-*.jar | head -1)"
OPS_STAMP="$JARS_DIR/.ops-$(sha "${OPS_SOURCES[@]}" "${OPS_RESOURCES[@]}" "$PG_DRIVER" \
    "$PYFLINK_HOME"/opt/flink-python-*.jar)"
if [ -f "$OPS_JAR" ] && [ -f "$OPS_STAMP" ]; then
    say "flink ops jar up to date"
else
    say "compiling connectors/java into $OPS_JAR"
    build="$(mktemp -d)"
    javac -nowarn -d "$build" --release 17 \
        -cp "$PYFLINK_HOME/lib/*:$(ls "$PYFLINK_HOME"/opt/flink-python-*.jar):$PG_DRIVER" \
        "${OPS_SOURCES[@]}" \
        || die "javac failed on connectors/java (see above)"
    cp -r "$OPS_SRC/META-INF" "$build/"  # the table-connector factory (service file)
    jar cf "$OPS_JAR.new" -C "$build" . && mv "$OPS_JAR.new" "$OPS_JAR"
    rm -rf "$build" "$JARS_DIR"/.ops-*
    touch "$OPS_STAMP"
fi
# --- 5. The loopback Prometheus reporter ------------------------------------------------------
# Flink's Prometheus reporter (pyflink/plugins/metrics-prometheus, shipped in the wheel) listens
# on every interface; deploy/monitoring/java binds it to 127.0.0.1. Compiled against the venv's
# Flink into <jars>/metrics/ (not <jars>/flink: jobs ship that folder), loaded by the standalone
# cluster as a plugin (deploy/local/flink_cluster.py).
PROM_SRC="$REPO/deploy/monitoring/java"
PROM_PLUGIN="$(ls "$PYFLINK_HOME"/plugins/metrics-prometheus/flink-metrics-prometheus-*.jar | head -1)"
PROM_JAR="$JARS_DIR/metrics/fraudstream-prometheus-loopback.jar"
mapfile -t PROM_SOURCES < <(find "$PROM_SRC" -name '*.java' | sort)
PROM_STAMP="$JARS_DIR/.metrics-$(sha "${PROM_SOURCES[@]}" "$PROM_SRC/META-INF/services/"* "$PROM_PLUGIN")"
if [ -f "$PROM_JAR" ] && [ -f "$PROM_STAMP" ]; then
    say "prometheus reporter jar up to date"
else
    say "compiling deploy/monitoring/java into $PROM_JAR"
    mkdir -p "$JARS_DIR/metrics"
    build="$(mktemp -d)"
    javac -nowarn -d "$build" --release 17 -cp "$PYFLINK_HOME/lib/*:$PROM_PLUGIN" \
        "${PROM_SOURCES[@]}" || die "javac failed on deploy/monitoring/java (see above)"
    cp -r "$PROM_SRC/META-INF" "$build/"
    jar cf "$PROM_JAR.new" -C "$build" . && mv "$PROM_JAR.new" "$PROM_JAR"
    rm -rf "$build" "$JARS_DIR"/.metrics-*
    touch "$PROM_STAMP"
fi
say "done in $(( $(date +%s) - T0 ))s"
