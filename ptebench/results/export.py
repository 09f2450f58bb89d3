"""CEG results out: a terminal table, JSON, CSV and Parquet.

Every format carries the same columns, including ``flags`` (a list in JSON, ';'-joined in
CSV/Parquet/table), ``simulated`` and ``label`` (the SIMULATED banner on sim rows), so a flag
or a simulated result can never be lost by choosing a format.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptebench.errors import UserError, require
from ptebench.results.ceg import CEGResult

FORMATS = ("table", "json", "csv", "parquet")


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        values: list[Any] = out[c].tolist()
        if any(isinstance(v, list) for v in values):
            out[c] = [";".join(map(str, v)) if isinstance(v, list) else v for v in values]
    return out


def _clean(v: Any) -> Any:
    """JSON-safe value: inf → "inf", NaN → null, numpy scalars → Python."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _records(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    if df is None:
        return []
    return [{k: _clean(v) for k, v in r.items()} for r in df.to_dict(orient="records")]


def to_json(result: CEGResult) -> str:
    doc = {**result.meta(), "rows": _records(result.rows), "combos": _records(result.combos),
           "safety": _records(result.safety), "crossings": _records(result.crossings)}
    return json.dumps(doc, indent=2, default=str)


def to_csv(result: CEGResult) -> str:
    buf = io.StringIO()
    frame = _flat(result.rows)
    if result.simulated and "label" in frame.columns:
        frame["label"] = frame["label"].replace("", result.banner)
    frame.to_csv(buf, index=False)
    return buf.getvalue()


def export(result: CEGResult, path: str | Path, fmt: str | None = None) -> Path:
    """Write the CEG rows to path in fmt (default: from the suffix).

    Parquet also stores the run metadata (method, baseline, banner) in the file's metadata.

    Raises:
        UserError: unknown format; MissingExtra when pyarrow is missing for Parquet.
    """
    p = Path(path)
    fmt = fmt or {".json": "json", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(
        p.suffix.lower(), "")
    if fmt == "json":
        p.write_text(to_json(result))
    elif fmt == "csv":
        p.write_text(to_csv(result))
    elif fmt == "parquet":
        require("pyarrow", "parquet")
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = _flat(result.rows)
        tbl = pa.Table.from_pandas(frame, preserve_index=False)
        meta = dict(tbl.schema.metadata or {})
        meta[b"ptebench.ceg"] = json.dumps(_clean_meta(result.meta())).encode()
        pq.write_table(tbl.replace_schema_metadata(meta), p)
    else:
        raise UserError(f"--format/--out: cannot export {p} as {fmt!r}; accepted: json, csv, "
                        "parquet (or a .json/.csv/.parquet file name)")
    return p


def _clean_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: _clean(v) for k, v in meta.items()}


def _width(width: int | None) -> int:
    """The terminal width: the argument, else $COLUMNS, else the terminal's, else 100."""
    if width:
        return width
    import os
    import shutil

    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return shutil.get_terminal_size((100, 24)).columns


