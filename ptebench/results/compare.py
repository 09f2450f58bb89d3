"""Paired A/B comparison of two runs, for reviews and nightly regression gates.

Runs are matched per (model, scaffold, scaffold params) and, inside a match, per task
(task family + task id). For each match: the per-task mean-score differences B − A, their
mean with a paired bootstrap interval over tasks, and an exact sign test on the per-task
differences (with binary one-epoch scores this is McNemar's exact test: the discordant
pairs). A cell regresses when its score drops significantly (Holm-adjusted p-values across
all matches, so a nightly job comparing many cells does not cry wolf), when it vanishes from
B, when more of its episodes error in B, or when more hit a limit. Status counts (ok / limit /
error by failure class) of both runs are shown per cell, and so is the config diff of two run
folders. ``pair_by="label"`` matches scaffolds by their reported label, so two versions of
a scaffold with different params pair up. Anything else that does not match — cells or
tasks present in one run only — is listed, never dropped silently.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ptebench.errors import UserError

KEY = ["model", "scaffold_key"]
PAIR_BY = ("params", "label")
STATUS = ("ok", "limit", "error")


@dataclass
class Comparison:
    """The result of compare_runs."""

    a: str
    b: str
    cells: pd.DataFrame
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    task_mismatches: list[str] = field(default_factory=list)
    alpha: float = 0.05
    config_diff: list[tuple[str, Any, Any]] = field(default_factory=list)
    """(field, value in A, value in B) of the two runs' resolved configs (run folders only)."""
    pair_by: str = "params"

    @property
    def regressions(self) -> pd.DataFrame:
        return self.cells.loc[self.cells["regression"]]


def _frame(path: Path, pair_by: str = "params") -> tuple[pd.DataFrame, str]:
    """Episodes of a run dir (store.load) or rows of a contract CSV, with a scaffold key.
    Errored episodes are kept (their status counts); they carry no score."""
    if path.is_dir():
        from ptebench.results import store

        df = store.load(path).copy()
        df["score"] = pd.Series(pd.to_numeric(df["score"], errors="coerce"),
                                index=df.index).fillna(0.0)
        df["scaffold_key"] = (df["scaffold"].astype(str) if pair_by == "label" else
                              df["scaffold_name"].astype(str) + " " + df["params_json"].astype(str))
        df["task"] = df["task_family"].astype(str) + "/" + df["task_id"].astype(str)
        return df, str(path)
    if not path.exists():
        raise UserError(f"{path}: no such run directory or table")
    from ptebench.results.table import load_input

    t = load_input(path).table
    t = t.assign(scaffold_key=t["scaffold"], task=t["task_id"],
                 flops_epoch=t.get("inference_flop", np.nan))
    return t, str(path)


def _status(df: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, task): episodes, ok / limit / error counts, and errors by failure class."""
    d = df.assign(n=1)
    if "status" not in d.columns:  # a contract table: every row is a scored episode
        d = d.assign(status="ok")
    failure = (d["failure"] if "failure" in d.columns
               else pd.Series(None, index=d.index)).astype(object)
    for st in STATUS:
        d[st] = (d["status"] == st).astype(int)
    is_error = d["status"] == "error"
    # an errored episode recorded before failure classes existed counts as harness
    cls = failure.where(is_error & failure.notna(), "harness").where(is_error, "").astype(str)
    for c in sorted(set(cls) - {""}):
        d[f"error_{c}"] = (cls == c).astype(int)
    cols = ["n", *STATUS, *[c for c in d.columns if str(c).startswith("error_")]]
    return pd.DataFrame(d.groupby(KEY + ["task"])[cols].sum())


def _cell_status(st: pd.DataFrame, cell: tuple[str, str],
                 tasks: pd.Index | None) -> dict[str, int] | None:
    """A cell's counts summed over ``tasks`` (all of its tasks when None)."""
    if cell not in st.index.droplevel("task"):
        return None
    rows = st.loc[cell]
    if tasks is not None:
        rows = rows.loc[rows.index.intersection(tasks)]
    return {str(k): int(v) for k, v in rows.sum().items()}


def _status_text(c: dict[str, int] | None) -> str:
    if not c:
        return "absent"
    text = f"ok {c['ok']} · limit {c['limit']} · error {c['error']}"
    by = [f"{k[6:]} {v}" for k, v in sorted(c.items()) if k.startswith("error_") and v]
    return text + (f" ({', '.join(by)})" if by else "")


def _rate(c: dict[str, int] | None, key: str) -> float:
    return c[key] / c["n"] if c and c["n"] else 0.0


