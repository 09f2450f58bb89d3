"""Synthetic contract tables drawn from the sim family's law, with their true CEG.

The law is the one ptebench.models.sim documents: one decision of difficulty d succeeds with
p(C, d) = σ(α·(log10 C − c0) − d) (same α, c0 and sizes). Here each task is one decision with
difficulty δ_i ~ Normal(0, delta_sd); the baseline solves it with p_i, best-of-n with a perfect
selector with 1 − (1 − p_i)^n. The TRUE CEG inverts the population baseline curve
P̄(x) = E_δ[p(x, δ)] (a finite sample of tasks estimates it; the bootstrap must cover the
population value). Used by the validation tests, the scale benchmark and demos.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import optimize

from ptebench.models import sim

Arr = NDArray[np.float64]
_NODES, _RAW_WEIGHTS = np.polynomial.hermite_e.hermegauss(80)
_WEIGHTS = _RAW_WEIGHTS / _RAW_WEIGHTS.sum()  # Gauss–Hermite weights for E over N(0, 1)


def p_task(x: Arr | float, delta: Arr | float) -> Arr:
    """Per-task success of the baseline at log10 compute x (the sim law, vectorised)."""
    return 1.0 / (1.0 + np.exp(-(sim.ALPHA * (np.asarray(x) - sim.C0) - np.asarray(delta))))


def p_best_of_n(p: Arr, n: int) -> Arr:
    """Best-of-n with a perfect selector: at least one of n independent tries succeeds."""
    return 1.0 - (1.0 - p) ** n


def population_mean(x: float, n: int = 1, delta_sd: float = 1.0) -> float:
    """E_δ over δ ~ N(0, delta_sd) of the (best-of-n) success probability at log10 C = x."""
    p = p_task(x, delta_sd * _NODES)
    return float((_WEIGHTS * p_best_of_n(p, n)).sum())


def true_ceg(x: float, n: int, delta_sd: float = 1.0) -> float:
    """C'/C for best-of-n at log10 C = x: invert the population baseline curve."""
    target = population_mean(x, n, delta_sd)
    if n == 1:
        return 1.0
    def gap(xx: float) -> float:
        return population_mean(xx, 1, delta_sd) - target

    root = float(optimize.brentq(gap, x - 5, x + 15, xtol=1e-10))  # type: ignore[arg-type]
    return float(10 ** (root - x))


def sim_table(
    n_tasks: int = 200,
    epochs: int = 4,
    ns: tuple[int, ...] = (1, 4),
    sizes: tuple[float, ...] = sim.SIZES,
    delta_sd: float = 1.0,
    seed: int = 0,
    task_families: int = 1,
    flop_per_call: float = 1e12,
) -> pd.DataFrame:
    """A contract table: baseline ("direct", n = 1) and best_of_<n> scaffolds on every size.

    inference_flop is n × flop_per_call × (C / 1e20)^0.5 per episode (n calls of a model whose
    size grows as √C), so the inference-cost multiple of best_of_n is n by construction.
    """
    rng = np.random.default_rng(seed)
    delta = rng.normal(0.0, delta_sd, n_tasks)
    frames = []
    tfam = np.array([f"tf{i % task_families}" for i in range(n_tasks)])
    task_ids = np.array([f"t{i:05d}" for i in range(n_tasks)])
    for c in sizes:
        x = float(np.log10(c))
        p = p_task(x, delta)
        for n in ns:
            pn = p_best_of_n(p, n)
            wins = rng.random((epochs, n_tasks)) < pn[None, :]
            frames.append(pd.DataFrame({
                "family": "sim",
                "model": f"sim/{sim.size_name(c)}",
                "train_flop": c,
                "scaffold": "direct" if n == 1 else f"best_of_{n}",
                "task_id": np.tile(task_ids, epochs),
                "task_family": np.tile(tfam, epochs),
                "epoch": np.repeat(np.arange(epochs), n_tasks),
                "score": wins.ravel().astype(float),
                "inference_flop": n * flop_per_call * (c / 1e20) ** 0.5,
                "simulated": True,
            }))
    return pd.concat(frames, ignore_index=True)


SHIFTS: dict[str, float] = {"shift_-0.5": -0.5, "shift_+0.5": 0.5, "shift_+1.5": 1.5}
"""Planted enhancements that act as a compute multiplier: the model scores like the law at
log10 C + g (true CEG 10^g before the size's own deviation)."""


