"""Compute-equivalent gain: estimate, interval, flags and costs per enhanced model.

CEG = C'/C where C' is the training compute at which the baseline scaffold's scaling curve
reaches the enhanced model's score (docs/results.md, ../shared/design/CEG.md). Methods:
fit-logit (default), fit-loglinear (the paper's Appendix A.1), bound (Appendix A steps
2(a)–(c), reported as "> x"), isotonic (robustness). Intervals come from the paired
hierarchical bootstrap in bootstrap.py, widened by the baseline sizes' scatter around the
fitted law (a parametric bootstrap across sizes, below); every case that cannot be read at
face value carries a flag instead of being dropped.

What is printed is what the data support. Inside the measured range: the estimate and its
interval. Past the largest baseline size (``extrapolated``) the printed number is the bound
CEG > C_j/C for the largest baseline size j the enhanced score beats in ≥ 95% of the
replicates, and the model-based extrapolation is a separate, labelled column
(``ceg_model``); below the smallest size (``below_range``) it is CEG < C_j/C likewise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy import stats

from ptebench.errors import UserError
from ptebench.results import fits
from ptebench.results.bootstrap import Cube, build_cube, point_means, replicate_means
from ptebench.results.table import SIM_BANNER, LoadedTable

Method = Literal["fit-logit", "fit-loglinear", "bound", "isotonic"]
METHODS: tuple[str, ...] = ("fit-logit", "fit-loglinear", "bound", "isotonic")
ALIASES = {"logit": "fit-logit", "loglinear": "fit-loglinear", "log-linear": "fit-loglinear",
           "fit-log-linear": "fit-loglinear"}
FLAGS = ("extrapolated", "lower_bound_only", "below_range", "non_monotone", "baseline_drop",
         "lack_of_fit", "vs_own_baseline", "floor_or_ceiling", "disagree", "unpaired", "oracle")
FLAG_CODES = {"extrapolated": "EX", "lower_bound_only": "LB", "below_range": "BR",
              "non_monotone": "NM", "baseline_drop": "DR", "lack_of_fit": "LF",
              "vs_own_baseline": "OB", "floor_or_ceiling": "FC", "disagree": "DG",
              "unpaired": "UP", "oracle": "OR"}
"""Two-letter codes the terminal table prints (with a legend of the codes that occur)."""
FLAG_HELP = {
    "extrapolated": "C' is > 0.3 OOM past the largest baseline size: the printed number is "
                    "the bound the data support (C_j/C); the fit's extrapolation is a separate "
                    "column",
    "lower_bound_only": "C' > 1 OOM past the largest size, or > 5% of bootstrap inversions "
                        "failed: trust only the lower end",
    "below_range": "C' is > 0.3 OOM below the smallest baseline size: the printed number is "
                   "an upper bound (C_j/C); < 1 means the enhancement hurts",
    "non_monotone": "the baseline does not rise with compute (Kendall τ): a high CEG may only "
                    "mean scaling does not help",
    "baseline_drop": "the baseline drops significantly between two adjacent sizes",
    "lack_of_fit": "the baseline sizes scatter around the fitted law more than sampling "
                   "noise explains (χ² test); the interval carries the scatter",
    "vs_own_baseline": "the enhanced score beats the same model's baseline but CEG < 1, or "
                       "does not beat it but CEG > 1 (the fitted curve, not the model's own "
                       "point, is the reference)",
    "floor_or_ceiling": "the enhanced score is within 5 points of chance or of 100%",
    "disagree": "fit-logit and fit-loglinear differ by more than 2×",
    "unpaired": "the enhanced cell and the baseline did not run the same tasks: compared on "
                "the shared tasks only (the note gives the share left out)",
    "oracle": "some episodes used oracle (ground-truth) feedback",
}
LOG_CEG_CAP = 12.0
"""|log10 CEG| is capped here (a near-flat baseline would otherwise overflow): 10^±12."""


def resolve_method(name: str) -> Method:
    """Canonical method name for a name or alias; UserError naming the accepted values."""
    m = ALIASES.get(name.strip().lower(), name.strip().lower())
    if m not in METHODS:
        raise UserError(f"--method: unknown method {name!r}; accepted: "
                        f"{', '.join(METHODS)} (aliases: {', '.join(ALIASES)})")
    return m  # type: ignore[return-value]


class CEGOptions(BaseModel):
    """How to estimate CEG. Every field is range-checked (``make_options`` turns a violation
    into a UserError naming the command-line option)."""

    model_config = ConfigDict(extra="forbid")

    baseline: str = "direct"
    """Scaffold whose scaling curve defines compute-equivalence (any scaffold present)."""
    method: Method = "fit-logit"
    """fit-logit, fit-loglinear, bound or isotonic."""
    n_boot: int = Field(default=2000, ge=0, le=1_000_000)
    """Bootstrap replicates (0 = point estimates only)."""
    seed: int = Field(default=0, ge=0)
    """Seed of the bootstrap (same seed, same interval)."""
    resample: tuple[Literal["family", "task", "epoch"], ...] = Field(default=("task",), min_length=1)
    """Bootstrap stages resampled: task (default; stratified by task family), family, epoch."""
    chance: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Chance level f of the task set (fit-logit floor), in [0, 1)."""
    ci: float = Field(default=0.95, gt=0.0, lt=1.0)
    """Central interval mass (0.95 → 2.5–97.5 percentiles)."""
    min_sizes: int = Field(default=3, ge=2)
    """Baseline sizes a fitted curve needs; with fewer, use the bound method."""
    extrapolate_oom: float = Field(default=0.3, ge=0.0)
    """C' this many orders of magnitude past the largest baseline → extrapolated."""
    lower_bound_oom: float = Field(default=1.0, ge=0.0)
    """C' this far past the largest baseline → lower_bound_only."""
    max_fail_frac: float = Field(default=0.05, ge=0.0, le=1.0)
    """Share of failed bootstrap inversions above which → lower_bound_only."""
    floor_margin: float = Field(default=0.05, ge=0.0, lt=0.5)
    """P_S within this of chance or of 1 → floor_or_ceiling."""
    disagree_factor: float = Field(default=2.0, ge=1.0)
    """fit-logit and fit-loglinear CEGs further apart than this factor → disagree."""
    tau_alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    """Significance of the baseline-shape tests (Kendall τ, adjacent drops, χ² lack of fit)."""
    bound_level: float = Field(default=0.95, ge=0.5, lt=1.0)
    """A printed bound needs the enhanced score to beat (or trail) that baseline size in at
    least this share of the bootstrap replicates."""
    between_sizes: bool = True
    """Carry the baseline sizes' scatter around the fitted law into the interval."""
    size_sd_prior: float = Field(default=0.2, ge=0.0, le=2.0)
    """Prior guess of the sizes' scatter around the law (SD of log10 C): real families do
    not sit on a curve, and 3–5 sizes estimate the scatter poorly, so the estimate is
    pooled with this guess (scaled-inverse-χ² prior)."""
    size_sd_prior_dof: float = Field(default=3.0, ge=0.0)
    """Weight of that prior, in degrees of freedom (0: the data alone)."""
    inference_scaling: float = Field(default=0.5, ge=0.0, le=2.0)
    """Per-task inference cost of a model trained with C' is (C'/C)^this × the baseline's:
    0.5 under compute-optimal scaling (N ∝ √C), 1 if all extra compute went into parameters,
    0 if none did."""

    truth_reps: int = Field(default=20, ge=0, le=100_000)
    """Sim rows only: episodes per task with which the true CEG of a scaffold without a
    closed form is simulated (ptebench.results.truth_sim; cached). 0: closed forms only."""

    @model_validator(mode="after")
    def _ordered(self) -> CEGOptions:
        if self.lower_bound_oom < self.extrapolate_oom:
            raise ValueError(f"lower_bound_oom ({self.lower_bound_oom}) must be >= "
                             f"extrapolate_oom ({self.extrapolate_oom})")
        return self


