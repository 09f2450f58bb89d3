"""The Harbor importer's parsing (no Docker): task.toml fields, compose files, refusals,
reward files, the image map. Input: ptebench's fixture tasks and two public Harbor recipes
(tests/tasks/data/harbor_cookbook, Apache-2.0, see its NOTICE)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ptebench.errors import ConfigError
from ptebench.sandbox.images.build import from_images, image_map_from_env, rewrite_from
from ptebench.tasks.harbor import (
    load_harbor,
    network_requested,
    oracle_action,
    parse_reward,
    parse_task,
)
from ptebench.tasks.native import TaskFormatError
from ptebench.tasks.native_run import TaskScoringError

HERE = Path(__file__).parent
FIXTURES = HERE / "harbor_tasks"
COOKBOOK = HERE / "data" / "harbor_cookbook"


def test_public_recipes_parse() -> None:
    fam = load_harbor(COOKBOOK)
    assert sorted(fam.tasks) == ["multi-container", "simple-task"]
    mc = fam.tasks["multi-container"]
    assert mc.config.environment.memory_mb == 2048 and mc.config.verifier.timeout_sec == 600.0
    api = mc.services["api-server"]
    assert api.context is not None and api.context.name == "api-server"
    assert api.healthcheck is not None
    assert (api.healthcheck.interval_s, api.healthcheck.retries, api.healthcheck.start_period_s) == (2.0, 15, 5.0)
    assert api.healthcheck.test[:2] == ["python3", "-c"]
    assert mc.main.context == COOKBOOK / "multi-container" / "environment"
    # Harbor's default network is public; the recipe does not say otherwise
    assert network_requested(mc.config) == "public"


def test_fixture_fields() -> None:
    fam = load_harbor(FIXTURES)
    s = fam.tasks["sum-numbers"]
    assert network_requested(s.config) == "no-network"  # legacy allow_internet = false
    assert s.has_solution and s.config.agent.timeout_sec == 120.0
    v = fam.tasks["vault-service"]
    assert network_requested(v.config) == "no-network"  # network_mode spelling
    assert list(v.services) == ["vault"] and v.main.env == {"VAULT_URL": "http://vault:8080"}


def _task(tmp_path: Path, toml: str, compose: str | None = None) -> Path:
    root = tmp_path / "t"
    shutil.copytree(FIXTURES / "sum-numbers", root)
    (root / "task.toml").write_text(toml)
    if compose is not None:
        (root / "environment" / "docker-compose.yaml").write_text(compose)
    return root


def test_unsupported_fields_are_refused_each_named(tmp_path: Path) -> None:
    root = _task(tmp_path, """
version = "1.0"
[environment]
gpus = 1
network_mode = "allowlist"
allowed_hosts = ["example.com"]
env = { KEY = "${HOST_KEY}" }
[[environment.mcp_servers]]
name = "m"
url = "http://m:8000/mcp"
[verifier]
environment_mode = "separate"
[[steps]]
name = "one"
""")
    with pytest.raises(TaskFormatError) as ei:
        parse_task(root)
    text = "\n".join(ei.value.errors)
    for field in ("environment.gpus", "environment.network_mode", "environment.env.KEY",
                  "environment.mcp_servers", "verifier.environment", "steps"):
        assert f"task.toml: {field}:" in text, field
    assert all(line.startswith(str(root / "task.toml")) for line in ei.value.errors)


def test_unknown_field_is_an_error(tmp_path: Path) -> None:
    root = _task(tmp_path, '[environment]\ncpu = 2\n')
    with pytest.raises(TaskFormatError, match=r"environment\.cpu: Extra inputs are not permitted"):
        parse_task(root)


def test_compose_volumes_and_privileges_refused(tmp_path: Path) -> None:
    root = _task(tmp_path, 'version = "1.0"\n', """
services:
  main:
    volumes: ["./data:/data"]
  db:
    image: ptebench/base
    privileged: true
volumes:
  shared: {}
