"""The simulated truth (ptebench.results.truth_sim): the true CEG of multi-call scaffolds by
playing them against the sim, checked against closed forms, the local sandbox, and the
estimator's coverage on planted sim runs."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ptebench.results import ceg, truth, truth_sim
from ptebench.runners.config import parse_experiment
from ptebench.runners.plan import PlannedTask, open_tasks


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTEBENCH_TRUTH_CACHE", str(tmp_path / "truth-cache"))


def _exp(scaffolds: list[Any], limit: int, models: list[str] | None = None) -> Any:
    return parse_experiment({
        "name": "truth", "models": models or ["sim/1e21", "sim/1e23"], "scaffolds": scaffolds,
        "tasks": [{"name": "arith", "limit": limit}], "epochs": 1, "seed": 0,
        "baseline": "direct", "sandbox": "local",
        "limits": {"steps": 30, "tokens": 100000, "wall_s": 600}})


def _planned(exp: Any) -> PlannedTask:
    (pt,) = open_tasks(exp)
    return pt


@pytest.mark.parametrize("program", [
    "print(123 * 45)", "print(123 * 48)", "print(-2 * 9)", "print(7 + 80)", "print(10 / 4)",
    "print(2 * 3)\nprint(4 + 5)", "print(99999 * 99999)"])
def test_arithmetic_prints_are_answered_as_python_prints_them(program: str) -> None:
    real = subprocess.run([sys.executable, "-"], input=program, capture_output=True, text=True,
                          check=True).stdout
    assert truth_sim.print_arithmetic(program) == real


@pytest.mark.parametrize("program", ["import os\nprint(os.getcwd())", "print(1 / 0)",
                                     "print(x)", "print(1 *", "x = 3"])
def test_anything_else_is_not_emulated(program: str) -> None:
    assert truth_sim.print_arithmetic(program) is None


def test_simulated_truth_of_closed_form_scaffolds_matches_the_closed_form() -> None:
    """direct and best_of_n with the oracle selector have closed forms under the sim law; the
    simulation path (real episodes) must agree with them within its Monte-Carlo error, per
    size and as a true CEG."""
    scaffolds: list[Any] = [
        "direct",
        {"name": "best_of_n", "label": "bon3",
         "params": {"n": 3, "selector": "oracle", "oracle_feedback": True,
                    "inner": {"name": "direct"}}}]
    exp = _exp(scaffolds, 12)
    pt = _planned(exp)
    ids = list(pt.instances)
    insts = [pt.instances[i] for i in ids]
    f_direct, _ = truth.closed_form("direct", {}, insts)
    for label, name, params in (("direct", "direct", {}),
                                ("bon3", "best_of_n", {"n": 3, "selector": "oracle",
                                                       "inner": {"name": "direct"}})):
        f, why = truth.closed_form(name, params, insts)
        assert f is not None and f_direct is not None, why
        for model in ("sim/1e21", "sim/1e23"):
            x = math.log10(float(model.removeprefix("sim/")))
            out = truth_sim.simulate(exp, pt, model, label, ids, reps=60, seed=3)
            mean, se = truth_sim.mc_mean_se([out[i] for i in ids])
            exact = float(f(x).mean())
            exact_se = math.sqrt(float((f(x) * (1 - f(x))).sum()) / 60) / len(ids)
            print(label, model, "simulated", round(mean, 4), "±", round(se, 4),
                  "closed form", round(exact, 4))
            assert abs(mean - exact) <= 4 * exact_se + 1e-9, (label, model, mean, exact)
            t = truth.true_ceg_simulated(exp, [(pt, ids)], model, label, f_direct, x, 60, seed=3)
            closed = 10 ** truth.invert(f_direct, exact, x)
            assert t.lo <= closed <= t.hi, (label, model, t, closed)


def test_truth_sandbox_gives_the_local_sandboxs_law_for_react() -> None:
    """The in-process stand-in (arithmetic prints answered exactly, ls -la fixed) against a
    real local sandbox: react's success on arith agrees within Monte-Carlo error."""
    exp = _exp(["direct", {"name": "react", "params": {"max_steps": 4}}], 8, ["sim/1e22"])
    pt = _planned(exp)
    ids = list(pt.instances)
    stand_in = truth_sim.simulate(exp, pt, "sim/1e22", "react", ids, 30, seed=5, use_cache=False)
    local = truth_sim.simulate(exp, pt, "sim/1e22", "react", ids, 30, seed=5, use_cache=False,
                               local_sandbox=True)
    m1, s1 = truth_sim.mc_mean_se([stand_in[i] for i in ids])
    m2, s2 = truth_sim.mc_mean_se([local[i] for i in ids])
    print("react 1e22: stand-in", round(m1, 3), "local sandbox", round(m2, 3), "se", round(s1, 3))
    assert sum(o.errors for o in local.values()) == 0
    assert abs(m1 - m2) <= 4 * math.hypot(s1, s2)