OPTION_FLAGS = {"n_boot": "--boot", "min_sizes": "--min-sizes", "ci": "--ci",
                "chance": "--chance", "seed": "--seed", "resample": "--resample",
                "inference_scaling": "--inference-scaling", "baseline": "--baseline",
                "method": "--method", "truth_reps": "--truth-reps"}


def make_options(**kwargs: Any) -> CEGOptions:
    """CEGOptions from keyword values; a value out of range is a UserError naming the option.

    Raises:
        UserError: e.g. ``--chance must lie in [0, 1): got 1.5``.
    """
    try:
        return CEGOptions(**kwargs)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            name = str(err["loc"][0]) if err["loc"] else "options"
            flag = OPTION_FLAGS.get(name, name.replace("_", "-"))
            got = kwargs.get(name, err.get("input"))
            msgs.append(f"{flag}: {err['msg']} (got {got!r})")
        raise UserError("; ".join(msgs)) from None


@dataclass
class Curve:
    """One family's baseline curve, for plots: points, fit and band on a grid of log10 C."""

    family: str
    method: str
    x_points: list[float]
    y_points: list[float]
    models: list[str]
    grid: list[float] = field(default_factory=list)
    fit: list[float] = field(default_factory=list)
    lo: list[float] = field(default_factory=list)
    hi: list[float] = field(default_factory=list)


@dataclass
class CEGResult:
    """Everything `ptebench ceg` prints or exports."""

    rows: pd.DataFrame
    """One row per (family, enhanced scaffold, model), then one labelled summary per scaffold."""
    combos: pd.DataFrame
    """Combined enhancements beside the product of their parts."""
    options: CEGOptions
    source: str = ""
    excluded_errors: int = 0
    notes: list[str] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    simulated: bool = False
    safety: pd.DataFrame | None = None
    crossings: pd.DataFrame | None = None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    """Per family: baseline sizes, χ² lack-of-fit p, between-size SD (log10 C), drops."""

    @property
    def banner(self) -> str | None:
        return SIM_BANNER if self.simulated else None

    def meta(self) -> dict[str, Any]:
        return {"method": self.options.method, "baseline": self.options.baseline,
                "n_boot": self.options.n_boot, "seed": self.options.seed,
                "resample": list(self.options.resample),
                "ci": self.options.ci, "chance": self.options.chance, "source": self.source,
                "inference_scaling": self.options.inference_scaling,
                "bound_level": self.options.bound_level,
                "excluded_error_episodes": self.excluded_errors, "notes": self.notes,
                "diagnostics": self.diagnostics,
                "simulated": self.simulated, "banner": self.banner}


def _fit_invert(method: str, x: np.ndarray, y: np.ndarray, n: np.ndarray, tp: np.ndarray,
                tn: np.ndarray, chance: float) -> np.ndarray:
    """Fit the baseline on (x, y, n) (B, M) and return log10 C' for targets tp (B, K)."""
    if method == "fit-loglinear":
        a, b = fits.fit_loglinear(x, y)
        return fits.invert_loglinear(a, b, tp)
    if method == "isotonic":
        xs, fitted = fits.fit_isotonic(x, y, n)
        return fits.invert_isotonic(xs, fitted, tp)
    a, b = fits.fit_logit(x, y, n, chance)
    return fits.invert_logit(a, b, tp, tn, chance)


def _curve(method: str, cube: Cube, x: np.ndarray, y: np.ndarray, n: np.ndarray,
           bx: np.ndarray | None, by: np.ndarray | None, bn: np.ndarray | None,
           chance: float, ci: float, models: list[str]) -> Curve:
    curve = Curve(cube.family, method, x.tolist(), y.tolist(), models)
    if method == "bound" or len(x) < 2:
        return curve
    grid = np.linspace(x.min() - 0.5, x.max() + 1.0, 60)

    def evaluate(xx: np.ndarray, yy: np.ndarray, nn: np.ndarray) -> np.ndarray:
        if method == "fit-loglinear":
            a, b = fits.fit_loglinear(xx, yy)
            return a[:, None] + b[:, None] * grid[None, :]
        if method == "isotonic":
            xs, fitted = fits.fit_isotonic(xx, yy, nn)
            return np.stack([np.interp(grid, xs[i], fitted[i]) for i in range(len(xs))])
        a, b = fits.fit_logit(xx, yy, nn, chance)
        return fits.logit_curve(a[:, None], b[:, None], grid[None, :], chance)

    curve.grid = grid.tolist()
    curve.fit = evaluate(x[None], y[None], n[None])[0].tolist()
    if bx is not None and by is not None and bn is not None and len(bx):
        band = evaluate(bx, by, bn)
        q = (1 - ci) / 2 * 100
        curve.lo = np.nanpercentile(band, q, axis=0).tolist()
        curve.hi = np.nanpercentile(band, 100 - q, axis=0).tolist()
    return curve