""")
    with pytest.raises(TaskFormatError) as ei:
        parse_task(root)
    text = "\n".join(ei.value.errors)
    assert "services.main.volumes: not supported (a shared or host volume" in text
    assert "services.db.privileged: not supported" in text
    assert "volumes: top-level volumes are not supported" in text


def test_missing_verifier_and_instruction(tmp_path: Path) -> None:
    root = _task(tmp_path, 'version = "1.0"\n')
    (root / "tests" / "test.sh").unlink()
    (root / "instruction.md").write_text("  \n")
    with pytest.raises(TaskFormatError) as ei:
        parse_task(root)
    assert any("tests/test.sh: missing" in e for e in ei.value.errors)
    assert any("instruction.md: empty" in e for e in ei.value.errors)


def test_rewards() -> None:
    assert parse_reward(None, "1\n") == (1.0, "reward.txt = 1")
    assert parse_reward('{"reward": 0.25, "accuracy": 0.9}', "1")[0] == 0.25  # json wins
    assert parse_reward('{"accuracy": 0.75}', None)[0] == 0.75
    value, why = parse_reward(None, "3.5")
    assert value == 1.0 and "clipped from 3.5" in why
    assert parse_reward(None, "-1")[0] == 0.0
    for bad_json, bad_txt, msg in (
        ('{"a": 1, "b": 0}', None, "no 'reward' key"),
        (None, "", "empty"),
        (None, "pass", "not a number"),
        ('{"reward": "1"}', None, "not a finite number"),
        (None, None, "wrote no"),
    ):
        with pytest.raises(TaskScoringError, match=msg):
            parse_reward(bad_json, bad_txt)


def test_oracle_action_carries_the_solution_folder() -> None:
    t = parse_task(FIXTURES / "sum-numbers")
    action = oracle_action(t, "/app")
    assert action.tool == "bash" and "cd /app" in action.input
    assert "PTEBENCH-HARBOR-SOLUTION-MARKER" not in action.input  # packed, not pasted


def test_image_map_env_and_from_lines() -> None:
    assert image_map_from_env({"PTEBENCH_IMAGE_MAP": "ubuntu:24.04=ptebench/base, python:3.12-slim=x"}) == {
        "ubuntu:24.04": "ptebench/base", "python:3.12-slim": "x"}
    with pytest.raises(ConfigError, match="PTEBENCH_IMAGE_MAP"):
        image_map_from_env({"PTEBENCH_IMAGE_MAP": "ubuntu"})
    text = "FROM --platform=linux/amd64 golang:1.22 AS build\nRUN true\nFROM build\nFROM scratch\nfrom ubuntu:24.04\n"
    assert from_images(text) == ["golang:1.22", "ubuntu:24.04"]
    out = rewrite_from(text, {"ubuntu:24.04": "ptebench/base"})
    assert "from ptebench/base" in out and "golang:1.22 AS build" in out


def test_network_is_granted_only_when_the_experiment_allows_it(tmp_path: Path) -> None:
    root = _task(tmp_path, '[environment]\nnetwork_mode = "public"\n')
    task = parse_task(root)
    assert network_requested(task.config) == "public"
    assert load_harbor(root).network(task) == "none"
    assert load_harbor(root, allow_full_internet=True).network(task) == "full"
    offline = parse_task(FIXTURES / "sum-numbers")
    assert load_harbor(root, allow_full_internet=True).network(offline) == "none"


def test_experiment_accepts_a_harbor_entry(tmp_path: Path) -> None:
    from ptebench.runners.config import Experiment

    exp = Experiment.model_validate({
        "name": "h", "models": ["sim/1e20"], "scaffolds": ["react"],
        "tasks": [{"harbor": {"path": str(FIXTURES), "image_map": {"ubuntu:24.04": "ptebench/base"}}}],
    })
    entry = exp.task_entries()[0]
    assert entry.harbor is not None and entry.harbor.image_map == {"ubuntu:24.04": "ptebench/base"}


def test_validate_cli_exits_2_naming_the_refused_field(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = _task(tmp_path, "[environment]\ngpus = 2\n")
    r = subprocess.run([sys.executable, "-m", "ptebench.cli", "tasks", "validate", str(root.parent)],
                       capture_output=True, text=True, timeout=120, check=False,
                       env={**os.environ, "COLUMNS": "400"})
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{root / 'task.toml'}: environment.gpus: GPUs are not supported" in r.stderr
    assert "Traceback" not in r.stderr


def test_prebuilt_docker_image_wins_as_in_harbor(tmp_path: Path) -> None:
    root = _task(tmp_path, '[environment]\ndocker_image = "org/prebuilt:1"\n')
    t = parse_task(root)
    assert t.main.image == "org/prebuilt:1" and t.main.context is None
    (root / "environment" / "Dockerfile").unlink()
    assert parse_task(root).main.image == "org/prebuilt:1"  # no Dockerfile needed then
