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
closed form. Their P_S,i(x_m) is measured instead by playing the scaffold against the sim
(``ptebench.results.truth_sim``: ``reps`` seeded episodes per task, cached), and the truth
carries its Monte-Carlo interval (``true_lo``, ``true_hi``: the baseline's closed form
inverted at the mean ± 1.96 binomial standard errors). The baseline needs a closed form.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from ptebench.results.table import LoadedTable

MC_Z = 1.96
"""The truth's Monte-Carlo interval: mean success ± this many standard errors (95%)."""

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


def closed_form(name: str, params: dict[str, Any], instances: list[Any], alpha: float = 1.0,
                c0: float = 22.0) -> tuple[Callable[[float], np.ndarray] | None, str]:
    """Scaffold ``name``'s per-task success law over ``instances`` (TaskInstances) as a
    function of log10 C, or (None, why) when it has no closed form."""
    refs = [{"difficulty": float(i.reference.difficulty),
             "action_difficulty": float(i.reference.action_difficulty),
             "steps": list(i.reference.steps), "actions": list(i.reference.actions)}
            for i in instances]
    return _scaffold_law(name, params, _Law(refs, alpha, c0))


def attach_truth(rows: pd.DataFrame, loaded: LoadedTable, opts: Any) -> pd.DataFrame:
    """Add ``true_ceg``, ``true_lo``, ``true_hi``, ``true_method`` and ``true_note`` to the
    sim rows (other rows: NaN and ''). ``opts.truth_reps`` episodes per task for scaffolds
    without a closed form (0: closed forms only)."""
    out = rows.copy()
    for c in ("true_ceg", "true_lo", "true_hi"):
        out[c] = math.nan
    out["true_method"] = ""
    out["true_note"] = ""
    sim_rows = out["simulated"].astype(bool)
    if not bool(sim_rows.any()):
        return out
    try:
        ctx = _context(loaded)
    except Exception as e:  # the truth is a check beside the estimate, never a failure
        out.loc[sim_rows, "true_note"] = f"truth unavailable: {e}"
        return out
    if isinstance(ctx, str):
        out.loc[sim_rows, "true_note"] = ctx
        return out
    table = loaded.table
    reps = int(getattr(opts, "truth_reps", 0))
    if reps > 0:
        from ptebench.results import truth_sim

        # every simulation job first, spread over processes; the rows then read the memo
        with contextlib.suppress(Exception):  # a failure shows per row, below
            truth_sim.simulate_cells(ctx.config, _cells(out.loc[sim_rows], table, ctx,
                                                        str(opts.baseline)), reps)
    for i, r in out.loc[sim_rows].iterrows():
        t = _truth_row(r, table, ctx, str(opts.baseline), reps)
        out.at[i, "true_ceg"], out.at[i, "true_lo"], out.at[i, "true_hi"] = t.value, t.lo, t.hi
        out.at[i, "true_method"] = t.method
        out.at[i, "true_note"] = t.note
    return out


@dataclass
class Truth:
    """A true CEG: value and Monte-Carlo interval (equal to the value for a closed form)."""

    value: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    method: str = ""
    note: str = ""


@dataclass
class _Ctx:
    config: dict[str, Any]
    """The experiment's resolved config (run.json)."""
    exp: Any
    planned: dict[str, Any]
    """Task family name → PlannedTask."""
    refs: dict[str, dict[str, Any]]
    scaffolds: dict[str, tuple[str, dict[str, Any]]]
    laws: dict[str, tuple[float, float]]


def _context(loaded: LoadedTable) -> str | _Ctx:
    if loaded.manifest is None:
        return "truth needs the run directory (its tasks' hidden references)"
    from ptebench.models import sim
    from ptebench.runners.config import parse_experiment
    from ptebench.runners.plan import open_tasks, resolved_params

    config = dict(loaded.manifest.get("resolved") or loaded.manifest["config"])
    exp = parse_experiment(dict(config))
    refs: dict[str, dict[str, Any]] = {}
    planned: dict[str, Any] = {}
    for pt in open_tasks(exp):
        planned[pt.name] = pt
        for inst in pt.instances.values():
            ref = inst.reference
            if ref.answer is None:
                continue
            refs[f"{inst.family}/{inst.id}"] = {
                "difficulty": float(ref.difficulty), "action_difficulty": float(ref.action_difficulty),
                "steps": list(ref.steps), "actions": list(ref.actions),
                "planned": pt.name, "id": inst.id}
    scaffolds = {str(e.label or e.name): (e.name, resolved_params(e)) for e in exp.scaffold_entries()}
    laws: dict[str, tuple[float, float]] = {}
    for mc in exp.model_configs():
        o = mc.options or {}
        a, c = o.get("alpha", sim.ALPHA), o.get("c0", sim.C0)
        laws[mc.id] = (float(a) if isinstance(a, int | float) else sim.ALPHA,
                       float(c) if isinstance(c, int | float) else sim.C0)
    return _Ctx(config, exp, planned, refs, scaffolds, laws)


def invert(f_base: Callable[[float], np.ndarray], target: float, x: float) -> float:
    """log10 C' − log10 C: where the baseline's mean law reaches ``target`` (±inf when it
    never does within ±15 OOM: below its floor → −inf, above its ceiling → +inf)."""
    def gap(xx: float) -> float:
        return float(f_base(xx).mean()) - target

    lo, hi = x - 15.0, x + 15.0
    if gap(lo) > 0:
        return -math.inf
    if gap(hi) < 0:
        return math.inf
    if abs(gap(x)) < 1e-12:
        return 0.0
    return float(optimize.brentq(gap, lo, hi, xtol=1e-10)) - x  # type: ignore[arg-type]