def _interval(log_ceg: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and central interval of log10 CEG per column; NaN (no answer) counts as +inf."""
    v = np.where(np.isnan(log_ceg), np.inf, log_ceg)
    q = (1 - ci) / 2 * 100
    # 'nearest' never interpolates, so ±inf replicates give ±inf ends instead of NaN
    lo = np.percentile(v, q, axis=0, method="nearest")
    med = np.percentile(v, 50, axis=0, method="nearest")
    hi = np.percentile(v, 100 - q, axis=0, method="nearest")
    return lo, med, hi


def _cap(v: np.ndarray) -> np.ndarray:
    """Finite log10 CEGs clipped to ±LOG_CEG_CAP; ±inf and NaN kept (they mean something)."""
    return np.where(np.isfinite(v), np.clip(v, -LOG_CEG_CAP, LOG_CEG_CAP), v)


def _pow10(v: float) -> float:
    if math.isnan(v):
        return math.nan
    if math.isinf(v):
        return math.inf if v > 0 else 0.0
    return float(10.0 ** min(max(v, -300.0), 300.0))


def _kendall_flag(cube: Cube, base_cells: list[int], base_m: list[int], alpha: float) -> bool:
    """True when the baseline does not rise with compute (one-sided Kendall τ on episodes)."""
    xs, ys = [], []
    for c, m in zip(base_cells, base_m, strict=True):
        mask = cube.present[c] > 0
        ys.append(cube.score[c][mask])
        xs.append(np.full(int(mask.sum()), cube.log_c[m]))
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return True
    res: Any = stats.kendalltau(x, y, alternative="greater")
    tau, p = float(res.statistic), float(res.pvalue)
    return not (tau > 0 and p <= alpha)


def _drops(cube: Cube, task_mean: np.ndarray, base_cells: list[int], base_m: list[int],
           alpha: float) -> list[str]:
    """Significant drops of the baseline between adjacent sizes (paired one-sided t-test
    on the per-task means the two sizes share)."""
    out: list[str] = []
    for (c0, m0), (c1, m1) in zip(zip(base_cells, base_m, strict=True),
                                  zip(base_cells[1:], base_m[1:], strict=True), strict=False):
        a, b = task_mean[c0], task_mean[c1]
        ok = np.isfinite(a) & np.isfinite(b)
        d = b[ok] - a[ok]
        if len(d) < 2 or np.all(d == d[0]):
            if len(d) and np.all(d < 0):  # every shared task got worse
                out.append(f"{cube.models[m0]} {np.mean(a[ok]):.3g} → {cube.models[m1]} "
                           f"{np.mean(b[ok]):.3g} (every task lower)")
            continue
        res: Any = stats.ttest_1samp(d, 0.0, alternative="less")
        p = float(res.pvalue)
        if p <= alpha:
            out.append(f"{cube.models[m0]} {np.mean(a[ok]):.3g} → {cube.models[m1]} "
                       f"{np.mean(b[ok]):.3g} (p = {p:.2g})")
    return out


def _slope(method: str, a: float, b: float, x: np.ndarray, chance: float) -> np.ndarray:
    """dP/dlog10C of the point fit at x."""
    if method == "fit-loglinear":
        return np.full_like(x, b)
    s = fits.logit_curve(a, b, x, 0.0)
    return (1.0 - chance) * b * s * (1.0 - s)


@dataclass
class _Between:
    """The baseline sizes' scatter around the fitted law, in log10 C."""

    s2: float = 0.0
    dof: int = 0
    p_value: float = math.nan
    slope: np.ndarray = field(default_factory=lambda: np.zeros(0))
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _between_sizes(method: str, x0: np.ndarray, y0: np.ndarray, n0: np.ndarray,
                   by: np.ndarray, chance: float) -> _Between:
    """Residuals of the sizes from the point fit, read horizontally (log10 C), against the
    sampling noise of each size's score (bootstrap variance, or binomial without one).

    s² = max(0, (Σ r² − (M−2)/M·Σ v)/(M−2)) estimates the between-size variance; the
    χ² statistic Σ r²/v on M − 2 degrees of freedom tests lack of fit.
    """
    m = len(x0)
    fm = "fit-loglinear" if method == "fit-loglinear" else "fit-logit"
    if m < 2:
        return _Between()
    if fm == "fit-loglinear":
        aa, bb = fits.fit_loglinear(x0[None], y0[None])
        a, b = float(aa[0]), float(bb[0])
        xhat = (y0 - a) / b if b > 0 else np.full_like(y0, np.nan)
    else:
        aa, bb = fits.fit_logit(x0[None], y0[None], n0[None], chance)
        a, b = float(aa[0]), float(bb[0])
        z = fits.clip_rate(y0, n0, chance)
        xhat = (np.log(z / (1 - z)) - a) / b if b > 0 else np.full_like(y0, np.nan)
    slope = _slope(fm, a, b, x0, chance)
    out = _Between(slope=slope, dof=m - 2)
    if m < 3 or not (b > 0) or not np.all(np.isfinite(xhat)):
        return out
    r = xhat - x0
    # sampling variance of each size's score: the bootstrap's, or binomial without one
    var_y = (np.nanvar(by, axis=0, ddof=1) if len(by) >= 20
             else y0 * (1 - y0) / np.maximum(n0, 1.0))
    sl = np.maximum(_slope(fm, a, b, xhat, chance), 1e-9)
    v = np.maximum(var_y / sl**2, 1e-12)
    dof = m - 2
    ss = float((r**2).sum())
    out.residuals = r
    out.s2 = max(0.0, (ss - dof / m * float(v.sum())) / dof)
    out.p_value = float(stats.chi2.sf(float((r**2 / v).sum()), dof))
    return out


def _between_draws(bt: _Between, n_boot: int, m: int, seed: int, prior_sd: float,
                   prior_dof: float) -> np.ndarray:
    """(B, M) log10 C shifts of the baseline sizes: σ_b² ~ ν·s̄²/χ²_ν, the posterior of the
    scatter under a scaled-inverse-χ² prior (prior_dof, prior_sd²) given the residual
    estimate s² on M − 2 dof (ν = M − 2 + prior_dof, s̄² their weighted mean; few sizes give
    heavy tails); each size's shift ~ N(0, σ_b)."""
    dof = max(bt.dof, 0) if bt.p_value == bt.p_value else 0  # no residual estimate: prior only
    nu = dof + prior_dof
    if n_boot == 0 or m < 2 or nu <= 0:
        return np.zeros((n_boot, m))
    s2 = (dof * bt.s2 + prior_dof * prior_sd**2) / nu
    if s2 <= 0:
        return np.zeros((n_boot, m))
    rng = np.random.default_rng([seed, 0x51E5])
    sd = np.sqrt(nu * s2 / rng.chisquare(nu, n_boot))
    return sd[:, None] * rng.standard_normal((n_boot, m))


def _subcube(cube: Cube, mask: np.ndarray) -> Cube:
    """The cube restricted to the tasks in mask (task families renumbered densely)."""
    if mask.all():
        return cube
    codes, _ = pd.factorize(cube.task_group[mask], sort=True)
    return Cube(cube.family, cube.models, cube.log_c, cube.sigma, cube.scaffolds,
                [t for t, k in zip(cube.tasks, mask, strict=True) if k],
                codes.astype(np.int64), cube.score[:, mask], cube.present[:, mask])


def estimate(loaded: LoadedTable | pd.DataFrame, options: CEGOptions | None = None) -> CEGResult:
    """Estimate CEG for every enhanced (scaffold, model) in every family of the table.

    Raises:
        UserError: the table is empty, or the baseline scaffold appears in no family.
    """
    opts = options or CEGOptions()
    if isinstance(loaded, pd.DataFrame):
        from ptebench.results.table import validate_table

        loaded = LoadedTable(validate_table(loaded), "table")
    table = loaded.table
    if not len(table):
        why = (f"all {loaded.excluded_errors} episode(s) ended in error"
               if loaded.excluded_errors else "no scored episodes")
        raise UserError(f"{loaded.source}: {why}; nothing to estimate")
    scaffolds = {str(x) for x in table["scaffold"].unique()}
    if opts.baseline not in scaffolds:
        raise UserError(f"--baseline: scaffold {opts.baseline!r} is not in {loaded.source}; "
                        f"present: {sorted(scaffolds)}")
    result = CEGResult(pd.DataFrame(), pd.DataFrame(), opts, loaded.source,
                       loaded.excluded_errors, list(loaded.notes),
                       simulated=bool(table["simulated"].any()))
    _stage_notes(table, opts, result)
    all_rows: list[dict[str, Any]] = []
    replicates: dict[tuple[str, str, str], np.ndarray] = {}
    for family in sorted(table["family"].unique()):
        fam_rows, fam_reps = _estimate_family(table, str(family), opts, result)
        all_rows.extend(fam_rows)
        replicates.update(fam_reps)
    rows = pd.DataFrame(all_rows)
    if len(rows):
        rows = _attach_costs(rows, table, opts)
        if result.simulated:
            from ptebench.results.truth import attach_truth

            rows = attach_truth(rows, loaded, opts)
        rows = pd.concat([rows, _summaries(rows, replicates, opts)], ignore_index=True)
    elif not result.notes or all("skipped" not in n for n in result.notes):
        result.notes.append(f"only the baseline {opts.baseline!r} was run: no enhanced "
                            "scaffold to estimate a CEG for")
    result.rows = _finish(rows, opts)
    from ptebench.results.combos import combos

    result.combos = combos(result.rows, table, replicates, opts)
    return result


def _as_int(v: Any) -> int:
    """A pandas scalar (typed loosely by the stubs) as int."""
    return int(v)


def _stage_notes(table: pd.DataFrame, opts: CEGOptions, result: CEGResult) -> None:
    """Warn when a resampled stage has one unit: it adds no variation to the interval."""
    if opts.n_boot == 0:
        return
    for family, t in table.groupby("family", sort=True):
        units = {"family": _as_int(t["task_family"].nunique()),
                 "task": _as_int(t.groupby("task_family")["task_id"].nunique().max()),
                 "epoch": _as_int(t.groupby(["model", "scaffold", "task_id"]).size().max())}
        for stage in opts.resample:
            if units[stage] <= 1:
                alone = len(opts.resample) == 1
                result.notes.append(
                    f"warning: family {family!r}: resample stage {stage!r} has one unit "
                    f"({stage} count 1), so it adds no variation"
                    + ("; the interval is zero-width, i.e. meaningless — resample 'task'"
                       if alone else "; the interval comes from the other stages only"))


def _estimate_family(table: pd.DataFrame, family: str, opts: CEGOptions, result: CEGResult
                     ) -> tuple[list[dict[str, Any]], dict[tuple[str, str, str], np.ndarray]]:
    cube = build_cube(table, family)
    if opts.baseline not in cube.scaffolds:
        result.notes.append(f"family {family!r}: no {opts.baseline!r} episodes, skipped")
        return [], {}
    has = cube.present.sum(-1) > 0  # (cells, tasks)
    s_base = cube.scaffolds.index(opts.baseline)
    n_s = len(cube.scaffolds)
    base_m = [m for m in range(len(cube.models)) if has[m * n_s + s_base].any()]
    base_cells = [m * n_s + s_base for m in base_m]
    common = has[base_cells].all(0)
    ran = has[base_cells].any(0)
    if not common.any():
        result.notes.append(f"family {family!r}: the baseline sizes share no task, skipped")
        return [], {}
    if common.sum() < ran.sum():
        result.notes.append(
            f"family {family!r}: the baseline sizes ran different tasks; the curve uses the "
            f"{int(common.sum())} of {int(ran.sum())} tasks every size ran")
    enh = [(s, m) for s in range(n_s) for m in range(len(cube.models))
           if s != s_base and has[m * n_s + s].any()]
    groups: dict[bytes, list[int]] = {common.tobytes(): []}
    masks: dict[bytes, np.ndarray] = {common.tobytes(): common}
    unpaired: dict[int, str] = {}
    for k, (s, m) in enumerate(enh):
        own = has[m * n_s + s]
        shared = own & common
        key = shared.tobytes()
        groups.setdefault(key, []).append(k)
        masks[key] = shared
        union = int((own | common).sum())
        if int(shared.sum()) < union:
            unpaired[k] = (f"compared on the {int(shared.sum())} tasks both ran; "
                           f"{1 - shared.sum() / union:.0%} of the {union} tasks either the "
                           f"enhanced cell or the baseline ran are missing from the other")
    rows: list[dict[str, Any]] = []
    reps: dict[tuple[str, str, str], np.ndarray] = {}
    for key, members in groups.items():
        main = key == common.tobytes()
        if not main and not masks[key].any():
            for k in members:
                s, m = enh[k]
                rows.append(_empty_row(family, cube.scaffolds[s], cube.models[m], opts,
                                       "no task in common with the baseline: no CEG",
                                       ["unpaired"]))
            continue
        sub = _subcube(cube, masks[key])
        g_rows, g_reps = _estimate_group(sub, [enh[k] for k in members], base_m, table,
                                         opts, result, main,
                                         [unpaired.get(k, "") for k in members])
        rows.extend(g_rows)
        reps.update(g_reps)
    order = {(cube.scaffolds[s], cube.models[m]): i for i, (s, m) in enumerate(enh)}
    rows.sort(key=lambda r: order.get((r["scaffold"], r["model"]), 0))
    return rows, reps


def _empty_row(family: str, scaffold: str, model: str, opts: CEGOptions, note: str,
               flags: list[str]) -> dict[str, Any]:
    return {"family": family, "scaffold": scaffold, "model": model, "row": "model",
            "method": opts.method, "baseline": opts.baseline, "ceg": math.nan,
            "ceg_model": math.nan, "bound": "", "flags": flags, "note": note,
            "simulated": False, "n_episodes": 0}


def _estimate_group(cube: Cube, enh: list[tuple[int, int]], base_m: list[int],
                    table: pd.DataFrame, opts: CEGOptions, result: CEGResult, main: bool,
                    unpaired: list[str]
                    ) -> tuple[list[dict[str, Any]], dict[tuple[str, str, str], np.ndarray]]:
    """CEG rows of the enhanced cells enh, all on the same tasks as the baseline (cube)."""
    family = cube.family
    p0, n0, task_mean = point_means(cube)
    n_s = len(cube.scaffolds)
    s_base = cube.scaffolds.index(opts.baseline)
    base_cells = [m * n_s + s_base for m in base_m]
    enh_cells = [m * n_s + s for s, m in enh]
    enh_m = np.array([m for _, m in enh], dtype=int)
    x0, y0, nn0 = cube.log_c[base_m], p0[base_cells], n0[base_cells]
    tp0, tn0 = p0[enh_cells], n0[enh_cells]
    boot = opts.n_boot > 0
    # with n_boot = 0 these are empty (0, ·) arrays and every use below is skipped
    P, N, X = replicate_means(cube, opts.n_boot, opts.seed, opts.resample)
    n_sizes = len(base_m)
    fitted_ok = n_sizes >= opts.min_sizes
    method = opts.method
    bt = _between_sizes(method, x0, y0, nn0, P[:, base_cells], opts.chance)
    eps = (_between_draws(bt, opts.n_boot, n_sizes, opts.seed, opts.size_sd_prior,
                          opts.size_sd_prior_dof) if opts.between_sizes
           else np.zeros((opts.n_boot, n_sizes)))
    bx = X[:, base_m] + eps
    by, bn = P[:, base_cells], N[:, base_cells]
    btp, btn, bxe = P[:, enh_cells], N[:, enh_cells], X[:, enh_m]
    non_mono = _kendall_flag(cube, base_cells, base_m, opts.tau_alpha) if n_sizes else True
    drops = _drops(cube, task_mean, base_cells, base_m, opts.tau_alpha)
    lack = bool(bt.p_value <= opts.tau_alpha) if not math.isnan(bt.p_value) else False
    if main:
        result.diagnostics.append({
            "family": family, "baseline_sizes": [cube.models[m] for m in base_m],
            "lack_of_fit_p": bt.p_value, "between_size_sd_log10": math.sqrt(bt.s2),
            "between_size_dof": bt.dof, "drops": drops,
            "residuals_log10": [float(v) for v in bt.residuals]})
        for d in drops:
            result.notes.append(f"family {family!r}: the baseline drops between adjacent "
                                f"sizes: {d}")
        if lack:
            result.notes.append(
                f"family {family!r}: the baseline sizes scatter around the fitted law "
                f"(χ² lack of fit p = {bt.p_value:.2g}; between-size SD "
                f"{math.sqrt(bt.s2):.2g} OOM, carried into the intervals)")
        elif 0 < n_sizes < 3 and method != "bound":
            result.notes.append(f"family {family!r}: {n_sizes} baseline size(s): the scatter "
                                "of sizes around the law cannot be estimated, the interval "
                                "treats the curve as exact between sizes")
    point: dict[str, np.ndarray] = {}
    if fitted_ok and enh:
        for mm in ("fit-logit", "fit-loglinear", "isotonic"):
            point[mm] = _fit_invert(mm, x0[None], y0[None], nn0[None], tp0[None], tn0[None],
                                    opts.chance)[0]
    if main:
        curve_method = method if fitted_ok else "bound"
        if method == "bound" and fitted_ok:
            curve_method = "fit-logit"
        result.curves.append(_curve(
            curve_method, cube, x0, y0, nn0,
            bx if boot else None, by if boot else None, bn if boot else None,
            opts.chance, opts.ci, [cube.models[m] for m in base_m]))
    log_ceg_b = None
    if boot and enh and method != "bound" and fitted_ok:
        log_ceg_b = _cap(_fit_invert(method, bx, by, bn, btp, btn, opts.chance) - bxe)
    rows: list[dict[str, Any]] = []
    reps: dict[tuple[str, str, str], np.ndarray] = {}
    summary_b: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    if log_ceg_b is not None:
        # a failed inversion is NaN (flat or falling refit) or +inf (above the curve's top);
        # -inf (isotonic: below the first size) is an answer, an upper bound, not a failure
        failed = np.isnan(log_ceg_b) | (log_ceg_b == np.inf)
        summary_b = (*_interval(log_ceg_b, opts.ci), failed.mean(0))
    fam_table = table.loc[table["family"] == family]
    sim_models = {str(x) for x in fam_table.loc[fam_table["simulated"], "model"].unique()}
    oracle_cells = fam_table.groupby(["model", "scaffold"])["oracle_feedback"].any()
    # the law's value at each size, per replicate, for the bound supports: the size's score
    # moved along the curve by the replicate's between-size shift
    law_b = by - bt.slope[None, :] * eps if boot and len(bt.slope) == n_sizes else by
    for k, (s, m) in enumerate(enh):
        model, scaffold = cube.models[m], cube.scaffolds[s]
        xe = float(cube.log_c[m])
        own = cube.cell(model, opts.baseline)
        row: dict[str, Any] = {
            "family": family, "scaffold": scaffold, "model": model, "row": "model",
            "method": method, "baseline": opts.baseline, "train_flop": 10**xe,
            "p_enhanced": float(tp0[k]),
            "p_baseline": float(p0[own]) if n0[own] > 0 else math.nan,
            "n_episodes": int(tn0[k]), "n_baseline_sizes": n_sizes,
            "simulated": model in sim_models, "note": unpaired[k], "bound": "",
            "ceg_model": math.nan,
        }
        flags: list[str] = ["unpaired"] if unpaired[k] else []
        if non_mono:
            flags.append("non_monotone")
        if drops:
            flags.append("baseline_drop")
        if lack:
            flags.append("lack_of_fit")
        if tp0[k] <= opts.chance + opts.floor_margin or tp0[k] >= 1 - opts.floor_margin:
            flags.append("floor_or_ceiling")
        if "fit-logit" in point:
            a, b = point["fit-logit"][k] - xe, point["fit-loglinear"][k] - xe
            if np.isfinite(a) and np.isfinite(b) and abs(a - b) > math.log10(opts.disagree_factor):
                flags.append("disagree")
        pe_b = btp[:, k] if boot else None
        if method == "bound":
            _bound_row(row, cube, k, m, tp0[k], base_m, y0, x0,
                       (by, pe_b, X) if pe_b is not None else None, opts.bound_level)
        elif not fitted_ok:
            row.update(ceg=math.nan, ceg_lo=math.nan, ceg_hi=math.nan, ceg_median=math.nan,
                       log10_c_equiv=math.nan, fail_frac=math.nan, support=math.nan)
            row["note"] = _join(row["note"], f"{method} needs >= {opts.min_sizes} baseline "
                                f"sizes, have {n_sizes}; use --method bound")
        else:
            _fit_row(row, flags, float(point[method][k]), xe, x0, y0, tp0[k], base_m, cube,
                     law_b, pe_b, summary_b, k, opts)
            if log_ceg_b is not None:
                reps[(family, scaffold, model)] = log_ceg_b[:, k]
        _own_baseline_check(row, flags)
        if bool(oracle_cells.get((model, scaffold), False)):
            flags.append("oracle")
        row["flags"] = [f for f in FLAGS if f in flags]
        rows.append(row)
    return rows, reps


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else a or b


def _fit_row(row: dict[str, Any], flags: list[str], lc: float, xe: float, x0: np.ndarray,
             y0: np.ndarray, pe: float, base_m: list[int], cube: Cube, law_b: np.ndarray,
             pe_b: np.ndarray | None, summary_b: tuple[np.ndarray, ...] | None, k: int,
             opts: CEGOptions) -> None:
    """The printed number of a fitted row: estimate inside the range, data bound outside."""
    x_max, x_min = float(x0.max()), float(x0.min())
    ff = float(summary_b[3][k]) if summary_b is not None else 0.0
    row["fail_frac"] = ff
    row["support"] = math.nan
    if summary_b is not None:
        lo, med, hi, _ = summary_b
        row.update(ceg_lo=_pow10(lo[k]), ceg_median=_pow10(med[k]), ceg_hi=_pow10(hi[k]))
    else:
        row.update(ceg_lo=math.nan, ceg_median=math.nan, ceg_hi=math.nan)
    if math.isnan(lc):
        row.update(ceg=math.nan, log10_c_equiv=math.nan)
        row["note"] = _join(row["note"], "the fitted baseline is flat or falling: no compute "
                            "reaches this score")
        flags.append("lower_bound_only")
        return
    log_model = float(_cap(np.array([lc - xe]))[0]) if math.isfinite(lc) else math.nan
    if math.isfinite(lc) and abs(lc - xe) > LOG_CEG_CAP:
        row["note"] = _join(row["note"], f"log10 CEG capped at ±{LOG_CEG_CAP:g}")
    row["ceg_model"] = _pow10(log_model)
    row["log10_c_equiv"] = xe + log_model if math.isfinite(log_model) else math.nan
    above = lc > x_max + opts.extrapolate_oom  # +inf (isotonic: above the curve's top) too
    below = lc < x_min - opts.extrapolate_oom
    if above:
        flags.append("extrapolated")
        if lc > x_max + opts.lower_bound_oom:
            flags.append("lower_bound_only")
    if ff > opts.max_fail_frac and "lower_bound_only" not in flags:
        flags.append("lower_bound_only")
    if below:
        flags.append("below_range")
    if not (above or below):
        row["ceg"] = row["ceg_model"]
        return
    # a bound the data support: a baseline size the enhanced score beats (above) or trails
    # (below) in at least bound_level of the replicates, counting the size's scatter
    cands = []
    for j in range(len(x0)):
        if pe_b is not None:
            sup = float((pe_b > law_b[:, j]).mean() if above else (pe_b < law_b[:, j]).mean())
        else:
            sup = 1.0 if (pe > y0[j] if above else pe < y0[j]) else 0.0
        if sup >= opts.bound_level:
            cands.append((float(x0[j]), j, sup))
    if not cands:
        row["ceg"] = math.nan
        row["note"] = _join(row["note"], (
            f"{'past the largest' if above else 'below the smallest'} baseline size, but no "
            f"size is {'beaten' if above else 'above this score'} in ≥ "
            f"{opts.bound_level:.0%} of replicates: no bound; the fit says "
            f"{_num(row['ceg_model'])}"))
        return
    xj, j, sup = max(cands) if above else min(cands)
    row["ceg"] = _pow10(xj - xe)
    row["bound"] = "lower" if above else "upper"
    row["bound_vs"] = cube.models[base_m[j]]
    row["support"] = sup if pe_b is not None else math.nan


def _own_baseline_check(row: dict[str, Any], flags: list[str]) -> None:
    """vs_own_baseline: the model's own baseline point and the curve tell different stories."""
    pe, pb = _float(row.get("p_enhanced")), _float(row.get("p_baseline"))
    c = _float(row.get("ceg_model"))
    if math.isnan(c):
        c = _float(row.get("ceg")) if not row.get("bound") else math.nan
    if math.isnan(pe) or math.isnan(pb) or math.isnan(c):
        return
    if pe > pb and c < 1:
        flags.append("vs_own_baseline")
        row["note"] = _join(row["note"], f"scores above its own baseline ({pe:.3g} > {pb:.3g}) "
                            f"yet CEG {_num(c)} < 1 against the fitted curve")
    elif pe <= pb and c > 1:
        flags.append("vs_own_baseline")
        row["note"] = _join(row["note"], f"does not beat its own baseline ({pe:.3g} <= "
                            f"{pb:.3g}) yet CEG {_num(c)} > 1 against the fitted curve")


def _bound_row(row: dict[str, Any], cube: Cube, k: int, m: int, pe: float, base_m: list[int],
               y0: np.ndarray, x0: np.ndarray,
               boot: tuple[np.ndarray, np.ndarray, np.ndarray] | None, level: float) -> None:
    """Appendix A 2(a)–(c): the highest C(L)/C(E) over larger baselines L that E outperforms
    (with a bootstrap, in at least ``level`` of the replicates)."""
    xe = float(cube.log_c[m])
    best, best_j, best_sup = -math.inf, -1, math.nan
    for j, (xl, pl) in enumerate(zip(x0, y0, strict=True)):
        if not (xl > xe and pe > pl and xl - xe > best):
            continue
        sup = math.nan
        if boot is not None:
            pb, pe_b, xb = boot
            sup = float(((pe_b > pb[:, j]) & (xb[:, base_m[j]] > xb[:, m])).mean())
            if sup < level:
                continue
        best, best_j, best_sup = float(xl - xe), j, sup
    row.update(ceg_lo=math.nan, ceg_hi=math.nan, ceg_median=math.nan, fail_frac=math.nan,
               log10_c_equiv=math.nan)
    if best_j < 0:
        row.update(ceg=math.nan, support=math.nan)
        row["note"] = _join(row["note"], "no larger baseline model scores below this enhanced "
                            "model" + (f" in ≥ {level:.0%} of replicates" if boot else "")
                            + ": no bound")
        return
    row["ceg"] = _pow10(best)
    row["bound"] = "lower"
    row["log10_c_equiv"] = float(x0[best_j])
    row["bound_vs"] = cube.models[base_m[best_j]]
    row["support"] = best_sup


def _attach_costs(rows: pd.DataFrame, table: pd.DataFrame, opts: CEGOptions) -> pd.DataFrame:
    """Table-1 cost columns: one-time cost, inference-cost multiple, break-even tasks.

    Break-even counts tasks until training a C'-model would have been cheaper: the compute
    saved, C' − C − one-time cost, over the extra inference per task, F_enh − F_C', where a
    C'-trained model's own per-task cost is F_base·(C'/C)^inference_scaling (0.5:
    compute-optimal). It is left empty, with the reason in ``break_even_note``, when C' is
    only a bound, when nothing is saved, or when no FLOPs were logged; "never" (inf) when
    the enhanced model costs no more per task than the C'-model.
    """
    keys = ["family", "model", "scaffold"]
    agg: dict[str, tuple[str, str]] = {}
    if "inference_flop" in table.columns:
        agg["flop_task"] = ("inference_flop", "mean")
    if "cost_usd" in table.columns:
        agg["usd_task"] = ("cost_usd", "mean")
    out = rows.copy()
    if agg:
        per = table.groupby(keys).agg(**agg).reset_index()
        out = out.merge(per, on=keys, how="left")
        base = per.loc[per["scaffold"] == opts.baseline].drop(columns="scaffold")
        base = base.rename(columns={c: f"{c}_base" for c in agg})
        out = out.merge(base, on=["family", "model"], how="left")
    if "one_time_cost" in table.columns:
        per_s = pd.Series(table.groupby("scaffold")["one_time_cost"].max())
        otc = dict(zip(map(str, per_s.index), np.nan_to_num(np.asarray(per_s, float)),
                       strict=True))
        out["one_time_cost"] = [otc.get(str(sc), 0.0) for sc in out["scaffold"]]
    else:
        out["one_time_cost"] = 0.0
    be_vals: list[float] = []
    be_notes: list[str] = []
    has_flop = "flop_task" in out.columns
    if has_flop:
        with np.errstate(invalid="ignore", divide="ignore"):
            out["inference_multiple"] = out["flop_task"] / out["flop_task_base"]
    else:
        out["inference_multiple"] = np.nan
    g = opts.inference_scaling
    for _, r in out.iterrows():
        ceg = _float(r.get("ceg"))
        f_enh = _float(r.get("flop_task")) if has_flop else math.nan
        f_base = _float(r.get("flop_task_base")) if has_flop else math.nan
        c = _float(r.get("train_flop"))
        if math.isnan(f_enh) or math.isnan(f_base) or f_base <= 0:
            be_vals.append(math.nan)
            be_notes.append("no inference FLOPs logged")
        elif str(r.get("bound", "")) or math.isnan(ceg):
            be_vals.append(math.nan)
            be_notes.append("C' is only a bound here")
        elif ceg <= 1:
            be_vals.append(math.nan)
            be_notes.append("CEG <= 1: no training compute saved")
        else:
            saved = c * (ceg - 1.0) - _float(r.get("one_time_cost")) * c
            extra = f_enh - f_base * ceg**g
            if saved <= 0:
                be_vals.append(math.nan)
                be_notes.append("the one-time cost exceeds the compute saved")
            elif extra <= 0:
                be_vals.append(math.inf)
                be_notes.append("no dearer per task than a C'-trained model: never breaks even")
            else:
                be_vals.append(saved / extra)
                be_notes.append("")
    out["break_even_tasks"] = be_vals
    out["break_even_note"] = be_notes
    return out


def _summaries(rows: pd.DataFrame, reps: dict[tuple[str, str, str], np.ndarray],
               opts: CEGOptions) -> pd.DataFrame:
    """One labelled summary per (family, scaffold): the geometric mean of the point
    estimates (bounds are left out and counted, never averaged into a bound), or, for the
    bound method, the highest bound."""
    out: list[dict[str, Any]] = []
    for key, g in rows.groupby(["family", "scaffold"], sort=True):
        family, scaffold = cast(tuple[str, str], key)
        finite = np.isfinite(g["ceg"].astype(float)) & (g["ceg"].astype(float) > 0)
        point = finite & (g["bound"].astype(str) == "")
        s: dict[str, Any] = {"family": family, "scaffold": scaffold, "method": opts.method,
                             "baseline": opts.baseline, "simulated": bool(g["simulated"].any()),
                             "flags": sorted({f for fl in g["flags"] for f in fl},
                                             key=FLAGS.index),
                             "n_episodes": int(np.asarray(g["n_episodes"], float).sum()),
                             "bound": "", "ceg_model": math.nan}
        if opts.method == "bound":
            ok = g.loc[finite]
            s["row"] = "summary: highest bound"
            s["model"] = "(highest bound)"
            s["ceg"] = float(ok["ceg"].max()) if len(ok) else math.nan
            s["bound"] = "lower" if len(ok) else ""
        else:
            ok = g.loc[point]
            n_bounds = int((finite & ~point).sum())
            n_na = int((~finite).sum())
            s["row"] = "summary: geometric mean"
            s["model"] = f"geomean {len(ok)}/{len(g)}"
            left = []
            if n_bounds:
                left.append(f"{n_bounds} bound(s)")
            if n_na:
                left.append(f"{n_na} n/a")
            s["note"] = (f"geometric mean of the {len(ok)} point estimate(s); left out: "
                         f"{', '.join(left)}") if left else ""
            s["ceg"] = float(10 ** np.log10(ok["ceg"].astype(float)).mean()) if len(ok) else math.nan
            stack = [reps[(family, scaffold, m)] for m in ok["model"] if (family, scaffold, m) in reps]
            if stack:
                lo, med, hi = _interval(np.mean(np.stack(stack, 1), axis=1)[:, None], opts.ci)
                s.update(ceg_lo=_pow10(lo[0]), ceg_median=_pow10(med[0]), ceg_hi=_pow10(hi[0]))
            for c in ("inference_multiple", "one_time_cost"):
                if c in g.columns:
                    vals = g[c].astype(float)
                    vals = vals[np.isfinite(vals) & (vals > 0)]
                    s[c] = float(np.exp(np.log(vals).mean())) if len(vals) else math.nan
        out.append(s)
    return pd.DataFrame(out)


COLUMNS = ["family", "scaffold", "model", "row", "display", "ceg", "ceg_lo", "ceg_hi",
           "ceg_median", "bound", "ceg_model", "true_ceg", "true_lo", "true_hi", "true_method",
           "true_note", "flags", "method",
           "baseline", "train_flop", "log10_c_equiv", "p_enhanced", "p_baseline", "n_episodes",
           "one_time_cost", "inference_multiple", "break_even_tasks", "break_even_note",
           "support", "bound_vs", "fail_frac", "simulated", "label", "note"]


def _finish(rows: pd.DataFrame, opts: CEGOptions) -> pd.DataFrame:
    """Column order, the display string and the sim label."""
    if not len(rows):
        return pd.DataFrame(columns=COLUMNS)
    for c in ("ceg_lo", "ceg_hi", "ceg_median", "support", "fail_frac", "inference_multiple",
              "break_even_tasks", "one_time_cost", "p_enhanced", "p_baseline", "train_flop",
              "log10_c_equiv", "ceg_model", "true_ceg", "true_lo", "true_hi"):
        if c not in rows.columns:
            rows[c] = np.nan
    for c in ("bound_vs",):
        if c not in rows.columns:
            rows[c] = None
    for c in ("note", "bound", "true_note", "true_method", "break_even_note"):
        rows[c] = rows[c].fillna("").astype(str) if c in rows.columns else ""
    rows["display"] = [format_ceg(r) for _, r in rows.iterrows()]
    rows["label"] = np.where(rows["simulated"].astype(bool), SIM_BANNER, "")
    rest = [c for c in rows.columns if c not in COLUMNS]
    return pd.DataFrame(rows[[c for c in COLUMNS if c in rows.columns] + rest])


def _float(v: Any) -> float:
    """A cell as float; NaN for None or anything non-numeric."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _num(v: float) -> str:
    """Compact: 3 significant digits, 1.2e9 style past 10^4."""
    if math.isnan(v):
        return "?"
    if math.isinf(v):
        return "inf" if v > 0 else "0"
    if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-3):
        mant, ex = f"{v:.1e}".split("e")
        return f"{mant}e{int(ex)}"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.3g}"


def format_ceg(r: pd.Series) -> str:
    """'8.33 [5.1, 13.6]' (estimate and interval), '> 6.46' / '< 0.1' (a data bound), 'n/a'.

    A bound is printed alone: the interval of a bound row belongs to the model-based
    extrapolation (``ceg_model``), which is a separate column.
    """
    ceg = _float(r.get("ceg"))
    if math.isnan(ceg):
        return "n/a"
    prefix = {"lower": "> ", "upper": "< "}.get(str(r.get("bound", "")), "")
    text = prefix + _num(ceg)
    if prefix:
        return text
    lo, hi = _float(r.get("ceg_lo")), _float(r.get("ceg_hi"))
    if not (math.isnan(lo) and math.isnan(hi)):
        text += f" [{_num(lo)}, {_num(hi)}]"
    return text


def format_model(r: pd.Series) -> str:
    """The model-based extrapolation of a bound row ('398 [120, inf]'), else ''."""
    if not str(r.get("bound", "")) or str(r.get("row", "model")) != "model":
        return ""
    c = _float(r.get("ceg_model"))
    if math.isnan(c):
        return ""
    lo, hi = _float(r.get("ceg_lo")), _float(r.get("ceg_hi"))
    text = _num(c)
    if not (math.isnan(lo) and math.isnan(hi)):
        text += f" [{_num(lo)}, {_num(hi)}]"
    return text


def format_truth(r: pd.Series) -> str:
    """The true CEG of a sim row with only the digits its Monte-Carlo error supports:
    '12±3' (the larger side of its 95% MC interval, one significant digit, two when that
    digit is 1); '0.5–300' (the 95% MC interval, 2 significant digits) when that error is half
    the value or more (a ± would round the value away); '0.98' for a closed form (exact: 3 significant digits); '> 40' when the
    interval's upper end is unbounded; '-' when there is none."""
    v, lo, hi = _float(r.get("true_ceg")), _float(r.get("true_lo")), _float(r.get("true_hi"))
    if math.isnan(v):
        return f"> {_num(lo)}" if math.isinf(hi) and not math.isnan(lo) and lo > 0 else "-"
    if math.isnan(lo) or math.isnan(hi) or (lo == v == hi):
        return _num(v)
    if math.isinf(hi):
        return f"> {_num(lo)}"
    err = max(hi - v, v - lo)
    if err <= 0:
        return _num(v)
    if err >= v / 2 or v >= 1e4 or v < 1e-3:
        return f"{_num2(lo)}–{_num2(hi)}"
    exp10 = math.floor(math.log10(err))
    digits = exp10 - (1 if err / 10**exp10 < 2 else 0)  # decimal place of the last digit kept
    unit = 10.0**digits
    dec = max(0, -digits)
    return f"{round(v / unit) * unit:.{dec}f}±{math.ceil(err / unit) * unit:.{dec}f}"


def _num2(v: float) -> str:
    """Two significant digits, 3e5 style past 10^4 (an MC interval's ends)."""
    if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-2):
        mant, ex = f"{v:.0e}".split("e")
        return f"{mant}e{int(ex)}"
    r = float(f"{v:.2g}")
    return f"{r:.0f}" if abs(r) >= 10 else f"{r:.2g}"