def test_truth_is_deterministic_and_cached(tmp_path: Path) -> None:
    exp = _exp(["direct", {"name": "react", "params": {"max_steps": 4}}], 3, ["sim/1e22"])
    pt = _planned(exp)
    ids = list(pt.instances)
    a = truth_sim.simulate(exp, pt, "sim/1e22", "react", ids, 10, seed=1, use_cache=False)
    b = truth_sim.simulate(exp, pt, "sim/1e22", "react", ids, 10, seed=1)  # fills the cache
    files = list(truth_sim.cache_dir().rglob("*.json"))
    assert a == b and len(files) == len(ids)
    c = truth_sim.simulate(exp, pt, "sim/1e22", "react", ids, 10, seed=1)
    assert c == a
    other = truth_sim.simulate(exp, pt, "sim/1e22", "react", ids, 10, seed=2)
    assert len(list(truth_sim.cache_dir().rglob("*.json"))) == 2 * len(ids)
    assert other != a or all(o.wins in (0, o.n) for o in a.values())


def _table(outcomes: dict[str, dict[str, truth_sim.Outcome]], scaffold: str,
           epochs: int) -> list[dict[str, Any]]:
    rows = []
    for model, by_task in outcomes.items():
        for task, o in by_task.items():
            assert o.n == epochs and o.errors == 0
            for e in range(epochs):
                rows.append({"family": "sim", "model": model,
                             "train_flop": float(model.removeprefix("sim/")),
                             "scaffold": scaffold, "task_id": task, "epoch": e,
                             "score": 1.0 if e < o.wins else 0.0, "simulated": True})
    return rows


def test_estimator_covers_the_simulated_truth_of_react_on_planted_sim_runs() -> None:
    """Planted sim runs: direct and react episodes played against the sim at five sizes
    (seeds disjoint from the truth's), estimated with fit-logit; the 95% interval (or the
    printed data bound) must hold against react's simulated truth at about the stated rate."""
    models = [f"sim/{s}" for s in ("1e20", "1e21", "1e22", "1e23", "1e24")]
    exp = _exp(["direct", {"name": "react", "params": {"max_steps": 7}}], 20, models)
    pt = _planned(exp)
    ids = list(pt.instances)
    insts = [pt.instances[i] for i in ids]
    f_direct, _ = truth.closed_form("direct", {}, insts)
    assert f_direct is not None
    true = {m: truth.true_ceg_simulated(exp, [(pt, ids)], m, "react", f_direct,
                                        math.log10(float(m.removeprefix("sim/"))), 60)
            for m in models}
    reps, epochs = 10, 2
    inside = covered = bounds = violated = 0
    for r in range(reps):
        rows: list[dict[str, Any]] = []
        for label in ("direct", "react"):
            outs = {m: truth_sim.simulate(exp, pt, m, label, ids, epochs, seed=1000 + r,
                                          use_cache=False) for m in models}
            rows += _table(outs, label, epochs)
        res = ceg.estimate(pd.DataFrame(rows), ceg.CEGOptions(n_boot=300, seed=r))
        for _, row in res.rows[res.rows["row"] == "model"].iterrows():
            t = true[str(row["model"])]
            value = t.value if not math.isnan(t.value) else math.inf
            if row["bound"] == "lower":
                bounds += 1
                violated += bool(value < float(row["ceg"]))
            elif row["bound"] == "upper":
                bounds += 1
                violated += bool(value > float(row["ceg"]))
            elif np.isfinite(value):
                inside += 1
                covered += bool(float(row["ceg_lo"]) <= value <= float(row["ceg_hi"]))
    print("react truth:", {m: (round(t.value, 2), round(t.lo, 2), round(t.hi, 2))
                           for m, t in true.items()})
    print(f"coverage {covered}/{inside}, bounds violated {violated}/{bounds}")
    assert inside >= 20
    assert covered / inside >= 0.85
    assert violated <= max(1, 0.05 * bounds)