def planted_table(
    seed: int,
    n_tasks: int = 100,
    epochs: int = 2,
    size_sd: float = 0.0,
    sizes: tuple[float, ...] = sim.SIZES,
    delta_sd: float = 1.0,
    best_of: tuple[int, ...] = (4,),
) -> tuple[pd.DataFrame, dict[tuple[str, str], float]]:
    """A planted family for coverage studies, and the true CEG of every enhanced cell.

    Each size's effective log10 C deviates from the law by ε_m ~ Normal(0, size_sd) (real
    families do not sit exactly on a curve), shared by every scaffold on that model. The
    baseline ("direct") of model m scores the law at x_m + ε_m; ``shift_g`` at x_m + ε_m + g;
    ``best_of_n`` is n perfect-selector tries at x_m + ε_m. The truth inverts the law's
    population curve at the enhanced cell's expected score: log10 CEG = x' − x_m (for a shift,
    exactly ε_m + g), the nominal C_m being the model's stated compute.

    Returns:
        (contract table, {(scaffold, model): true CEG})
    """
    rng = np.random.default_rng(seed)
    delta = rng.normal(0.0, delta_sd, n_tasks)
    eps = rng.normal(0.0, size_sd, len(sizes)) if size_sd > 0 else np.zeros(len(sizes))
    task_ids = np.array([f"t{i:05d}" for i in range(n_tasks)])
    frames = []
    truth: dict[tuple[str, str], float] = {}
    for c, e in zip(sizes, eps, strict=True):
        x = float(np.log10(c))
        model = f"sim/{sim.size_name(c)}"
        cells: dict[str, tuple[Arr, float]] = {"direct": (p_task(x + e, delta), x + e)}
        for name, g in SHIFTS.items():
            cells[name] = (p_task(x + e + g, delta), x + e + g)
        for n in best_of:
            pn = p_best_of_n(p_task(x + e, delta), n)
            target = population_mean(x + e, n, delta_sd)

            def gap(xx: float, target: float = target) -> float:
                return population_mean(xx, 1, delta_sd) - target

            root = float(optimize.brentq(gap, x - 10, x + 15, xtol=1e-10))  # type: ignore[arg-type]
            cells[f"best_of_{n}"] = (pn, root)
        for scaffold, (p, x_equiv) in cells.items():
            wins = rng.random((epochs, n_tasks)) < p[None, :]
            frames.append(pd.DataFrame({
                "family": "planted", "model": model, "train_flop": c, "scaffold": scaffold,
                "task_id": np.tile(task_ids, epochs),
                "epoch": np.repeat(np.arange(epochs), n_tasks),
                "score": wins.ravel().astype(float), "simulated": True}))
            if scaffold != "direct":
                truth[(scaffold, model)] = float(10 ** (x_equiv - x))
    return pd.concat(frames, ignore_index=True), truth


def score_rows(rows: pd.DataFrame, truth: dict[tuple[str, str], float],
               x_range: tuple[float, float]) -> pd.DataFrame:
    """One record per enhanced cell of an estimate: truth, estimate, interval, printed bound.

    ``inside``: the true C' lies within the measured baseline sizes (log10 C in x_range).
    ``violated``: a printed bound that the truth breaks ('> x' with truth < x, '< x' with
    truth > x). ``naive_violated``: the same, had the model-based extrapolation been printed
    as the bound (what ptebench printed before its bounds were data-supported).
    """
    out = []
    per = rows.loc[rows["row"] == "model"]
    for _, r in per.iterrows():
        key = (str(r["scaffold"]), str(r["model"]))
        if key not in truth:
            continue
        t = truth[key]
        lc_true = float(np.log10(t) + np.log10(float(r["train_flop"])))
        bound = str(r["bound"])
        ceg, model = float(r["ceg"]), float(r["ceg_model"])
        lo, hi = float(r["ceg_lo"]), float(r["ceg_hi"])
        viol = (bound == "lower" and t < ceg) or (bound == "upper" and t > ceg)
        naive = (bound == "lower" and t < model) or (bound == "upper" and t > model)
        out.append({
            "scaffold": key[0], "model": key[1], "truth": t,
            "inside": x_range[0] <= lc_true <= x_range[1],
            "estimate": model, "printed": ceg, "bound": bound,
            "covered": bool(lo <= t <= hi) if not (np.isnan(lo) or np.isnan(hi)) else np.nan,
            "log_err": float(np.log10(model / t)) if model > 0 and np.isfinite(model) else np.nan,
            "violated": viol if bound else np.nan,
            "naive_violated": naive if bound and np.isfinite(model) else np.nan,
            "na": bool(np.isnan(ceg)),
        })
    return pd.DataFrame(out)


def coverage_study(replications: int, n_boot: int, methods: tuple[str, ...],
                   size_sds: tuple[float, ...], n_tasks: int = 100, epochs: int = 2,
                   seed: int = 0, between_sizes: bool = True
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Planted families × methods: per method and size deviation, bias, coverage inside and
    outside the measured range, and how often a printed bound is violated.

    Returns:
        (summary table, every scored row)
    """
    from ptebench.results.ceg import CEGOptions, estimate

    scored = []
    x_range = (float(np.log10(min(sim.SIZES))), float(np.log10(max(sim.SIZES))))
    for sd in size_sds:
        for r in range(replications):
            df, truth = planted_table(seed=seed + 1000 * r + int(sd * 1e4), n_tasks=n_tasks,
                                      epochs=epochs, size_sd=sd)
            for m in methods:
                res = estimate(df, CEGOptions(method=m, n_boot=n_boot, seed=r,  # type: ignore[arg-type]
                                              between_sizes=between_sizes))
                s = score_rows(res.rows, truth, x_range)
                scored.append(s.assign(method=m, size_sd=sd, rep=r))
    allrows = pd.concat(scored, ignore_index=True)
    summary = []
    for key, g in allrows.groupby(["method", "size_sd"], sort=False):
        m, sd = cast(tuple[Any, Any], key)
        ins, out = g.loc[g["inside"]], g.loc[~g["inside"]]
        b = g.loc[g["bound"] != ""]
        summary.append({
            "method": m, "size_sd": sd, "rows": len(g),
            "bias_log10_inside": float(ins["log_err"].median()) if len(ins) else np.nan,
            "coverage_inside": float(ins["covered"].astype(float).mean()) if len(ins) else np.nan,
            "n_inside": len(ins),
            "coverage_outside": float(out["covered"].astype(float).mean()) if len(out) else np.nan,
            "n_outside": len(out),
            "bound_rows": len(b),
            "bound_violated": float(b["violated"].astype(float).mean()) if len(b) else np.nan,
            "naive_violated": float(b["naive_violated"].astype(float).mean()) if len(b) else np.nan,
            "na_rows": int(cast(Any, g["na"].sum())),
        })
    return pd.DataFrame(summary), allrows
