"""The TRUE CEG of simulated rows, from the sim family's law in closed form (where one exists).

The sim law (ptebench.models.sim): one decision of difficulty d succeeds with
p(C, d) = σ(α·(log10 C − c0) − d). A task instance's hidden reference gives the final
answer's difficulty d_answer, the action/step difficulty d_action, its reference steps and
actions. Closed forms per scaffold (one ``answer`` call, scored by exact match):

* ``direct``: P = p(C, d_answer).
* ``cot``: the model writes every reference step, each right with p(C, d_action). When the
  task has reference *actions* (arith: ``python: print(a*b)``) the decomposition rule looks
  for those, which a chain of thought never writes, so P = p(C, d_answer) and CEG = 1. With
  steps only, all steps right make the answer easy: P = pₐᵏ·pₐ + (1 − pₐᵏ)·p(C, d_answer).
* ``best_of_n`` with the ``oracle`` selector over a direct/cot inner scaffold:
  1 − (1 − P_inner)ⁿ.

The truth on a task set is the population curve of those very tasks: B(x) = mean_i P_base,i(x)
is inverted at mean_i P_S,i(x_m), so C'/C is exact for the tasks run (no fit, no sampling).
Multi-call agents (react, reflexion, tot, lats, majority, best_of_n with a model selector)
have retries, votes and self-judgement whose success depends on the whole transcript: no
closed form, and the row says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from ptebench.results.table import LoadedTable

NO_FORM = {
    "react": "react: multi-step agent with retries, no closed form",
    "reflexion": "reflexion: retries after self-reflection, no closed form",
    "tot": "tot: search with model-judged states, no closed form",
    "lats": "lats: tree search with model values, no closed form",
    "majority": "majority: vote over perturbed answers, no closed form",
    "best_of_n": "best_of_n: the model's own selector, no closed form (oracle selector only)",
}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class _Law:
    """Per-task success of a scaffold as a function of log10 C, vectorised over tasks."""

    def __init__(self, refs: list[dict[str, Any]], alpha: float, c0: float) -> None:
        self.alpha, self.c0 = alpha, c0
        self.d_ans = np.array([r["difficulty"] for r in refs], float)
        self.d_act = np.array([r["action_difficulty"] for r in refs], float)
        self.k = np.array([len(r["steps"]) for r in refs], float)
        self.steps_only = np.array([bool(r["steps"]) and not r["actions"] for r in refs])

    def p(self, x: float, d: np.ndarray) -> np.ndarray:
        return _sigmoid(self.alpha * (x - self.c0) - d)

    def direct(self, x: float) -> np.ndarray:
        return self.p(x, self.d_ans)

    def cot(self, x: float) -> np.ndarray:
        pa, pd_ = self.p(x, self.d_act), self.p(x, self.d_ans)
        chain = pa**self.k
        return np.where(self.steps_only, chain * pa + (1 - chain) * pd_, pd_)


def _scaffold_law(name: str, params: dict[str, Any], law: _Law
                  ) -> tuple[Callable[[float], np.ndarray] | None, str]:
    if name == "direct":
        return law.direct, ""
    if name == "cot":
        return law.cot, ""
    if name == "best_of_n" and params.get("selector") == "oracle":
        inner = params.get("inner") or {}
        inner_name = inner.get("name", "cot") if isinstance(inner, dict) else str(inner)
        f, why = _scaffold_law(str(inner_name), {}, law)
        if f is None:
            return None, why
        n = int(params.get("n", 5))
        g = f
        return (lambda x: 1 - (1 - g(x)) ** n), ""
    return None, NO_FORM.get(name, f"{name}: no closed form")


def attach_truth(rows: pd.DataFrame, loaded: LoadedTable, opts: Any) -> pd.DataFrame:
    """Add ``true_ceg`` and ``true_note`` to the sim rows (other rows: NaN and '')."""
    out = rows.copy()
    out["true_ceg"] = math.nan
    out["true_note"] = ""
    sim_rows = out["simulated"].astype(bool)
    if not sim_rows.any():
        return out
    try:
        ctx = _context(loaded)
    except Exception as e:  # the truth is a check beside the estimate, never a failure
        out.loc[sim_rows, "true_note"] = f"truth unavailable: {e}"
        return out
    if isinstance(ctx, str):
        out.loc[sim_rows, "true_note"] = ctx
        return out
    refs, scaffolds, laws = ctx
    table = loaded.table
    for i, r in out.loc[sim_rows].iterrows():
        value, note = _truth_row(r, table, refs, scaffolds, laws, opts.baseline)
        out.at[i, "true_ceg"] = value
        out.at[i, "true_note"] = note
    return out


def _context(loaded: LoadedTable) -> str | tuple[dict[str, dict[str, Any]],
                                                 dict[str, tuple[str, dict[str, Any]]],
                                                 dict[str, tuple[float, float]]]:
    if loaded.manifest is None:
        return "truth needs the run directory (its tasks' hidden references)"
    from ptebench.models import sim
    from ptebench.runners.config import parse_experiment
    from ptebench.runners.plan import open_tasks, resolved_params

    exp = parse_experiment(dict(loaded.manifest.get("resolved") or loaded.manifest["config"]))
    refs: dict[str, dict[str, Any]] = {}
    for pt in open_tasks(exp):
        for inst in pt.instances.values():
            ref = inst.reference
            if ref is None or ref.answer is None:
                continue
            refs[f"{inst.family}/{inst.id}"] = {
                "difficulty": float(ref.difficulty), "action_difficulty": float(ref.action_difficulty),
                "steps": list(ref.steps), "actions": list(ref.actions)}
    scaffolds = {str(e.label): (e.name, resolved_params(e)) for e in exp.scaffold_entries()}
    laws: dict[str, tuple[float, float]] = {}
    for mc in exp.model_configs():
        o = mc.options or {}
        a, c = o.get("alpha", sim.ALPHA), o.get("c0", sim.C0)
        laws[mc.id] = (float(a) if isinstance(a, int | float) else sim.ALPHA,
                       float(c) if isinstance(c, int | float) else sim.C0)
    return refs, scaffolds, laws


def _truth_row(r: pd.Series, table: pd.DataFrame, refs: dict[str, dict[str, Any]],
               scaffolds: dict[str, tuple[str, dict[str, Any]]],
               laws: dict[str, tuple[float, float]], baseline: str) -> tuple[float, str]:
    family, model, scaffold = str(r["family"]), str(r["model"]), str(r["scaffold"])
    if scaffold not in scaffolds or baseline not in scaffolds:
        return math.nan, "scaffold not in the run's config"
    t = table.loc[(table["family"] == family)]
    tasks_enh = set(t.loc[(t["model"] == model) & (t["scaffold"] == scaffold), "task_id"])
    tasks_base = set(t.loc[t["scaffold"] == baseline, "task_id"])
    tasks = sorted(tasks_enh & tasks_base)
    missing = [k for k in tasks if k not in refs]
    if not tasks or missing:
        return math.nan, f"no sim reference for task {missing[0]!r}" if missing else "no tasks"
    alpha, c0 = laws.get(model, (1.0, 22.0))
    law = _Law([refs[k] for k in tasks], alpha, c0)
    f_s, why_s = _scaffold_law(*scaffolds[scaffold], law)
    f_b, why_b = _scaffold_law(*scaffolds[baseline], law)
    if f_s is None or f_b is None:
        return math.nan, why_s or why_b
    x = math.log10(float(r["train_flop"]))
    target = float(f_s(x).mean())
    fb = f_b

    def gap(xx: float) -> float:
        return float(fb(xx).mean()) - target

    lo, hi = x - 15.0, x + 15.0
    if gap(lo) > 0 or gap(hi) < 0:
        return math.nan, "the baseline never reaches this score"
    if abs(gap(x)) < 1e-12:
        return 1.0, ""
    root = float(optimize.brentq(gap, lo, hi, xtol=1e-10))  # type: ignore[arg-type]
    return float(10 ** (root - x)), ""
