"""Every flag in CEG.md is triggered by a constructed table and survives every output format."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ptebench.results.ceg import FLAGS, CEGOptions, estimate
from ptebench.results.export import export, render, to_csv, to_json
from ptebench.results.table import LoadedTable, validate_table
from tests.results.helpers import rate_rows, table

LOGLIN = [(1e20, 0.2), (1e21, 0.4), (1e22, 0.6)]  # 20 points per OOM


def base(family: str, points: list[tuple[float, float]]) -> list[dict[str, object]]:
    return [r for c, p in points for r in rate_rows(family, f"m{c:.0e}", c, "direct", p)]


def enh(family: str, c: float, p: float, **extra: object) -> list[dict[str, object]]:
    return rate_rows(family, f"m{c:.0e}", c, "enh", p, **extra)


CASES: dict[str, tuple[pd.DataFrame, str]] = {
    # C' = 10^22.5: half an OOM past the largest baseline
    "extrapolated": (table(base("f", LOGLIN), enh("f", 1e22, 0.70)), "fit-loglinear"),
    # C' = 10^23.25: more than one OOM past
    "lower_bound_only": (table(base("f", LOGLIN), enh("f", 1e22, 0.85)), "fit-loglinear"),
    "below_range": (table(base("f", LOGLIN), enh("f", 1e20, 0.10)), "fit-loglinear"),
    "non_monotone": (table(base("f", [(1e20, 0.5), (1e21, 0.4), (1e22, 0.45)]),
                           enh("f", 1e20, 0.55)), "fit-loglinear"),
    "floor_or_ceiling": (table(base("f", LOGLIN), enh("f", 1e20, 0.98)), "fit-loglinear"),
    # a sigmoid-shaped baseline: the logit and the straight line read 10% very differently
    "disagree": (table(base("f", [(1e20, 0.02), (1e21, 0.05), (1e22, 0.3), (1e23, 0.95)]),
                       enh("f", 1e20, 0.10)), "fit-logit"),
    "oracle": (table(base("f", LOGLIN), enh("f", 1e20, 0.3, oracle_feedback=True)),
               "fit-loglinear"),
    # rises for three sizes, then falls at the largest (the overall τ still says "rises")
    "baseline_drop": (table(base("f", [(1e20, 0.2), (1e21, 0.4), (1e22, 0.6), (1e23, 0.45)]),
                            enh("f", 1e20, 0.3)), "fit-logit"),
    # 1000 tasks per size: the zig-zag around the logistic is far beyond sampling noise
    "lack_of_fit": (table(*[rate_rows("f", f"m{c:.0e}", c, "direct", p, n_tasks=1000)
                            for c, p in [(1e20, 0.1), (1e21, 0.45), (1e22, 0.4), (1e23, 0.9)]],
                          rate_rows("f", "m1e+21", 1e21, "enh", 0.5, n_tasks=1000)),
                    "fit-logit"),
    # own baseline 0.30 lies below the fitted line (0.367 at 1e21): 0.35 beats it, CEG < 1
    "vs_own_baseline": (table(base("f", [(1e20, 0.2), (1e21, 0.3), (1e22, 0.6)]),
                              enh("f", 1e21, 0.35)), "fit-loglinear"),
    # the enhancement ran the first 50 of the baseline's 100 tasks only
    "unpaired": (table(base("f", LOGLIN),
                       rate_rows("f", "m1e+20", 1e20, "enh", 0.3, n_tasks=50)), "fit-loglinear"),
}


@pytest.mark.parametrize("flag", FLAGS)
def test_flag_is_raised_and_appears_in_every_format(flag: str, tmp_path: Path) -> None:
    df, method = CASES[flag]
    res = estimate(LoadedTable(validate_table(df), "constructed"),
                   CEGOptions(method=method, n_boot=100))  # type: ignore[arg-type]
    row = res.rows.loc[res.rows["row"] == "model"].iloc[0]
    assert flag in row["flags"], (flag, row["flags"])
    assert flag in render(res)
    doc = json.loads(to_json(res))
    assert flag in doc["rows"][0]["flags"]
    assert flag in pd.read_csv(__import__("io").StringIO(to_csv(res)))["flags"].iloc[0]
    pq = export(res, tmp_path / "r.parquet")
    assert flag in pd.read_parquet(pq)["flags"].iloc[0]
    summary = res.rows.loc[res.rows["row"] != "model"].iloc[0]
    assert flag in summary["flags"], "a summary never hides a flag of its rows"


def test_clean_case_has_no_flags() -> None:
    res = estimate(table(base("f", LOGLIN), enh("f", 1e20, 0.3)),
                   CEGOptions(method="fit-loglinear", n_boot=100))
    row = res.rows.iloc[0]
    assert row["flags"] == [] and row["bound"] == ""
    assert row["ceg"] == pytest.approx(10**0.5)


def test_bound_directions_show_in_the_display() -> None:
    ext = estimate(CASES["lower_bound_only"][0], CEGOptions(method="fit-loglinear", n_boot=0))
    assert ext.rows.iloc[0]["display"].startswith("> ")
    below = estimate(CASES["below_range"][0], CEGOptions(method="fit-loglinear", n_boot=0))
    r = below.rows.iloc[0]
    # the data bound: the model's own size already scores above it, so CEG < 1 (it hurts);
    # the fitted line's extrapolation below the range is the separate ceg_model
    assert r["display"] == "< 1" and r["bound_vs"] == "m1e+20", r["display"]
    assert r["ceg_model"] == pytest.approx(10**-0.5), "CEG < 1: the enhancement hurts"


def test_failed_inversions_make_a_lower_bound() -> None:
    """A baseline that barely rises: many bootstrap fits slope down, inversions fail."""
    df = table(base("f", [(1e20, 0.40), (1e21, 0.41), (1e22, 0.42)]), enh("f", 1e21, 0.45))
    res = estimate(df, CEGOptions(method="fit-loglinear", n_boot=300))
    r = res.rows.iloc[0]
    assert r["fail_frac"] > 0.05 and "lower_bound_only" in r["flags"]
