"""Lint the Kubernetes and Docker deployment files: no cluster is reachable here, so these
checks are what stands between a typo and a failed rollout."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "k8s" / "flinkdeployment.yaml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"


def _documents() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc}


def test_flink_deployment_runs_the_python_driver_with_savepoint_upgrades():
    spec = _documents()["FlinkDeployment"]["spec"]
    job = spec["job"]
    assert job["entryClass"] == "org.apache.flink.client.python.PythonDriver"
    assert job["upgradeMode"] == "savepoint", "a stateful job must upgrade through a savepoint"
    args = job["args"]
    assert args[args.index("-py") + 1].endswith(".py")
    assert spec["flinkConfiguration"]["python.execution-mode"] == "thread"


def test_the_python_file_the_manifest_runs_is_created_by_the_image():
    job = _documents()["FlinkDeployment"]["spec"]["job"]
    script = job["args"][job["args"].index("-py") + 1]
    assert script in DOCKERFILE.read_text()
    jar = job["jarURI"].removeprefix("local://")
    assert re.fullmatch(r"/opt/flink/opt/flink-python-[0-9.]+\.jar", jar)


def test_secrets_come_from_a_secret_not_from_the_config_map():
    """Issue 10: exactly the job's two secrets reach the pods' environment, each from a Secret
    key (no `envFrom: secretRef`, which would hand Flink every key, the analyst password too);
    none is in the job's arguments, the Flink configuration or the image."""
    from connectors.settings import JOB_SECRET_VARS

    docs = _documents()
    config_keys = docs["ConfigMap"]["data"].keys()
    assert not [k for k in config_keys if re.search("PASSWORD|KEY|SECRET", k)]
    spec = docs["FlinkDeployment"]["spec"]
    container = spec["podTemplate"]["spec"]["containers"][0]
    assert not any("secretRef" in source for source in container.get("envFrom", []))
    from_secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]
                    if "secretKeyRef" in e.get("valueFrom", {})}
    assert set(from_secrets) == set(JOB_SECRET_VARS)
    assert all(ref["key"] == name for name, ref in from_secrets.items())
    literal = [e["name"] for e in container["env"] if "value" in e]
    assert not [name for name in literal if re.search("PASSWORD|KEY", name)]
    in_job = " ".join(map(str, spec["job"]["args"])) + str(spec["flinkConfiguration"])
    assert not re.search("PASSWORD|TOKEN_KEY|SECRET", in_job)
    assert not re.search(r"^(ENV|ARG)\b.*(PASSWORD|KEY|SECRET)", DOCKERFILE.read_text(),
                         re.MULTILINE)


def test_the_image_puts_flink_python_on_the_cluster_classpath():
    """flink-python (with PEMJA) in /opt/flink/lib and PEMJA parent-first: otherwise every
    thread-mode job loads PEMJA's native library in its own classloader and the second one
    on a TaskManager fails (tests/integration/test_cluster_thread_mode_resubmit.py)."""
    dockerfile = DOCKERFILE.read_text()
    assert re.search(
        r"^RUN cp /opt/flink/opt/flink-python-\*\.jar /opt/flink/lib/$", dockerfile, re.MULTILINE
    )
    config = _documents()["FlinkDeployment"]["spec"]["flinkConfiguration"]
    patterns = config["classloader.parent-first-patterns.additional"].split(";")
    assert "pemja." in patterns
