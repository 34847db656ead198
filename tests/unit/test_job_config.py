"""jobs.config: precedence flags > env > stack > defaults, validation, masked secrets."""

from __future__ import annotations

import pytest

from connectors.settings import Secret
from jobs.config import ENV_VARS, ConfigError, JobConfig, build_config


def test_defaults_are_thread_mode_checkpointed_and_at_least_once():
    cfg = build_config({}, {}, {})
    assert cfg.execution_mode == "thread"
    assert cfg.checkpoint_interval_ms > 0
    assert cfg.alerts_delivery == "at-least-once"  # measured in docs/operations.md
    assert cfg.state_backend == "hashmap"


def test_precedence_flags_over_env_over_stack():
    stack = {"kafka_bootstrap": "stack:1", "pg_user": "stack_user", "parallelism": 4}
    env = {ENV_VARS["kafka_bootstrap"]: "env:2", ENV_VARS["bounded"]: "yes"}
    cfg = build_config({"kafka_bootstrap": "flag:3", "parallelism": None}, env, stack)
    assert cfg.kafka_bootstrap == "flag:3"
    assert cfg.bounded is True
    assert cfg.pg_user == "stack_user"
    assert cfg.parallelism == 4


def test_secrets_are_masked_everywhere():
    env = {ENV_VARS["pg_password"]: "hunter2-secret", ENV_VARS["card_token_key"]: "k" * 32}
    cfg = build_config({}, env, {})
    for text in (repr(cfg), str(cfg), cfg.describe()):
        assert "hunter2-secret" not in text and "k" * 32 not in text
    assert cfg.pg_password.reveal() == "hunter2-secret"
    assert isinstance(cfg.card_token_key, Secret)


@pytest.mark.parametrize(
    "flags, needle",
    [
        ({"execution_mode": "fast"}, "FRAUDSTREAM_EXECUTION_MODE"),
        ({"parallelism": "0"}, "FRAUDSTREAM_PARALLELISM"),
        ({"parallelism": "two"}, "FRAUDSTREAM_PARALLELISM"),
        ({"bounded": "maybe"}, "FRAUDSTREAM_BOUNDED"),
        ({"alerts_delivery": "exactly_once"}, "FRAUDSTREAM_ALERTS_DELIVERY"),
        ({"no_such_setting": "1"}, "no_such_setting"),
    ],
)
def test_invalid_values_name_the_env_var(flags, needle):
    with pytest.raises(ConfigError, match=needle):
        build_config(flags, {}, {})


def test_config_is_frozen_and_overrides_copy():
    cfg = JobConfig()
    with pytest.raises(AttributeError):
        cfg.parallelism = 3  # type: ignore[misc]
    other = cfg.with_overrides(parallelism="3", write_scored="false")
    assert (other.parallelism, other.write_scored, cfg.parallelism) == (3, False, 2)


def test_boolean_flags_from_the_cli_keep_their_value():
    # `fraudstream run --no-bounded` passes a real False; it once became the truthy "False"
    # and made the streaming job bounded (it finished as soon as it caught up).
    from jobs.config import build_config

    assert build_config({"bounded": False}, environ={}, stack={}).bounded is False
    assert build_config({"bounded": True}, environ={}, stack={}).bounded is True


def test_local_stack_supplies_filesystem_checkpoints(tmp_path, monkeypatch):
    # JobManager-heap checkpoints fail the job past 5 MB of operator state: the local stack
    # must always hand the job a filesystem checkpoint directory under its home.
    from jobs.config import build_config

    monkeypatch.setenv("FRAUDSTREAM_HOME", str(tmp_path))
    monkeypatch.delenv("FRAUDSTREAM_CHECKPOINT_DIR", raising=False)
    cfg = build_config({}, environ={})
    assert cfg.checkpoint_dir == (tmp_path / "flink" / "checkpoints").as_uri()
    assert build_config({"checkpoint_dir": "file:///elsewhere"}, environ={}).checkpoint_dir == (
        "file:///elsewhere"
    )


def test_buffer_timeout_reaches_flink_and_refuses_negative_values():
    from jobs.config import ConfigError, JobConfig
    from jobs.scoring_job import flink_options

    assert flink_options(JobConfig())["execution.buffer-timeout.interval"] == "10 ms"
    assert flink_options(JobConfig(buffer_timeout_ms=0))["execution.buffer-timeout.interval"] == (
        "0 ms"
    )
    with pytest.raises(ConfigError, match="buffer_timeout_ms"):
        JobConfig(buffer_timeout_ms=-1)