def _row_tasks(r: pd.Series, table: pd.DataFrame, ctx: _Ctx, baseline: str
               ) -> list[str] | Truth:
    """The tasks (table ids) a row's enhanced cell and the baseline share, or why none."""
    family, model, scaffold = str(r["family"]), str(r["model"]), str(r["scaffold"])
    if scaffold not in ctx.scaffolds or baseline not in ctx.scaffolds:
        return Truth(note="scaffold not in the run's config")
    t = table.loc[(table["family"] == family)]
    tasks_enh = set(t.loc[(t["model"] == model) & (t["scaffold"] == scaffold), "task_id"])
    tasks_base = set(t.loc[t["scaffold"] == baseline, "task_id"])
    tasks = sorted(tasks_enh & tasks_base)
    missing = [k for k in tasks if k not in ctx.refs]
    if not tasks or missing:
        return Truth(note=f"no sim reference for task {missing[0]!r}" if missing else "no tasks")
    return tasks


def _by_family(tasks: list[str], ctx: _Ctx) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k in tasks:
        out.setdefault(str(ctx.refs[k]["planned"]), []).append(str(ctx.refs[k]["id"]))
    return dict(sorted(out.items()))


def _cells(rows: pd.DataFrame, table: pd.DataFrame, ctx: _Ctx, baseline: str
           ) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """The simulation jobs the rows need: scaffolds with no closed form, over their tasks."""
    cells: list[tuple[str, str, str, tuple[str, ...]]] = []
    for _, r in rows.iterrows():
        tasks = _row_tasks(r, table, ctx, baseline)
        if isinstance(tasks, Truth):
            continue
        name, params = ctx.scaffolds[str(r["scaffold"])]
        if _scaffold_law(name, params, _Law([ctx.refs[k] for k in tasks], 1.0, 0.0))[0] is None:
            cells += [(fam, str(r["model"]), str(r["scaffold"]), tuple(ids))
                      for fam, ids in _by_family(tasks, ctx).items()]
    return cells


def _truth_row(r: pd.Series, table: pd.DataFrame, ctx: _Ctx, baseline: str,
               reps: int) -> Truth:
    model, scaffold = str(r["model"]), str(r["scaffold"])
    tasks = _row_tasks(r, table, ctx, baseline)
    if isinstance(tasks, Truth):
        return tasks
    alpha, c0 = ctx.laws.get(model, (1.0, 22.0))
    law = _Law([ctx.refs[k] for k in tasks], alpha, c0)
    f_s, why_s = _scaffold_law(*ctx.scaffolds[scaffold], law)
    f_b, why_b = _scaffold_law(*ctx.scaffolds[baseline], law)
    if f_b is None:
        return Truth(note=f"baseline {why_b}: the truth needs a closed-form baseline")
    x = math.log10(float(r["train_flop"]))
    if f_s is not None:
        d = invert(f_b, float(f_s(x).mean()), x)
        if math.isinf(d):
            return Truth(note="the baseline never reaches this score")
        v = 10 ** d
        return Truth(v, v, v, "closed form")
    if reps <= 0:
        return Truth(note=why_s + " (simulation off: --truth-reps 0)")
    try:
        t = true_ceg_simulated(ctx.exp, [(ctx.planned[f], ids)
                                         for f, ids in _by_family(tasks, ctx).items()],
                               model, scaffold, f_b, x, reps)
    except Exception as e:  # a check beside the estimate, never a failure
        return Truth(note=f"{why_s}; simulation failed: {type(e).__name__}: {e}")
    return t


def true_ceg_simulated(exp: Any, tasks: list[tuple[Any, list[str]]], model: str, scaffold: str,
                       f_base: Callable[[float], np.ndarray], x: float, reps: int,
                       seed: int = 0, use_cache: bool = True) -> Truth:
    """The true CEG of scaffold label ``scaffold`` on ``model`` (log10 C = ``x``) over
    ``tasks`` ((PlannedTask, instance ids) pairs): the scaffold's success simulated with
    ``reps`` episodes per task, inverted against the baseline's mean law ``f_base`` (a
    closed form over the same tasks, in the same order), with its 95% Monte-Carlo interval."""
    from ptebench.results import truth_sim

    outcomes: list[truth_sim.Outcome] = []
    for planned, ids in tasks:
        res = truth_sim.simulate(exp, planned, model, scaffold, ids, reps, seed=seed,
                                 use_cache=use_cache)
        outcomes += [res[i] for i in ids]
    errors = sum(o.errors for o in outcomes)
    mean, se = truth_sim.mc_mean_se(outcomes)
    if math.isnan(mean):
        return Truth(note="every simulated episode failed")
    d = invert(f_base, mean, x)
    d_lo = invert(f_base, max(mean - MC_Z * se, 0.0), x)
    d_hi = invert(f_base, min(mean + MC_Z * se, 1.0), x)
    method = f"simulated: {reps} episodes x {len(outcomes)} tasks"
    note = f"{errors} simulated episode(s) errored, left out" if errors else ""
    lo = 0.0 if d_lo == -math.inf else 10**d_lo
    hi = math.inf if d_hi == math.inf else 10**d_hi
    if math.isinf(d):
        return Truth(math.nan, lo, hi, method,
                     "the baseline never reaches this score" + (f"; {note}" if note else ""))
    return Truth(10**d, lo, hi, method, note)
