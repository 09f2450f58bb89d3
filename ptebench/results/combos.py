"""Composability: a combined enhancement's CEG beside the product of its parts' CEGs.

A scaffold counts as a combination of enhancements A and B when
  * its label is ``A+B`` (any number of parts joined by '+'), or
  * its ``components`` column says ``A+B`` (``table_from_episodes`` writes it for a scaffold
    whose params name an ``inner`` scaffold: best_of_n with inner=reflexion → best_of_n+reflexion),
and every part is itself a scaffold of the same family run on the same model. The paper's open
question is whether CEGs multiply; ratio = combined / product (< 1: diminishing returns).
A part that itself wraps an inner scaffold X (a plain ``best_of_n`` samples ``cot`` by default,
so its components are ``best_of_n+cot``) is credited with its own effect only,
CEG(part)/CEG(X), when X was run too.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ptebench.results.ceg import CEGOptions

COLUMNS = ["family", "model", "combined", "parts", "ceg_combined", "ceg_parts", "terms",
           "ceg_product", "ratio", "ratio_lo", "ratio_hi", "flags"]


def parts_of(scaffold: str, components: str, present: set[str]) -> list[str] | None:
    """The enhancements a scaffold combines, or None when it is not a recognised combination."""
    for spec in (components, scaffold):
        if spec and "+" in spec:
            parts = [p.strip() for p in spec.split("+") if p.strip()]
            if len(parts) >= 2 and all(p in present for p in parts) and scaffold not in parts:
                return parts
    return None


def combos(rows: pd.DataFrame, table: pd.DataFrame,
           reps: dict[tuple[str, str, str], np.ndarray], opts: CEGOptions) -> pd.DataFrame:
    """One row per (family, model, combined scaffold) whose parts all have CEG rows."""
    if not len(rows) or "row" not in rows.columns:
        return pd.DataFrame(columns=COLUMNS)
    per_model = rows.loc[rows["row"] == "model"]
    comp = table.groupby(["family", "scaffold"])["components"].first()
    scaffolds = {str(f): {str(s) for s in g} for f, g in
                 table.groupby("family")["scaffold"].unique().items()}
    out: list[dict[str, Any]] = []
    for key, spec in comp.items():
        family, scaffold = cast(tuple[str, str], key)
        present = scaffolds[str(family)]
        parts = parts_of(str(scaffold), str(spec), present)
        if parts is None:
            continue
        fam_rows = per_model.loc[per_model["family"] == family]
        # a part that is itself "outer over inner X" (best_of_n samples cot by default) is
        # credited only with its own effect: CEG(part) / CEG(X)
        inner = {p: x for p in parts
                 if (x := inner_of(p, str(comp.get((family, p), "")), present)) is not None}
        for _, r in fam_rows.loc[fam_rows["scaffold"] == scaffold].iterrows():
            out.append(_record(r, family, scaffold, parts, inner, fam_rows, reps, opts))
    return pd.DataFrame(out, columns=COLUMNS)


def inner_of(scaffold: str, components: str, present: set[str]) -> str | None:
    """X when a scaffold is "scaffold over inner X" (components 'scaffold+X', X present)."""
    bits = [b.strip() for b in components.split("+")] if components else []
    if len(bits) == 2 and bits[0] == scaffold and bits[1] in present and bits[1] != scaffold:
        return bits[1]
    return None


def _record(r: pd.Series, family: str, scaffold: str, parts: list[str],
            inner: dict[str, str], fam_rows: pd.DataFrame,
            reps: dict[tuple[str, str, str], np.ndarray], opts: CEGOptions) -> dict[str, Any]:
    model = str(r["model"])

    def log_ceg(p: str) -> float:
        if p == opts.baseline:
            return 0.0  # the baseline is a part with CEG 1 by definition
        # the model-based value: the same quantity as the paired replicates below
        col = "ceg_model" if "ceg_model" in fam_rows.columns else "ceg"
        hit = fam_rows.loc[(fam_rows["scaffold"] == p) & (fam_rows["model"] == model), col]
        v = float(hit.iloc[0]) if len(hit) else math.nan
        return math.log10(v) if v > 0 else math.nan

    terms = [t for p in parts for t in ([(p, 1)] + ([(inner[p], -1)] if p in inner else []))]
    part_logs = {p: log_ceg(p) for p, _ in terms}
    cegs = [10 ** (part_logs[p] - (part_logs[inner[p]] if p in inner else 0.0)) for p in parts]
    product = float(10 ** sum(sign * part_logs[p] for p, sign in terms))
    combined = float(np.asarray(r["ceg_model"] if "ceg_model" in r.index else r["ceg"], float))
    flags = set(r["flags"])
    for p, _ in terms:
        for fl in fam_rows.loc[(fam_rows["scaffold"] == p) & (fam_rows["model"] == model), "flags"]:
            flags |= set(fl)
    rec: dict[str, Any] = {
        "family": family, "model": model, "combined": scaffold, "parts": "+".join(parts),
        "ceg_combined": combined, "ceg_parts": cegs,
        "terms": " ".join(f"{'+' if sg > 0 else '-'}{p}" for p, sg in terms),
        "ceg_product": product, "ratio": combined / product if product > 0 else math.nan,
        "ratio_lo": math.nan, "ratio_hi": math.nan, "flags": sorted(flags),
    }
    keyed = [((family, p, model), sg) for p, sg in terms if p != opts.baseline]
    if keyed and (family, scaffold, model) in reps and all(k in reps for k, _ in keyed):
        # paired replicates: log ratio = log combined − Σ ± log parts, on the same tasks
        lr = reps[(family, scaffold, model)] - sum(sg * reps[k] for k, sg in keyed)
        lr = lr[np.isfinite(lr)]
        if len(lr):
            q = (1 - opts.ci) / 2 * 100
            rec["ratio_lo"] = float(10 ** np.percentile(lr, q))
            rec["ratio_hi"] = float(10 ** np.percentile(lr, 100 - q))
    return rec
