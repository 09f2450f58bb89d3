"""docker-compose.yml validates with the compose CLI; the model examples parse and resolve."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ptebench.models.catalog import default_catalog
from ptebench.runners.config import load_experiment
from tests.conftest import require_system

ROOT = Path(__file__).resolve().parents[2]
LADDER = ["qwen-0.5b", "qwen-1.5b", "qwen-3b", "qwen-7b"]


def compose_cmd() -> list[str] | None:
    """`docker compose` (v2 plugin) if it works here, else the v1 `docker-compose` binary."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_config_validates_and_describes_the_ladder() -> None:
    cmd = compose_cmd()
    if cmd is None:
        require_system("neither `docker compose` nor `docker-compose` is installed")
    assert cmd is not None
    res = subprocess.run([*cmd, "-f", str(ROOT / "docker-compose.yml"), "config"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(res.stdout)
    services = cfg["services"]
    assert set(services) == {*LADDER, "runner"}
    gpus = set()
    for name in LADDER:
        svc = services[name]
        cmdline = svc["command"]
        assert "--enable-prefix-caching" in cmdline
        assert cmdline[cmdline.index("--tool-call-parser") + 1] == "hermes"
        assert "health" in " ".join(svc["healthcheck"]["test"])
        (device,) = svc["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"] and device["driver"] == "nvidia"
        gpus.update(device["device_ids"])
    assert len(gpus) == len(LADDER)  # one GPU per server
    runner = services["runner"]
    assert "examples/vllm-ladder.yaml" in " ".join(runner["command"])
    assert all(runner["depends_on"][s]["condition"] == "service_healthy" for s in LADDER)


def test_ladder_example_points_at_the_compose_services_with_cards() -> None:
    exp, _ = load_experiment(ROOT / "examples" / "vllm-ladder.yaml")
    cat = default_catalog()
    configs = exp.model_configs()
    assert [c.base_url for c in configs] == [f"http://{s}:8000/v1" for s in LADDER]
    for c in configs:
        card = cat.get(c.card or "")
        assert c.provider == "vllm" and card is not None and card.family == "Qwen2.5"
        assert card.n_layers and card.d_attn and card.train_flop


def test_llama_example_resolves_to_a_launch_config() -> None:
    exp, _ = load_experiment(ROOT / "examples" / "llama-local.yaml")
    (cfg,) = exp.model_configs()
    launch = cfg.options["launch"]
    assert isinstance(launch, dict) and launch["template"] == "llama_cpp"
    assert cfg.completion and cfg.card == "gemma-3-270m"


def test_catalog_names_build_their_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    from ptebench import registry
    from ptebench.errors import ConfigError
    from ptebench.models.anthropic import AnthropicModel
    from ptebench.models.openai import OpenAIModel
    from ptebench.runners.config import resolve_model

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    exp, _ = load_experiment(ROOT / "examples" / "api-models.yaml")
    built = [registry.get("model", c.provider)(c) for c in exp.model_configs()]
    assert [type(m) for m in built] == [OpenAIModel, OpenAIModel, AnthropicModel, AnthropicModel]
    assert [c.card for c in exp.model_configs()] == ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku",
                                                     "claude-3-5-sonnet"]
    qwen = resolve_model("Qwen2.5-7B", 0)  # an open card: served by vllm, which needs a server
    with pytest.raises(ConfigError, match="give base_url"):
        registry.get("model", qwen.provider)(qwen)
