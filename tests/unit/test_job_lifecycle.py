"""Stop/resume/upgrade plumbing and the cluster entry point's settings, without a cluster:
which Flink options the job leaves to the cluster (the manifest's), where its jars come from,
which savepoint or checkpoint "latest" means, and the `flink run` line that resumes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from connectors.jars import REQUIRED_FLINK_JARS, JarsMissingError
from jobs.cli.run import submit_command
from jobs.cluster_env import (
    job_flink_options,
    job_jar_urls,
    read_cluster_config,
    require_checkpoints,
)
from jobs.config import ConfigError, JobConfig, build_config, explicit_fields
from jobs.restore_paths import RestorePathError, latest_checkpoint, latest_savepoint, resolve
from jobs.scoring_job import flink_options

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "k8s" / "flinkdeployment.yaml"


def _manifest_conf_dir(tmp_path: Path) -> Path:
    """A conf dir holding the manifest's flinkConfiguration as the operator writes it."""
    docs = {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text()) if d}
    conf = docs["FlinkDeployment"]["spec"]["flinkConfiguration"]
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(conf))
    return folder


def test_the_manifests_durable_state_settings_reach_the_job(tmp_path):
    # The job's config defaults (and the local-stack checkpoint dir under a missing home) used
    # to override the manifest's s3 directories, RocksDB and restart strategy.
    _manifest_conf_dir(tmp_path)
    environ = {"FLINK_HOME": str(tmp_path)}  # the image: FLINK_HOME=/opt/flink, conf/ in it
    cluster = read_cluster_config(environ)
    cfg = build_config({}, environ={}, stack={"checkpoint_dir": "file:///site/.fraudstream/x"})
    options, left = job_flink_options(flink_options(cfg), cluster, explicit_fields({}, {}))
    merged = {**cluster, **options}
    assert merged["execution.checkpointing.dir"] == "s3://fraudstream/checkpoints"
    assert merged["execution.checkpointing.savepoint-dir"] == "s3://fraudstream/savepoints"
    assert merged["state.backend.type"] == "rocksdb"
    assert merged["restart-strategy.fixed-delay.attempts"] == "10"
    assert merged["python.executable"] == "/opt/fraudstream/venv/bin/python"
    assert "execution.checkpointing.dir" in left and "state.backend.type" in left
    # what the cluster does not decide still comes from the job
    assert options["execution.buffer-timeout.interval"] == "10 ms"
    require_checkpoints(cfg, merged)


def test_an_explicit_setting_overrides_the_cluster(tmp_path):
    cluster = read_cluster_config({"FLINK_CONF_DIR": str(_manifest_conf_dir(tmp_path))})
    environ = {"FRAUDSTREAM_STATE_BACKEND": "hashmap"}
    flags = {"checkpoint_dir": "file:///mnt/ckpt"}
    cfg = build_config(flags, environ=environ, stack={})
    options, _ = job_flink_options(flink_options(cfg), cluster, explicit_fields(flags, environ))
    assert options["state.backend.type"] == "hashmap"
    assert options["execution.checkpointing.dir"] == "file:///mnt/ckpt"
    assert "restart-strategy.type" not in options  # not named: the cluster's


def test_deprecated_and_nested_cluster_keys_are_understood(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "state:\n  checkpoints:\n    dir: file:///durable\n  backend: rocksdb\n"
    )
    cluster = read_cluster_config({"FLINK_CONF_DIR": str(tmp_path)})
    assert cluster == {"execution.checkpointing.dir": "file:///durable",
                       "state.backend.type": "rocksdb"}
    options, _ = job_flink_options(flink_options(JobConfig(checkpoint_dir="file:///x")),
                                   cluster, set())
    assert "execution.checkpointing.dir" not in options
    assert "execution.checkpointing.storage" not in options
    assert "state.backend.type" not in options


def test_without_cluster_settings_the_job_sets_everything():
    cfg = JobConfig(checkpoint_dir="file:///c", savepoint_dir="file:///s")
    options, left = job_flink_options(flink_options(cfg), {}, set())
    assert options == flink_options(cfg) and left == {}
    assert options["execution.checkpointing.externalized-checkpoint-retention"] == (
        "RETAIN_ON_CANCELLATION"
    )
    assert options["execution.checkpointing.savepoint-dir"] == "file:///s"


