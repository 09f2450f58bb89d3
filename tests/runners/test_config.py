"""Experiment files: valid ones resolve, bad ones give one clear error naming file and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ptebench.errors import ConfigError
from ptebench.runners.config import load_experiment, parse_experiment
from ptebench.runners.plan import open_tasks, plan

GOOD = {
    "name": "t",
    "models": ["sim/1e20", {"id": "replay", "provider": "scripted", "outputs": ["Answer: 1"]}],
    "scaffolds": ["direct", {"name": "react", "params": {"max_steps": 3}}],
    "tasks": [{"name": "arith", "limit": 3}],
    "epochs": 2,
    "sandbox": "local",
}


def test_valid_experiment_plans_the_full_matrix() -> None:
    exp = parse_experiment(GOOD)
    specs = plan(exp, open_tasks(exp))
    assert len(specs) == 2 * 2 * 3 * 2
    assert len({s.episode_id for s in specs}) == len(specs)
    # deterministic ids and seeds
    again = plan(exp, open_tasks(exp))
    assert [(s.episode_id, s.seed) for s in specs] == [(s.episode_id, s.seed) for s in again]
    react = next(s for s in specs if s.scaffold == "react")
    assert react.scaffold_params["max_steps"] == 3 and react.scaffold_params["temperature"] == 0.0


def test_catalog_model_resolves_with_card() -> None:
    exp = parse_experiment(GOOD)
    cfg = exp.model_configs()[0]
    assert (cfg.id, cfg.provider, cfg.model, cfg.card) == ("sim/1e20", "sim", "1e20", "sim/1e20")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"scaffolds": ["nosuch"]}, "scaffolds[0]: unknown scaffold 'nosuch'; accepted: best_of_n, cot, direct"),
        ({"models": ["gpt-99"]}, "models[0]: unknown model 'gpt-99'"),
        ({"tasks": ["nosuch"]}, "tasks[0].name: unknown task 'nosuch'; accepted:"),
        ({"epochs": "many"}, "epochs: Input should be a valid integer"),
        ({"colour": "blue"}, "colour: unknown field"),
        ({"scaffolds": [{"name": "react", "params": {"max_stepz": 3}}]}, "scaffolds[0].params.max_stepz: unknown field"),
        ({"baseline": "cot"}, "baseline: 'cot' is not one of the scaffolds"),
        ({"sandbox": "vm"}, "sandbox: unknown sandbox 'vm'"),
        ({"tasks": [{"path": "/no/such/dir"}]}, "tasks[0].path: no such folder"),
        ({"tasks": [{"name": "arith", "path": "x"}]}, "give exactly one of name, path, metr"),
    ],
)
def test_bad_experiment_names_the_field(change: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_experiment({**GOOD, **change}, "exp.yaml")
    assert "exp.yaml" in str(e.value)
    assert needle in str(e.value)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nmodels: [sim/1e20\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML \(line \d+"):
        load_experiment(p)


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ptebench.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_cli_user_error_has_no_traceback(tmp_path: Path) -> None:
    p = tmp_path / "e.yaml"
    p.write_text("name: x\nmodels: [sim/1e20]\nscaffolds: [nosuch]\ntasks: [arith]\n")
    r = _cli("run", str(p), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "unknown scaffold 'nosuch'" in r.stderr
    assert "Traceback" not in r.stderr
    missing = _cli("run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "cannot read experiment file" in missing.stderr


def test_cli_lists_components() -> None:
    r = _cli("scaffolds", "list")
    assert r.returncode == 0, r.stderr
    assert "direct" in r.stdout and "react" in r.stdout and "max_steps" in r.stdout


@pytest.mark.parametrize("model_resources, message", [
    ({"sim/9e99": {"serves": 1}}, r"ray\.model_resources: 'sim/9e99' is not a model id of the "
                                  r"experiment; its models: sim/1e20, replay"),
    ({"replay": {"serves": 0}}, r"ray\.model_resources\.replay\.serves: Input should be greater than 0"),
    ({"replay": {"serves": "lots"}}, r"ray\.model_resources\.replay\.serves: Input should be a valid number"),
    ({"replay": {}}, r"ray\.model_resources\.replay: name at least one Ray resource"),
])
def test_bad_ray_model_resources_are_refused_at_load(model_resources: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_experiment({**GOOD, "executor": "ray", "ray": {"model_resources": model_resources}})


def test_ray_model_resources_pin_a_model(tmp_path: Path) -> None:
    exp = parse_experiment({**GOOD, "ray": {"model_resources": {"replay": {"serves_replay": 1}}}})
    assert exp.ray.model_resources == {"replay": {"serves_replay": 1.0}}
    bad = tmp_path / "exp.yaml"
    bad.write_text("name: t\nmodels: [sim/1e20]\nscaffolds: [direct]\ntasks: [arith]\n"
                   "sandbox: local\nexecutor: ray\nray: {model_resources: {sim/1e20: {gpu_box: -1}}}\n")
    r = subprocess.run([sys.executable, "-m", "ptebench.cli", "run", str(bad), "--out",
                        str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "ray.model_resources.sim/1e20.gpu_box: Input should be greater than 0" in r.stderr
    assert not (tmp_path / "r").exists()