def render(result: CEGResult, width: int | None = None) -> str:
    """The terminal table (rich), with the SIMULATED banner first when it applies.

    Built to read at 100 columns: no vertical rules, the family in the heading when there is
    one, flags as two-letter codes with a legend of the codes that occur, compact numbers,
    every cell escaped (a label like ``react[max_steps=3]`` is text, not markup).
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from ptebench.results.ceg import FLAG_CODES

    w = _width(width)
    console = Console(file=io.StringIO(), width=w, record=True, color_system=None,
                      highlight=False, markup=False, emoji=False)
    if result.simulated:
        console.print(f"*** {result.banner} ***")
    o = result.options
    console.print(f"CEG by {o.method} against baseline {o.baseline!r} "
                  f"({o.n_boot} bootstrap replicates, seed {o.seed}, {o.ci:.0%} interval)")
    rows = result.rows
    families = sorted({str(f) for f in rows["family"]}) if len(rows) else []
    one_family = len(families) <= 1
    sim = bool(len(rows)) and bool(rows["simulated"].astype(bool).any())
    has_model = bool(len(rows)) and any(_model_cell(r) for _, r in rows.iterrows())
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0), show_edge=False,
              title=f"family {families[0]}" if one_family and families else None)
    # (header, justify, max width or None = never wrap); long labels fold, numbers never do
    cols: list[tuple[str, str, int | None]] = []
    if not one_family:
        cols.append(("family", "left", 12))
    cols += [("scaffold", "left", 20), ("model", "left", 16), ("CEG [95%]", "left", None)]
    if has_model:
        cols.append(("fitted", "right", None))
    if sim:
        cols.append(("true", "right", None))
    cols += [("flags", "left", 11), ("P enh/base", "right", None), ("inf×", "right", None),
             ("break even", "right", None)]
    used: list[str] = []
    be_reasons: dict[str, str] = {}
    body: list[list[str]] = []
    for _, r in rows.iterrows():
        flags = [f for f in r["flags"]]
        used += [f for f in flags if f not in used]
        cells = [] if one_family else [str(r["family"])]
        cells += [str(r["scaffold"]), str(r["model"]), str(r["display"])]
        if has_model:
            cells.append(_model_cell(r))
        if sim:
            cells.append(_true_cell(r))
        cells += [" ".join(FLAG_CODES.get(str(f), str(f)) for f in flags) or "-",
                  f"{_fmt(r.get('p_enhanced'), 2)}/{_fmt(r.get('p_baseline'), 2)}"
                  if str(r.get("row")) == "model" else "",
                  _fmt(r.get("inference_multiple"), 2), _be_cell(r, be_reasons)]
        body.append(cells)
    # explicit widths: numbers keep their natural width, labels fold when the sum is too wide
    natural = [max([len(h) for h in name.split()] + [len(c[i]) for c in body])
               for i, (name, _, _) in enumerate(cols)]
    # a column's width includes its one-space right padding
    widths = [(min(n, mx) if mx else n) + 1 for n, (_, _, mx) in zip(natural, cols, strict=True)]
    foldable = [i for i, (name, _, _) in enumerate(cols) if name in ("family", "scaffold", "model")]
    while sum(widths) > w and any(widths[i] > 9 for i in foldable):
        i = max(foldable, key=lambda j: widths[j])
        widths[i] -= 1
    for (name, justify, _), width_i in zip(cols, widths, strict=True):
        t.add_column(name, justify=justify, overflow="fold",  # type: ignore[arg-type]
                     width=width_i)
    for cells in body:
        t.add_row(*cells)
    console.print(t)
    legend = [f"{FLAG_CODES[f]} {f}" for f in used if f in FLAG_CODES]
    if legend:
        console.print("flags: " + ", ".join(legend) + " (help: ptebench ceg --format json "
                      "or docs/results.md)" if len(legend) > 3 else "flags: " + ", ".join(legend))
    if has_model:
        console.print("'> x' / '< x' is the bound the data support (a baseline size beaten, or "
                      f"not reached, in >= {o.bound_level:.0%} of replicates); 'fitted' is "
                      "the fitted curve's extrapolation past the range, not a measurement")
    if sim:
        methods = set(rows["true_method"].astype(str)) if "true_method" in rows.columns else set()
        simulated = any(m.startswith("simulated") for m in methods)
        console.print("true: the CEG the sim law gives for these tasks: in closed form (direct, "
                      "cot, oracle best_of_n; exact), else simulated by playing the scaffold "
                      + (f"against the sim ({o.truth_reps} episodes per task), printed as "
                         "value±95% Monte-Carlo error, or as its 95% MC interval lo–hi when "
                         "that error is half the value or more" if simulated else
                         "(off: --truth-reps 0)"))
        why = _no_form(rows)
        if why:
            console.print("true '-': " + why)
    console.print(f"break-even: tasks until training the C'-model would have been cheaper; "
                  f"a C'-model is assumed to cost (C'/C)^{o.inference_scaling:g} × the "
                  "baseline per task" + (" (compute-optimal)" if o.inference_scaling == 0.5
                                         else ""))
    for code, why in be_reasons.items():
        console.print(f"  {code}: {why}")
    if len(result.combos):
        c = Table(title="combined enhancements vs product of parts", box=box.SIMPLE_HEAD,
                  pad_edge=False, padding=(0, 1))
        for col in ("family", "model", "combined", "CEG combined", "product of parts",
                    "ratio [interval]"):
            c.add_column(col, overflow="fold")
        for _, r in result.combos.iterrows():
            c.add_row(str(r["family"]), str(r["model"]), str(r["combined"]),
                      _fmt(r["ceg_combined"]), _fmt(r["ceg_product"]),
                      f"{_fmt(r['ratio'])} [{_fmt(r['ratio_lo'])}, {_fmt(r['ratio_hi'])}]")
        console.print(c)
    if result.safety is not None:
        console.print(_frame_table("safety-buffer view: verdict per model size", result.safety))
    if result.crossings is not None:
        console.print(_frame_table("smallest model size crossing the threshold",
                                   result.crossings))
    if result.excluded_errors:
        console.print(f"{result.excluded_errors} error episode(s) excluded from the estimate")
    for n in result.notes:
        console.print(n if n.startswith("warning:") else f"note: {n}")
    notes = rows.get("note")
    if notes is not None:
        # summary rows explain themselves in their model column (geomean k/n)
        keep = (notes.astype(str) != "") & (rows["row"].astype(str) == "model")
        for _, r in rows.loc[keep].iterrows():
            console.print(f"note: {r['scaffold']} on {r['model']}: {r['note']}")
    return console.export_text()


def _model_cell(r: pd.Series) -> str:
    """The fitted extrapolation of a bound row (its interval is in the JSON/CSV)."""
    if not str(r.get("bound", "")) or str(r.get("row")) != "model":
        return ""
    return _fmt(r.get("ceg_model")) if _fmt(r.get("ceg_model")) != "-" else ""


def _true_cell(r: pd.Series) -> str:
    if not bool(r.get("simulated")) or str(r.get("row")) != "model":
        return ""
    from ptebench.results.ceg import format_truth

    return format_truth(r)


def _no_form(rows: pd.DataFrame) -> str:
    """Why some sim rows have no true CEG (their distinct notes), or ''."""
    if "true_note" not in rows.columns:
        return ""
    keep = rows["simulated"].astype(bool) & (rows["row"].astype(str) == "model")
    seen: list[str] = []
    for v, n in zip(rows.loc[keep, "true_ceg"], rows.loc[keep, "true_note"].astype(str),
                    strict=True):
        f = _float_or_nan(v)
        if n and math.isnan(f) and n not in seen:
            seen.append(n)
    return "; ".join(seen)


def _float_or_nan(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _be_cell(r: pd.Series, reasons: dict[str, str]) -> str:
    """Break-even as a compact number, 'never', or a short reason code (explained below)."""
    if str(r.get("row")) != "model":
        return ""
    f = _float_or_nan(r.get("break_even_tasks"))
    if math.isinf(f):
        return "never"
    if not math.isnan(f):
        return _fmt(f, 2)
    why = str(r.get("break_even_note") or "")
    if not why:
        return "-"
    codes = {"no inference FLOPs logged": "nf", "C' is only a bound here": "bd",
             "CEG <= 1: no training compute saved": "ns",
             "the one-time cost exceeds the compute saved": "oc"}
    code = codes.get(why, "?")
    reasons[code] = why
    return code


READABLE = {"base_share": "baseline: share passed", "base_met": "baseline meets",
            "best_scaffold": "best scaffold", "best_share": "best: share passed",
            "best_met": "best meets", "buffer_warning": "buffer warning",
            "smallest_model_crossing": "smallest model crossing", "train_flop": "train FLOP"}
"""Column names of the safety tables as a reader says them."""


def readable_column(name: str) -> str:
    return READABLE.get(name, name.replace("_", " "))


def readable_value(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, float | np.floating):
        return _fmt(v)
    return str(v)


def _frame_table(title: str, frame: pd.DataFrame) -> Any:
    from rich import box
    from rich.table import Table

    t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for col in frame.columns:
        t.add_column(readable_column(str(col)), overflow="fold")
    for _, r in frame.iterrows():
        t.add_row(*[readable_value(v) for v in r])
    return t


def _fmt(v: Any, digits: int = 3) -> str:
    """Compact number: 3 (or digits) significant figures, 3.5e9 style past 10^4."""
    if v is None:
        return "-"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(f):
        return "-"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    if f != 0 and (abs(f) >= 1e4 or abs(f) < 1e-3):
        mant, ex = f"{f:.{max(digits - 2, 0)}e}".split("e")
        return f"{mant}e{int(ex)}"
    if abs(f) >= 10 ** digits:
        return f"{f:.0f}"
    return f"{f:.{digits}g}"
