"""The paper's worked CEG numbers (Davidson et al. 2023) come out of the methods."""

from __future__ import annotations

import math

import pytest

from ptebench.results.ceg import CEGOptions, estimate
from tests.results.helpers import rate_rows, table


def _row(result, scaffold: str, model: str):
    rows = result.rows
    hit = rows.loc[(rows["scaffold"] == scaffold) & (rows["model"] == model) & (rows["row"] == "model")]
    assert len(hit) == 1
    return hit.iloc[0]


def process_supervision(three_sizes: bool):
    """Footnote 41: ORM baseline 52% at C, 72% at 200·C; PRM (the enhancement) 60% at C."""
    c = 1e24
    groups = [rate_rows("gpt4", "small", c, "orm", 0.52),
              rate_rows("gpt4", "large", 200 * c, "orm", 0.72),
              rate_rows("gpt4", "small", c, "prm", 0.60)]
    if three_sizes:
        # a third baseline point on the same log-linear law (52% + 20 points per 200×)
        groups.append(rate_rows("gpt4", "mid", math.sqrt(200) * c, "orm", 0.62))
    return table(*groups)


def test_process_supervision_loglinear_gives_200_to_the_8_over_20():
    res = estimate(process_supervision(True),
                   CEGOptions(baseline="orm", method="fit-loglinear", n_boot=0))
    r = _row(res, "prm", "small")
    assert r["ceg"] == pytest.approx(200 ** (8 / 20), rel=1e-9)  # 8.33 ≈ "~ 8"
    assert round(r["ceg"]) == 8


def test_process_supervision_with_the_papers_two_points():
    two = process_supervision(False)
    strict = estimate(two, CEGOptions(baseline="orm", method="fit-loglinear", n_boot=0))
    r = _row(strict, "prm", "small")
    assert math.isnan(r["ceg"]) and "needs >= 3 baseline sizes" in r["note"]
    loose = estimate(two, CEGOptions(baseline="orm", method="fit-loglinear", n_boot=0,
                                     min_sizes=2))
    assert _row(loose, "prm", "small")["ceg"] == pytest.approx(200 ** 0.4, rel=1e-9)


def alphacode():
    """Table 2 / footnote 45: no enhancements 1B (1.1e9 params, 590e9 tokens) 6.7%; all
    enhancements 300M (284e6 params, 354e9 tokens) 7.5%; C = 6·N·D."""
    c_1b = 6 * 1.1e9 * 590e9
    c_300m = 6 * 284e6 * 354e9
    return table(rate_rows("alphacode", "1B", c_1b, "none", 0.067, n_tasks=1000),
                 rate_rows("alphacode", "300M", c_300m, "all_enhancements", 0.075, n_tasks=1000),
                 rate_rows("alphacode", "300M", c_300m, "none", 0.05, n_tasks=1000))


def test_alphacode_bound_is_greater_than_6():
    res = estimate(alphacode(), CEGOptions(baseline="none", method="bound", n_boot=0))
    r = _row(res, "all_enhancements", "300M")
    assert r["ceg"] == pytest.approx(1.1e9 * 590e9 / (284e6 * 354e9), rel=1e-12)
    assert round(r["ceg"]) == 6
    assert r["display"].startswith("> 6.46")
    assert r["bound"] == "lower" and r["bound_vs"] == "1B"


def test_bound_only_where_appendix_a_allows():
    """A pair counts only when L is larger (iii) AND the smaller enhanced model beats it (iv);
    the highest qualifying ratio is kept (c)."""
    rows = table(
        rate_rows("f", "s", 1e20, "base", 0.10), rate_rows("f", "m", 1e21, "base", 0.30),
        rate_rows("f", "l", 1e22, "base", 0.50), rate_rows("f", "xl", 1e23, "base", 0.70),
        rate_rows("f", "s", 1e20, "enh", 0.55),   # beats m and l, not xl → > 100
        rate_rows("f", "m", 1e21, "enh", 0.40),   # beats nothing larger → no bound
        rate_rows("f", "l", 1e22, "enh", 0.50),   # ties l (same size anyway), below xl → none
    )
    res = estimate(rows, CEGOptions(baseline="base", method="bound", n_boot=200, seed=1))
    s = _row(res, "enh", "s")
    assert s["ceg"] == pytest.approx(100.0) and s["bound_vs"] == "l"
    assert 0.5 < s["support"] <= 1.0
    for model in ("m", "l"):
        r = _row(res, "enh", model)
        assert math.isnan(r["ceg"]) and r["display"] == "n/a" and "no bound" in r["note"]
    summary = res.rows.loc[res.rows["row"] == "summary: highest bound"].iloc[0]
    assert summary["ceg"] == pytest.approx(100.0) and summary["display"].startswith("> 100")


def lats_humaneval():
    """§ agents: LATS on GPT-3.5 (83.8% on HumanEval, Zhou et al. 2023) beats GPT-4 with
    basic few-shot prompting (67.0%; GPT-3.5 48.1%); GPT-4 is estimated at 10× GPT-3.5's
    training compute, "so the CEG is > 10"."""
    c = 2e24
    return table(rate_rows("gpt", "gpt-3.5", c, "few_shot", 0.481, n_tasks=1000),
                 rate_rows("gpt", "gpt-4", 10 * c, "few_shot", 0.670, n_tasks=1000),
                 rate_rows("gpt", "gpt-3.5", c, "lats", 0.838, n_tasks=1000))


@pytest.mark.parametrize("method", ["bound", "fit-loglinear"])
def test_lats_is_greater_than_10_as_the_data_support(method: str) -> None:
    res = estimate(lats_humaneval(), CEGOptions(baseline="few_shot", method=method,  # type: ignore[arg-type]
                                                min_sizes=2, n_boot=500, seed=0))
    r = _row(res, "lats", "gpt-3.5")
    assert r["display"] == "> 10" and r["bound_vs"] == "gpt-4"
    assert r["support"] >= 0.95
    if method == "fit-loglinear":
        # the straight line through two points extrapolates to 10^(35.7/18.9) ≈ 77: a
        # labelled model-based number beside the bound, never printed as the bound
        assert r["ceg_model"] == pytest.approx(10 ** ((0.838 - 0.481) / (0.670 - 0.481)), rel=1e-6)
        assert "extrapolated" in r["flags"]
