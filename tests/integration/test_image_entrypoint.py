"""Issue 10 point 5: the image's entry point starts, and the manifest's settings reach the job.

No Docker engine here, so the image is laid out in a temporary root the way
deploy/docker/Dockerfile builds it, and run the way the Kubernetes manifest runs it:
- `/opt/fraudstream/venv`: a venv with the project INSTALLED (a copy of its packages, not this
  checkout: no `.fraudstream` home, no jar cache next to it) plus its dependencies;
- `/opt/flink`: FLINK_HOME with the connector jars and flink-python in lib/ (Dockerfile COPY/RUN
  cp), conf/config.yaml = the FlinkDeployment's flinkConfiguration (s3:// replaced by local
  directories), `usrlib/scoring_job.py` = the script the Dockerfile writes;
- environment: the image's ENV, FLINK_HOME, the ConfigMap's variables (pointing at the local
  stack) and the secrets; nothing else of ours (no FRAUDSTREAM_HOME / FRAUDSTREAM_JARS_DIR);
- command: `bin/flink run -t local` + the manifest's job args (PythonDriver, `-pyclientexec`,
  `-py usrlib/scoring_job.py`): the job runs in a MiniCluster inside the client, with the
  configuration and classpath the JobManager of the image would have.
The job runs bounded over a small topic. Before the fix it died at once with JarsMissingError,
and its local-stack checkpoint dir overrode the manifest's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from schemas.card_token import CardTokenizer
from tests.integration.jobs.harness import REPO, create_topics, delete_topics, produce
from tests.integration.jobs.recovery import read_committed_keys
from tests.integration.jobs.streams import valid_records

pytestmark = pytest.mark.integration

DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
MANIFEST = REPO / "deploy" / "k8s" / "flinkdeployment.yaml"
EVENTS = 400
PACKAGES = ("jobs", "models", "schemas", "connectors", "deploy", "bench")  # Dockerfile COPY


def _manifest() -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text()) if d}


def _pyflink_home() -> Path:
    import pyflink

    return Path(pyflink.__file__).resolve().parent


def _build_venv(root: Path) -> Path:
    """/opt/fraudstream/venv: the project installed (copied), dependencies linked from ours."""
    venv = root / "opt" / "fraudstream" / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = site / "site-packages"
    ours = Path(next(p for p in sys.path if p.endswith("site-packages")))
    for entry in ours.iterdir():
        if entry.name.startswith(("__editable__", "fraudstream-", "_virtualenv")):
            continue
        if entry.name in PACKAGES or (site / entry.name).exists():
            continue
        (site / entry.name).symlink_to(entry)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(REPO / package, site / package, ignore=ignore)
    return venv


def _build_flink_home(root: Path, jars_dir: Path) -> Path:
    """/opt/flink: bin (copied: its scripts derive FLINK_HOME from their own directory), lib =
    the distribution's jars + the connector jars + flink-python (Dockerfile), conf from the
    manifest, usrlib/scoring_job.py as the Dockerfile writes it."""
    dist = _pyflink_home()
    home = root / "opt" / "flink"
    home.mkdir(parents=True)
    shutil.copytree(dist / "bin", home / "bin")
    for name in ("opt", "plugins"):  # real folders: Flink lists them without following links
        (home / name).mkdir()
        for item in (dist / name).iterdir():
            (home / name / item.name).symlink_to(item)
    (home / "log").mkdir()
    lib = home / "lib"
    lib.mkdir()
    text = DOCKERFILE.read_text()
    assert "COPY .fraudstream/jars/flink/*.jar /opt/flink/lib/" in text
    assert re.search(r"^RUN cp /opt/flink/opt/flink-python-\*\.jar /opt/flink/lib/$", text, re.M)
    for jar in [*(dist / "lib").glob("*.jar"), *(jars_dir / "flink").glob("*.jar"),
                *(dist / "opt").glob("flink-python-*.jar")]:
        (lib / jar.name).symlink_to(jar)
    script = re.search(r"printf '([^']*)' > /opt/flink/usrlib/scoring_job\.py", text)
    assert script, "the Dockerfile no longer writes usrlib/scoring_job.py"
    (home / "usrlib").mkdir()
    (home / "usrlib" / "scoring_job.py").write_text(script.group(1).replace("\\n", "\n"))
    conf = home / "conf"
    conf.mkdir()
    for item in (dist / "conf").iterdir():
        if item.name.startswith("log4j"):
            shutil.copyfile(item, conf / item.name)
    return home


def _in_root(root: Path, value: str) -> str:
    """An image path (/opt/...) or s3:// URI as it is in the temporary root."""
    value = re.sub(r"^s3://fraudstream/", (root / "s3").as_uri() + "/", value)
    return str(root) + value if value.startswith("/opt/") else value