def test_exactly_once_alerts_need_checkpoints():
    cfg = JobConfig(alerts_delivery="exactly-once")
    assert JobConfig().alerts_delivery == "at-least-once"  # the default, docs/operations.md
    with pytest.raises(ConfigError, match="checkpoint_interval_ms"):
        require_checkpoints(cfg, flink_options(JobConfig(checkpoint_interval_ms=0)))
    require_checkpoints(
        JobConfig(alerts_delivery="at-least-once"),
        flink_options(JobConfig(checkpoint_interval_ms=0)),
    )
    with pytest.raises(ConfigError, match="checkpoint_retention"):
        JobConfig(checkpoint_retention="KEEP")


def _fake_jars(folder: Path) -> None:
    folder.mkdir(parents=True)
    for prefix in REQUIRED_FLINK_JARS:
        (folder / f"{prefix}1.0.jar").write_bytes(b"")


def test_jars_come_from_the_cluster_lib_when_the_cache_has_none(tmp_path, monkeypatch):
    # The image: jars in /opt/flink/lib, no FRAUDSTREAM_HOME; main() used to die with
    # JarsMissingError (it caught only ImportError).
    monkeypatch.setenv("FRAUDSTREAM_HOME", str(tmp_path / "nohome"))
    monkeypatch.delenv("FRAUDSTREAM_JARS_DIR", raising=False)
    with pytest.raises(JarsMissingError, match="lib"):
        job_jar_urls({"FLINK_HOME": str(tmp_path / "flink")})
    _fake_jars(tmp_path / "flink" / "lib")
    assert job_jar_urls({"FLINK_HOME": str(tmp_path / "flink")}) is None
    _fake_jars(tmp_path / "nohome" / "jars" / "flink")
    urls = job_jar_urls({"FLINK_HOME": str(tmp_path / "flink")})
    assert urls and all(u.startswith("file://") and "nohome" in u for u in urls)


def _complete(path: Path, age_s: float) -> Path:
    path.mkdir(parents=True)
    meta = path / "_metadata"
    meta.write_bytes(b"x")
    t = time.time() - age_s
    os.utime(meta, (t, t))
    return path


def test_latest_is_the_newest_complete_savepoint_or_checkpoint(tmp_path):
    _complete(tmp_path / "sp" / "savepoint-aaaaaa-1", 30)
    newest_sp = _complete(tmp_path / "sp" / "savepoint-bbbbbb-2", 10)
    (tmp_path / "sp" / "savepoint-cccccc-3").mkdir()  # being written: no _metadata
    assert latest_savepoint((tmp_path / "sp").as_uri()) == newest_sp
    _complete(tmp_path / "ck" / "job1" / "chk-9", 20)
    newest_ck = _complete(tmp_path / "ck" / "job2" / "chk-3", 5)
    (tmp_path / "ck" / "job2" / "chk-4").mkdir()  # JobManager died while writing it
    assert latest_checkpoint(str(tmp_path / "ck")) == newest_ck
    assert resolve("latest", "checkpoint", (tmp_path / "ck").as_uri()) == str(newest_ck)
    assert resolve("/some/path", "savepoint", None) == "/some/path"
    with pytest.raises(RestorePathError, match="no complete checkpoint"):
        latest_checkpoint(str(tmp_path / "empty"))
    with pytest.raises(RestorePathError, match="s3"):
        resolve("latest", "savepoint", "s3://bucket/savepoints")


def test_submit_command_restores_without_claiming_by_default():
    cmd = submit_command("127.0.0.1:1", {"parallelism": 1}, True, "/sp/savepoint-1")
    assert cmd[cmd.index("-s") + 1] == "/sp/savepoint-1"
    assert cmd[cmd.index("--claimMode") + 1] == "no_claim"
    assert cmd.index("-s") < cmd.index("-pym")  # flink's options before the program's
    assert "-s" not in submit_command("127.0.0.1:1", {}, True)


def test_a_bounded_job_is_not_resumed(tmp_path):
    # A restored bounded KafkaSource never finishes (FLINK-31006): refuse instead of hanging.
    from typer.testing import CliRunner

    from jobs.cli import app

    result = CliRunner().invoke(app, [
        "submit", "--bounded", "--from-savepoint", str(tmp_path), "--dry-run",
    ])
    assert result.exit_code != 0
    assert "FLINK-31006" in result.output
    ok = CliRunner().invoke(app, ["submit", "--from-savepoint", str(tmp_path), "--dry-run"])
    assert ok.exit_code == 0, ok.output
    assert f"-s {tmp_path} --claimMode no_claim" in ok.output
