"""The executor end to end on real parts: sim and scripted models, the local sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptebench.errors import ConfigError, UserError
from ptebench.results.store import RunStore, load
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment
from tests.runners import fixtures


def _exp(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "t",
        "models": ["sim/1e22"],
        "scaffolds": ["direct", "react"],
        "tasks": [{"name": "arith", "limit": 5}],
        "epochs": 2,
        "sandbox": "local",
        "concurrency": {"episodes": 4},
    }
    base.update(kw)
    return base


def test_run_records_every_episode_with_accounting(tmp_path: Path) -> None:
    res = run_experiment(parse_experiment(_exp()), tmp_path / "r")
    df = load(tmp_path / "r")
    assert len(df) == 1 * 2 * 5 * 2 == res.manifest.planned_episodes
    assert set(df.status) == {"ok"}
    assert df.simulated.all() and (df.model_family == "sim").all()
    assert (df.flops_epoch > 0).all() and (df.prompt_tokens > 0).all()
    react = df[df.scaffold == "react"]
    assert (react.steps >= 1).all(), "react on arith uses the python tool"
    # The sandbox is acquired lazily: direct never touches it, react does.
    assert set(df[df.scaffold == "direct"].sandbox) == {"none"}
    assert set(react.sandbox) == {"local"}
    assert res.manifest.status == "finished" and res.manifest.models[0].train_flop == 1e22
    episodes = list(RunStore(tmp_path / "r").iter_episodes())
    step = next(e for e in episodes if e.steps).steps[0]
    assert step.action is not None and step.action.tool == "python" and step.duration_s > 0


def test_existing_run_needs_resume(tmp_path: Path) -> None:
    exp = parse_experiment(_exp(epochs=1))
    run_experiment(exp, tmp_path / "r")
    with pytest.raises(UserError, match="--resume"):
        run_experiment(exp, tmp_path / "r")
    again = run_experiment(exp, tmp_path / "r", resume=True)
    assert again.progress.done == 0 and again.progress.skipped == 10
    assert len(load(tmp_path / "r")) == 10


def test_episode_error_is_recorded_and_run_goes_on(tmp_path: Path) -> None:
    exp = parse_experiment(_exp(
        models=[{"id": "echo", "provider": "scripted", "outputs": ["Thought: ok\nAction: submit: w0"] * 20}],
        scaffolds=["react"],
        tasks=[{"name": "tests.runners.fixtures:EchoTask", "options": {"n": 2, "broken": True}}],
        epochs=1, baseline="react",
    ))
    run_experiment(exp, tmp_path / "r")
    df = load(tmp_path / "r").set_index("task_id")
    assert df.loc["broken", "status"] == "error"
    assert "setup exploded on purpose" in df.loc["broken", "reason"]
    assert df.loc["w0", "status"] == "ok" and df.loc["w0", "score"] == 1.0
    assert df.loc["w1", "score"] == 0.0


def test_step_limit_scores_best_so_far(tmp_path: Path) -> None:
    looping = ["Thought: look\nAction: bash: cat word.txt"] * 10
    exp = parse_experiment(_exp(
        models=[{"id": "loop", "provider": "scripted", "outputs": looping}],
        scaffolds=[{"name": "react", "params": {"max_steps": 50}}], baseline="react",
        tasks=[{"name": "tests.runners.fixtures:EchoTask", "options": {"n": 1}}],
        epochs=1, limits={"steps": 3},
    ))
    run_experiment(exp, tmp_path / "r")
    (ep,) = list(RunStore(tmp_path / "r").iter_episodes())
    assert ep.status == "limit" and "steps limit" in (ep.reason or "")
    assert len(ep.steps) == 3 and ep.steps[0].observation.strip() == "w0"
    assert ep.score is not None and ep.score.value == 0.0


def test_token_limit(tmp_path: Path) -> None:
    exp = parse_experiment(_exp(limits={"tokens": 1}, tasks=[{"name": "arith", "limit": 1}], epochs=1))
    run_experiment(exp, tmp_path / "r")
    df = load(tmp_path / "r").set_index("scaffold")
    assert df.loc["react", "status"] == "limit"
    assert "tokens limit" in df.loc["react", "reason"]


def test_scorer_is_not_called_before_submission(tmp_path: Path) -> None:
    fixtures.SCORER_CALLS.clear()
    exp = parse_experiment(_exp(
        models=[{"id": "echo", "provider": "scripted", "outputs": ["Thought: a\nAction: bash: cat word.txt", "Thought: b\nAction: submit: w0"]}],
        scaffolds=["react"], baseline="react",
        tasks=[{"name": "tests.runners.fixtures:EchoTask", "options": {"n": 1}}], epochs=1,
    ))
    run_experiment(exp, tmp_path / "r")
    (ep,) = list(RunStore(tmp_path / "r").iter_episodes())
    assert fixtures.SCORER_CALLS == ["w0"]  # exactly once, after submission
    assert ep.oracle_calls == 0 and not ep.oracle_feedback
    assert ep.score is not None and ep.score.value == 1.0


def test_root_setup_task_is_refused_on_the_local_sandbox_at_plan_time(tmp_path: Path) -> None:
    """A ctf task's setup runs as root: on the host (local sandbox) it must never run, and the
    run is refused before any episode starts (not one failed episode per task)."""
    marker = Path("/root/.ptebench/answer")
    before = marker.stat().st_mtime if marker.exists() else None
    exp = parse_experiment(_exp(scaffolds=["direct"], baseline="direct",
                                tasks=[{"name": "ctf", "ids": ["layered_encoding"]}], epochs=1))
    with pytest.raises(ConfigError, match=r"sandbox 'local': layered_encoding/main: .*needs the docker sandbox"):
        run_experiment(exp, tmp_path / "r")
    assert not (tmp_path / "r" / "episodes.jsonl").exists()
    after = marker.stat().st_mtime if marker.exists() else None
    assert before == after, "setup must not have touched the host"