@pytest.fixture(scope="module")
def image(stack, tmp_path_factory):
    root = tmp_path_factory.mktemp("image")
    venv = _build_venv(root)
    home = _build_flink_home(root, stack.jars_dir)
    spec = _manifest()["FlinkDeployment"]["spec"]
    # The base image's config.yaml (its JVM --add-opens) under the manifest's settings.
    from deploy.local.flink_cluster import _default_java_opts

    conf = {"env.java.opts.all": _default_java_opts(_pyflink_home() / "conf" / "config.yaml")}
    conf.update({k: _in_root(root, str(v)) for k, v in spec["flinkConfiguration"].items()})
    # What the operator adds for application mode, and a free REST port for the MiniCluster.
    conf["parallelism.default"] = str(spec["job"]["parallelism"])
    conf["rest.bind-port"] = "0"
    (home / "conf" / "config.yaml").write_text(yaml.safe_dump(conf))
    return root, venv, home, conf, spec


def _image_environment(stack, root: Path, home: Path, job_env: dict[str, str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "JAVA_HOME") if k in os.environ}
    for name, value in re.findall(r"^ENV (\w+)=(\S+)$", DOCKERFILE.read_text(), re.M):
        env[name] = _in_root(root, value)
    env["FLINK_HOME"] = str(home)  # the flink base image's ENV
    config_map = _manifest()["ConfigMap"]["data"]
    local = {"FRAUDSTREAM_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
             "FRAUDSTREAM_PG_HOST": stack.pg_host, "FRAUDSTREAM_PG_PORT": str(stack.pg_port),
             "FRAUDSTREAM_PG_DATABASE": stack.pg_database}
    assert set(config_map) == set(local), "the ConfigMap changed: update this test"
    env.update(local)
    # the Secret's keys the container's env names (secretKeyRef), with the stack's values
    secrets = {"FRAUDSTREAM_PG_WRITER_PASSWORD": stack.writer_password.reveal(),
               "FRAUDSTREAM_CARD_TOKEN_KEY": stack.card_token_key.reveal()}
    container = _manifest()["FlinkDeployment"]["spec"]["podTemplate"]["spec"]["containers"][0]
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            env[item["name"]] = secrets[ref["key"]]
    env.update(job_env)
    return env


def test_the_image_entrypoint_runs_the_job_with_the_manifests_settings(stack, image):
    import psycopg

    root, venv, home, conf, spec = image
    run_id = uuid.uuid4().hex[:8]
    records = valid_records(CardTokenizer(stack.card_token_key.reveal().encode()), run_id, EVENTS,
                            raw_pan_every=0)
    topics = create_topics(stack.kafka_bootstrap, "image")
    try:
        produce(stack.kafka_bootstrap, topics.source, records)
        env = _image_environment(stack, root, home, {
            "FRAUDSTREAM_SOURCE_TOPIC": topics.source,
            "FRAUDSTREAM_DLQ_TOPIC": topics.dlq,
            "FRAUDSTREAM_ALERTS_TOPIC": topics.alerts,
            "FRAUDSTREAM_GROUP_ID": f"image-{run_id}",
            "FRAUDSTREAM_TRANSACTIONAL_ID_PREFIX": f"image-{run_id}",
            "FRAUDSTREAM_BOUNDED": "true",
        })
        args = [_in_root(root, a) for a in spec["job"]["args"]]
        cmd = [str(home / "bin" / "flink"), "run", "-t", "local", *args]
        out = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True,
                             timeout=600, check=False)
        log = out.stdout + out.stderr
        assert out.returncode == 0, log[-4000:]
        assert "connector jars: cluster lib/" in log, log[-3000:]
        ckpt = conf["execution.checkpointing.dir"]
        assert f"left to the cluster: execution.checkpointing.dir = {ckpt}" in log
        assert "left to the cluster: state.backend.type = rocksdb" in log
        # The JobMaster used the manifest's checkpoint storage and state backend (a finished
        # job's checkpoints are discarded: its folder is what stays).
        job_id = re.search(r"JobID ([0-9a-f]{32})", log).group(1)
        assert (Path(ckpt.removeprefix("file://")) / job_id).is_dir()
        jm_log = "".join(f.read_text(errors="replace") for f in (home / "log").glob("*.log"))
        ckpt_path = ckpt.removeprefix("file://")
        assert f"Checkpoint storage is set to 'filesystem': (checkpoints \"file:{ckpt_path}\")" in (
            jm_log)
        assert "loads the state backend as EmbeddedRocksDBStateBackend" in jm_log
        site_packages = next(venv.glob("lib/python*/site-packages"))
        assert not (site_packages / ".fraudstream").exists()

        ids = [r.txn.transaction_id for r in records]
        with psycopg.connect(stack.pg_conninfo("writer"), autocommit=True) as db:
            rows = db.execute(
                "SELECT transaction_id, decision FROM scored_transactions"
                " WHERE transaction_id = ANY(%s)", (ids,)).fetchall()
        assert sorted(r[0] for r in rows) == sorted(ids)
        alerts = sorted(r[0] for r in rows if r[1] == "alert")
        assert sorted(read_committed_keys(stack.kafka_bootstrap, topics.alerts)) == alerts
    finally:
        delete_topics(stack.kafka_bootstrap, topics)
