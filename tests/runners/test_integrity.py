"""Runs that never mislead: failure classes, the exit status, resume against the manifest,
dollar budgets, the progress line and the quick overrides — on the real runner and CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ptebench.errors import ConfigError
from ptebench.records import RunManifest
from ptebench.results.store import RunStore, load
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment

REPO = Path(__file__).resolve().parents[2]
ECHO = "tests.runners.fixtures:EchoTask"


def _exp(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "t", "models": ["sim/1e22"], "scaffolds": ["direct"],
                            "tasks": [{"name": "arith", "limit": 3}], "sandbox": "local",
                            "concurrency": {"episodes": 1}}
    base.update(kw)
    return base


def _cli(tmp_path: Path, cfg: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"exp{len(list(tmp_path.glob('exp*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if k != "PTEBENCH_HISTORY"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "ptebench.cli", "run", str(path), *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def _only(out: Path) -> Any:
    (ep,) = list(RunStore(out).iter_episodes())
    return ep


# --- failure classes ------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "cls", "reason"), [
    ("model", "model", "ran out of outputs"),
    ("sandbox", "sandbox", "setup exploded on purpose"),
    ("task", "task", "scoring failed: ZeroDivisionError"),
    ("harness", "harness", "the scaffold crashed on purpose"),
])
def test_an_errored_episode_records_its_failure_class(tmp_path: Path, case: str, cls: str,
                                                      reason: str) -> None:
    model: dict[str, Any] = {"id": "s", "provider": "scripted", "outputs": ["Answer: w0"] * 4}
    scaffold, task = "direct", {"name": ECHO, "options": {"n": 1}}
    if case == "model":
        model["outputs"] = []
    elif case == "sandbox":
        task = {"name": ECHO, "options": {"n": 0, "broken": True}}
    elif case == "task":
        task = {"name": "tests.runners.fixtures:CrashingScorerTask", "options": {"n": 1}}
    else:
        scaffold = "tests.runners.fixtures:CrashingScaffold"
    exp = parse_experiment(_exp(models=[model], scaffolds=[scaffold], baseline=scaffold,
                                tasks=[task]))
    run_experiment(exp, tmp_path / "r")
    ep = _only(tmp_path / "r")
    assert ep.status == "error" and ep.failure == cls and reason in (ep.reason or "")
    assert load(tmp_path / "r")["failure"].tolist() == [cls]


def test_an_ok_episode_has_no_failure_class(tmp_path: Path) -> None:
    run_experiment(parse_experiment(_exp(tasks=[{"name": "arith", "limit": 1}])), tmp_path / "r")
    ep = _only(tmp_path / "r")
    assert ep.status in ("ok", "limit") and ep.failure is None


# --- the exit status ------------------------------------------------------------------------

def test_run_exits_1_on_an_infrastructure_error_with_a_summary(tmp_path: Path) -> None:
    cfg = _exp(models=[{"id": "s", "provider": "scripted", "outputs": ["Answer: w0"] * 4}],
               tasks=[{"name": ECHO, "options": {"n": 1, "broken": True}}])
    r = _cli(tmp_path, cfg, "--out", str(tmp_path / "a"), "--quiet", "--no-catalog")
    assert r.returncode == 1, r.stderr
    assert "errors by class: model 0 · sandbox 1 · task 0 · harness 0" in r.stderr
    assert "1 × sandbox: RuntimeError: setup exploded on purpose" in r.stderr
    assert "run failed: 1 of 2 episode(s) failed on infrastructure" in r.stderr
    tolerant = _cli(tmp_path, cfg, "--out", str(tmp_path / "b"), "--quiet", "--no-catalog",
                    "--max-error-rate", "0.5")
    assert tolerant.returncode == 0, tolerant.stderr
    strict = _cli(tmp_path, cfg, "--out", str(tmp_path / "c"), "--quiet", "--no-catalog",
                  "--max-error-rate", "0.1")
    assert strict.returncode == 1 and "error rate 50.0% (1 of 2) exceeds" in strict.stderr


def test_run_exits_1_when_every_episode_errored(tmp_path: Path) -> None:
    cfg = _exp(models=[{"id": "s", "provider": "scripted", "outputs": []}],
               tasks=[{"name": "arith", "limit": 2}])
    r = _cli(tmp_path, cfg, "--out", str(tmp_path / "a"), "--quiet", "--no-catalog")
    assert r.returncode == 1 and "every episode errored (2 of 2)" in r.stderr, r.stderr
    assert "model 2" in r.stderr


# --- resume against the manifest ------------------------------------------------------------

def test_resume_refuses_a_changed_config_naming_the_fields(tmp_path: Path) -> None:
    out = tmp_path / "r"
    run_experiment(parse_experiment(_exp()), out)
    changed = parse_experiment(_exp(epochs=2, limits={"steps": 3}))
    with pytest.raises(ConfigError, match=r"differs from the run's manifest in: epochs, limits\.steps"):
        run_experiment(changed, out, resume=True)
    assert len(list(RunStore(out).iter_episodes())) == 3, "nothing was added"
    # what cannot change a result (concurrency) is no reason to refuse
    run_experiment(parse_experiment(_exp(concurrency={"episodes": 2})), out, resume=True)


def test_resume_extend_records_both_configs(tmp_path: Path) -> None:
    out = tmp_path / "r"
    run_experiment(parse_experiment(_exp()), out)
    more = _exp(epochs=2, models=["sim/1e22", "sim/1e20"])
    run_experiment(parse_experiment(more), out, resume=True, raw=more, extend=True)
    man = RunManifest.model_validate_json((out / "run.json").read_text())
    assert man.resolved["epochs"] == 1 and man.resolved["models"] == ["sim/1e22"]
    (ext,) = man.extensions
    assert ext["changed"] == ["epochs", "models[1]"]
    assert ext["resolved"]["epochs"] == 2 and ext["config"] == more  # type: ignore[index]
    assert len(list(RunStore(out).iter_episodes())) == 3 * 2 * 2 and man.sessions == 2
    # the extended config is now the one to resume with, unchanged
    run_experiment(parse_experiment(more), out, resume=True)


def test_extend_refuses_a_label_whose_params_changed(tmp_path: Path) -> None:
    out = tmp_path / "r"
    first = _exp(scaffolds=["direct", {"name": "react", "params": {"max_steps": 7}}])
    run_experiment(parse_experiment(first), out)
    second = _exp(scaffolds=["direct", {"name": "react", "params": {"max_steps": 1}}])
    with pytest.raises(ConfigError, match=r"scaffold 'react' ran with params .*pool under one label"):
        run_experiment(parse_experiment(second), out, resume=True, extend=True)
    assert len(list(RunStore(out).iter_episodes())) == 6


# --- dollar budgets -------------------------------------------------------------------------

def test_dollar_budgets_on_unpriced_models_are_refused_at_plan_time(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"limits\.cost_usd: model 'sim/1e22' has no prices"):
        run_experiment(parse_experiment(_exp(limits={"cost_usd": 0.5})), tmp_path / "a")
    with pytest.raises(ConfigError, match=r"spend_cap_usd: model 'sim/1e22' has no prices"):
        run_experiment(parse_experiment(_exp(spend_cap_usd=1.0)), tmp_path / "b")
    assert not (tmp_path / "a" / "episodes.jsonl").exists()


def test_spend_cap_stops_scheduling_and_says_so(tmp_path: Path) -> None:
    priced = {"id": "s", "provider": "scripted", "card": "gpt-4o-mini",
              "outputs": ["Answer: 1"] * 20}
    cfg = _exp(models=[priced], tasks=[{"name": "arith", "limit": 5}], spend_cap_usd=1e-9)
    r = _cli(tmp_path, cfg, "--out", str(tmp_path / "a"), "--quiet", "--no-catalog")
    assert r.returncode == 1, r.stderr
    assert "stopped: spend cap reached" in r.stderr and "4 episode(s) not started" in r.stderr
    eps = list(RunStore(tmp_path / "a").iter_episodes())
    assert len(eps) == 1 and (eps[0].totals.cost_usd or 0) > 1e-9
    man = json.loads((tmp_path / "a" / "run.json").read_text())
    assert man["status"] == "interrupted" and "spend cap" in man["stop_reason"]
    # the cap is the run's, not a session's: resuming under it starts nothing more
    again = _cli(tmp_path, cfg, "--out", str(tmp_path / "a"), "--quiet", "--no-catalog",
                 "--resume")
    assert again.returncode == 1 and "4 episode(s) not started" in again.stderr, again.stderr
    assert len(list(RunStore(tmp_path / "a").iter_episodes())) == 1


# --- progress, overrides --------------------------------------------------------------------

def test_progress_lines_when_not_a_terminal_and_na_for_unknown_flops(tmp_path: Path) -> None:
    unpriced = {"id": "s", "provider": "scripted", "outputs": ["Answer: 1"] * 3}
    r = _cli(tmp_path, _exp(models=[unpriced]), "--out", str(tmp_path / "a"), "--no-catalog",
             "--progress-every", "0")
    lines = [x for x in r.stderr.splitlines() if x.startswith("progress: ")]
    assert [x.split(" · ")[0] for x in lines] == ["progress: 1/3", "progress: 2/3", "progress: 3/3"]
    assert all("n/a FLOP" in x for x in lines), lines
    sim = _cli(tmp_path, _exp(), "--out", str(tmp_path / "b"), "--no-catalog",
               "--progress-every", "0")
    last = [x for x in sim.stderr.splitlines() if x.startswith("progress: 3/3")]
    assert last and re.search(r"\d FLOP", last[0]) and "n/a" not in last[0], sim.stderr


def test_quick_overrides_shrink_a_run(tmp_path: Path) -> None:
    cfg = _exp(models=["sim/1e20", "sim/1e22"], scaffolds=["direct", "cot"],
               tasks=[{"name": "arith", "limit": 10}], epochs=3)
    r = _cli(tmp_path, cfg, "--out", str(tmp_path / "a"), "--quiet", "--no-catalog",
             "--limit", "2", "--models", "sim/1e22", "--scaffolds", "direct", "--epochs", "1")
    assert r.returncode == 0, r.stderr
    df = load(tmp_path / "a")
    assert len(df) == 2 and set(df["model"]) == {"sim/1e22"} and set(df["scaffold"]) == {"direct"}
    man = json.loads((tmp_path / "a" / "run.json").read_text())
    assert man["resolved"]["epochs"] == 1 and man["resolved"]["tasks"][0]["limit"] == 2
    bad = _cli(tmp_path, cfg, "--out", str(tmp_path / "b"), "--models", "gpt-9")
    assert bad.returncode == 2 and "--models: ['gpt-9'] not in the experiment" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_catalog_is_never_written_beside_the_run_folder(tmp_path: Path) -> None:
    shared = tmp_path / "shared-tmp"
    r = _cli(tmp_path, _exp(), "--out", str(shared / "run"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in shared.iterdir()) == ["run"]
    assert (tmp_path / "runs" / "history.sqlite").exists()
    chosen = _cli(tmp_path, _exp(), "--out", str(shared / "run2"), "--quiet",
                  "--catalog", str(tmp_path / "cat.sqlite"))
    assert chosen.returncode == 0 and (tmp_path / "cat.sqlite").exists()