def _agg(df: pd.DataFrame) -> pd.DataFrame:
    if "status" in df.columns:
        df = df.loc[df["status"] != "error"]
    cols = {"score": ("score", "mean")}
    for c in ("flops_epoch", "cost_usd", "prompt_tokens", "completion_tokens", "wall_s"):
        if c in df.columns:
            cols[c] = (c, "mean")
    return df.groupby(KEY + ["task"]).agg(**cols)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values."""
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def compare_runs(a: str | Path, b: str | Path, n_boot: int = 2000, seed: int = 0,
                 alpha: float = 0.05, ci: float = 0.95, pair_by: str = "params") -> Comparison:
    """Compare run B against run A (A is the reference, B the new run).

    Raises:
        UserError: a path is not a run or table, no (model, scaffold) is in both, or an
            unknown ``pair_by``.
    """
    if pair_by not in PAIR_BY:
        raise UserError(f"pair_by: expected one of {', '.join(PAIR_BY)}, got {pair_by!r}")
    fa, name_a = _frame(Path(a), pair_by)
    fb, name_b = _frame(Path(b), pair_by)
    ga, gb = _agg(fa), _agg(fb)
    sa, sb = _status(fa), _status(fb)
    cells_a = {(str(m), str(k)) for m, k in sa.index.droplevel("task")}
    cells_b = {(str(m), str(k)) for m, k in sb.index.droplevel("task")}
    labels = {**_labels(fa), **_labels(fb)}
    only_a = sorted(f"{m} · {labels.get(k, k)}" for m, k in cells_a - cells_b)
    only_b = sorted(f"{m} · {labels.get(k, k)}" for m, k in cells_b - cells_a)
    common = sorted(cells_a & cells_b)
    if not common:
        raise UserError(f"{name_a} and {name_b} share no (model, scaffold with params): "
                        f"only in A {only_a[:5]}, only in B {only_b[:5]}")
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    mismatches: list[str] = []
    q = (1 - ci) / 2 * 100
    empty = ga.iloc[0:0].droplevel(KEY) if len(ga) else gb.iloc[0:0].droplevel(KEY)
    for cell in common:
        ta = ga.loc[cell] if cell in ga.index.droplevel("task") else empty
        tb = gb.loc[cell] if cell in gb.index.droplevel("task") else empty
        both = ta.index.intersection(tb.index)
        miss_a, miss_b = ta.index.difference(tb.index), tb.index.difference(ta.index)
        if len(miss_a) or len(miss_b):
            mismatches.append(f"{cell[0]} · {labels.get(cell[1], cell[1])}: {len(miss_a)} task(s) "
                              f"only in A {list(miss_a[:3])}, {len(miss_b)} only in B "
                              f"{list(miss_b[:3])}")
        d = (tb.loc[both, "score"] - ta.loc[both, "score"]).to_numpy(float)
        n = len(d)
        row: dict[str, Any] = {"model": cell[0], "scaffold": labels.get(cell[1], cell[1]),
                               "scaffold_key": cell[1], "n_tasks": n,
                               "score_a": float(ta.loc[both, "score"].mean()) if n else math.nan,
                               "score_b": float(tb.loc[both, "score"].mean()) if n else math.nan}
        row["diff"] = float(d.mean()) if n else math.nan
        if n:
            boots = d[rng.integers(0, n, size=(n_boot, n))].mean(1) if n_boot else np.array([])
            row["diff_lo"] = float(np.percentile(boots, q)) if n_boot else math.nan
            row["diff_hi"] = float(np.percentile(boots, 100 - q)) if n_boot else math.nan
            up, down = int((d > 0).sum()), int((d < 0).sum())
            row["tasks_up"], row["tasks_down"] = up, down
            row["p_value"] = float(stats.binomtest(down, up + down, 0.5).pvalue) if up + down else 1.0
        else:
            row.update(diff_lo=math.nan, diff_hi=math.nan, tasks_up=0, tasks_down=0, p_value=1.0)
        for c in ("flops_epoch", "cost_usd", "prompt_tokens", "completion_tokens", "wall_s"):
            if c in ta.columns and c in tb.columns:
                va, vb = float(ta.loc[both, c].mean()), float(tb.loc[both, c].mean())
                row[f"{c}_a"], row[f"{c}_b"] = va, vb
                row[f"{c}_ratio"] = vb / va if va else math.nan
        # status shifts over the tasks both runs have (a dropped task is a mismatch above)
        shared = sa.loc[cell].index.intersection(sb.loc[cell].index)
        row.update(_status_row(_cell_status(sa, cell, shared), _cell_status(sb, cell, shared)))
        rows.append(row)
    for cell in sorted(cells_a - cells_b):  # vanished from B: a regression, never a footnote
        rows.append({"model": cell[0], "scaffold": labels.get(cell[1], cell[1]),
                     "scaffold_key": cell[1], "n_tasks": 0, "score_a": math.nan,
                     "score_b": math.nan, "diff": math.nan, "diff_lo": math.nan,
                     "diff_hi": math.nan, "tasks_up": 0, "tasks_down": 0, "p_value": 1.0,
                     **_status_row(_cell_status(sa, cell, None), None)})
    cells = pd.DataFrame(rows)
    cells["p_holm"] = holm(cells["p_value"].to_numpy(float))
    dropped = (cells["diff"] < 0) & (cells["p_holm"] < alpha)
    cells["why"] = [
        "; ".join(w for w, on in (("score dropped", d), ("vanished", v), ("errors more", e),
                                  ("hits limits more", lim)) if on)
        for d, v, e, lim in zip(dropped, cells["vanished"], cells["errors_more"],
                                cells["limits_more"], strict=True)]
    cells["regression"] = cells["why"] != ""
    cells["improvement"] = (cells["diff"] > 0) & (cells["p_holm"] < alpha) & ~cells["regression"]
    return Comparison(name_a, name_b, cells, only_a, only_b, mismatches, alpha,
                      _run_config_diff(Path(a), Path(b)), pair_by)


def _status_row(ca: dict[str, int] | None, cb: dict[str, int] | None) -> dict[str, Any]:
    return {"status_a": _status_text(ca), "status_b": _status_text(cb),
            "error_rate_a": _rate(ca, "error"), "error_rate_b": _rate(cb, "error"),
            "limit_rate_a": _rate(ca, "limit"), "limit_rate_b": _rate(cb, "limit"),
            "vanished": cb is None,
            "errors_more": cb is not None and _rate(cb, "error") > _rate(ca, "error"),
            "limits_more": cb is not None and _rate(cb, "limit") > _rate(ca, "limit")}


def _run_config_diff(a: Path, b: Path) -> list[tuple[str, Any, Any]]:
    """The resolved configs' differences of two run folders (nothing for tables)."""
    from ptebench.runners.resume import config_diff

    def resolved(p: Path) -> Any:
        f = p / "run.json"
        return json.loads(f.read_text()).get("resolved") if p.is_dir() and f.exists() else None

    ra, rb = resolved(a), resolved(b)
    return [] if ra is None or rb is None else config_diff(ra, rb, ignore=("out",))


def _labels(df: pd.DataFrame) -> dict[str, str]:
    """scaffold_key → the label users know (the scaffold label of the run)."""
    return dict(zip(df["scaffold_key"], df["scaffold"].astype(str), strict=False))


def _f(v: Any, fmt: str = "{:+.3f}") -> str:
    if v is None:
        return "–"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "–" if math.isnan(x) else fmt.format(x)


def to_markdown(c: Comparison) -> str:
    """A Markdown summary for a PR comment, a chat message or a nightly log."""
    lines = [f"## ptebench compare: {c.b} vs {c.a}", ""]
    n_reg = int(np.asarray(c.cells["regression"], bool).sum())
    n_imp = int(np.asarray(c.cells["improvement"], bool).sum())
    lines.append(f"**{n_reg} regression(s)**, {n_imp} significant improvement(s). A cell regresses "
                 "when its score drops significantly (exact sign test per cell, Holm-adjusted, "
                 f"α = {c.alpha}), it vanishes, errors more or hits limits more. Scaffolds "
                 f"paired by {c.pair_by}.")
    lines += ["", "| model | scaffold | tasks | score A | score B | Δ [95% CI] | up/down | p (Holm) "
              "| FLOPs B/A | $ B/A | status A | status B | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in c.cells.iterrows():
        verdict = (f"REGRESSION ({r['why']})" if bool(r["regression"])
                   else "improved" if bool(r["improvement"]) else "–")
        lines.append(
            f"| {r['model']} | {r['scaffold']} | {r['n_tasks']} | {_f(r['score_a'], '{:.3f}')} | "
            f"{_f(r['score_b'], '{:.3f}')} | {_f(r['diff'])} [{_f(r['diff_lo'])}, "
            f"{_f(r['diff_hi'])}] | {r['tasks_up']}/{r['tasks_down']} | "
            f"{_f(r['p_holm'], '{:.3g}')} | {_f(r.get('flops_epoch_ratio'), '{:.3g}')} | "
            f"{_f(r.get('cost_usd_ratio'), '{:.3g}')} | {r['status_a']} | {r['status_b']} | "
            f"{verdict} |")
    if c.config_diff:
        lines += ["", "### Config diff (A → B)"]
        lines += [f"- `{path}`: {json.dumps(va)} → {json.dumps(vb)}" for path, va, vb in c.config_diff]
    if c.only_a or c.only_b or c.task_mismatches:
        lines += ["", "### Not matched (reported, not compared)"]
        lines += [f"- only in A: {x}" for x in c.only_a]
        lines += [f"- only in B: {x}" for x in c.only_b]
        lines += [f"- {x}" for x in c.task_mismatches]
    return "\n".join(lines) + "\n"


def to_json(c: Comparison) -> str:
    cells = json.loads(c.cells.to_json(orient="records") or "[]")
    return json.dumps({"a": c.a, "b": c.b, "alpha": c.alpha, "pair_by": c.pair_by,
                       "cells": cells, "only_a": c.only_a, "only_b": c.only_b,
                       "task_mismatches": c.task_mismatches,
                       "config_diff": [{"field": p, "a": va, "b": vb}
                                       for p, va, vb in c.config_diff]}, indent=2)
