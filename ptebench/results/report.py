"""One self-contained HTML report of a run: the CEG table, the pictures, the episodes'
outcomes with one failing and one passing transcript per scaffold × model, the manifest.

Figures are drawn with matplotlib (Agg) and embedded as base64 PNGs, so the file opens
anywhere with no network and no sidecar files.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptebench.errors import UserError
from ptebench.records import Episode
from ptebench.results.ceg import (
    COLUMNS,
    FLAG_HELP,
    CEGOptions,
    CEGResult,
    format_model,
    format_truth,
)
from ptebench.results.table import LoadedTable

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1100px;color:#222;background:#fff}
h1{font-size:26px;margin-bottom:4px} h2{font-size:19px;margin-top:32px;border-bottom:1px solid
#ddd;padding-bottom:4px} table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left} th{background:#f2f2f2}
tr.summary td{background:#fafae6;font-style:italic} .flag{display:inline-block;background:#fde2c4;
border-radius:3px;padding:0 4px;margin:1px;font-size:11px} .banner{background:#b00020;color:#fff;
padding:10px 14px;font-weight:bold;font-size:16px;border-radius:4px} .meta{color:#555;font-size:13px}
img{max-width:100%;border:1px solid #eee} pre{background:#f6f6f6;padding:10px;font-size:11px;
overflow:auto;max-height:420px} details.transcript{border:1px solid #ccc;border-radius:4px;
padding:4px 10px;margin:8px 0} details.transcript h1{font-size:18px} details.transcript h3{
font-size:13px;background:#eef3fb;padding:3px 6px;margin:14px 0 4px}
"""

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
           "#7b4173", "#3182bd")


def scaffold_colors(table: pd.DataFrame, baseline: str) -> dict[str, str]:
    """One colour per scaffold for the whole report (the baseline is black everywhere)."""
    names = sorted({str(x) for x in table["scaffold"]}) if len(table) else []
    out = {baseline: "#000000"}
    for i, n in enumerate(x for x in names if x != baseline):
        out[n] = PALETTE[i % len(PALETTE)]
    return out


def estimate_for_report(loaded: LoadedTable, opts: CEGOptions) -> CEGResult:
    """The CEG estimate a report shows; when there is nothing to estimate (every episode an
    error, no baseline) an empty result whose note says why, so the report still renders."""
    from ptebench.results.ceg import estimate

    try:
        return estimate(loaded, opts)
    except UserError as e:
        simulated = bool(len(loaded.table)) and bool(loaded.table["simulated"].any())
        return CEGResult(pd.DataFrame(columns=COLUMNS), pd.DataFrame(), opts, loaded.source,
                         loaded.excluded_errors, [*loaded.notes, f"no CEG: {e}"],
                         simulated=simulated)


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _positive(col: Any) -> bool:
    return bool(np.nansum(np.asarray(col, dtype=float) > 0))


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _num(v: Any, digits: int = 3) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return _esc(v)
    if math.isnan(f):
        return "–"
    if math.isinf(f):
        return "∞"
    return f"{f:.{digits}g}"


def ceg_table_html(result: CEGResult) -> str:
    """The paper's Table 1 columns, one row per enhanced model plus the labelled summaries."""
    if not len(result.rows):
        return "<p class='meta'>No CEG rows: " + _esc("; ".join(result.notes) or
                                                      "no enhanced scaffold was run") + "</p>"
    sim = bool(result.rows["simulated"].astype(bool).any())
    head = ("<tr><th>enhancement</th><th>family</th><th>model</th><th>CEG [95% interval]</th>"
            "<th>fitted extrapolation</th>" + ("<th>true CEG (sim law)</th>" if sim else "")
            + "<th>flags</th><th>score (enh / base)</th><th>one-time cost (× training)</th>"
            "<th>inference-cost multiple</th><th>break-even tasks</th></tr>")
    body = []
    for _, r in result.rows.iterrows():
        cls = "" if str(r["row"]) == "model" else ' class="summary"'
        flags = "".join(f'<span class="flag" title="{_esc(FLAG_HELP.get(f, ""))}">{_esc(f)}</span>'
                        for f in r["flags"]) or "–"
        scores = f"{_num(r.get('p_enhanced'))} / {_num(r.get('p_baseline'))}"
        true = ""
        if sim:
            tn = str(r.get("true_note") or "")
            tm = str(r.get("true_method") or "")
            tv = format_truth(r) if str(r["row"]) == "model" else ""
            small = "; ".join(x for x in (tm, tn) if x)
            true = (f"<td title='{_esc(small)}'>{_esc(tv) or '–'}"
                    + (f"<br><small>{_esc(small)}</small>" if small and str(r["row"]) == "model"
                       else "") + "</td>")
        be = _num(r.get("break_even_tasks"))
        be_note = str(r.get("break_even_note") or "")
        if be == "∞":
            be = "never"
        if be_note and str(r["row"]) == "model":
            be += f"<br><small>{_esc(be_note)}</small>"
        body.append(
            f"<tr{cls}><td>{_esc(r['scaffold'])}</td><td>{_esc(r['family'])}</td>"
            f"<td>{_esc(r['model'])}</td><td>{_esc(r['display'])}</td>"
            f"<td>{_esc(format_model(r)) or '–'}</td>{true}<td>{flags}</td>"
            f"<td>{scores}</td><td>{_num(r.get('one_time_cost'))}</td>"
            f"<td>{_num(r.get('inference_multiple'))}</td><td>{be}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def scaling_figure(result: CEGResult, colors: dict[str, str] | None = None) -> str:
    """Figure-1 style: the baseline curve with fit and band; each scaffold's points moved
    horizontally from their own compute to their compute-equivalent. Only point estimates
    are drawn at their C'; a bound row gets an open triangle at the bound (never a point
    extrapolated past the curve)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if not result.curves:
        return "<p class='meta'>No baseline curve to draw: " + _esc(
            "; ".join(result.notes) or "no family has baseline episodes") + "</p>"
    out = []
    rows = result.rows.loc[result.rows["row"] == "model"] if len(result.rows) else result.rows
    colors = colors or {}
    for curve in result.curves:
        fig, ax = plt.subplots(figsize=(9, 4.8))
        if curve.grid:
            grid = np.array(curve.grid)
            if curve.lo:
                ax.fill_between(10**grid, curve.lo, curve.hi, color="0.88",
                                label="baseline fit, 95% band")
            ax.plot(10**grid, curve.fit, color="0.3", lw=1.5, label=f"baseline fit ({curve.method})")
        ax.scatter(10 ** np.array(curve.x_points), curve.y_points, color="black", zorder=5,
                   label=f"baseline: {result.options.baseline}")
        fam = rows.loc[rows["family"] == curve.family] if len(rows) else rows
        handles: list[Any] = []
        for i, (scaffold, g) in enumerate(fam.groupby("scaffold")):
            col = colors.get(str(scaffold), PALETTE[i % len(PALETTE)])
            x_own = g["train_flop"].astype(float).to_numpy()
            ax.scatter(x_own, g["p_enhanced"], color=col, marker="o", facecolors="none")
            pt = g.loc[(g["bound"].astype(str) == "") & np.isfinite(g["ceg"].astype(float))]
            x_eq = pt["train_flop"].astype(float).to_numpy() * pt["ceg"].astype(float).to_numpy()
            ax.scatter(x_eq, pt["p_enhanced"], color=col, marker="D")
            for xo, xe, y in zip(pt["train_flop"], x_eq, pt["p_enhanced"], strict=True):
                ax.annotate("", xy=(xe, y), xytext=(float(xo), y),
                            arrowprops={"arrowstyle": "->", "color": col, "lw": 0.8})
            bd = g.loc[(g["bound"].astype(str) != "") & np.isfinite(g["ceg"].astype(float))]
            for _, r in bd.iterrows():
                xb = float(r["train_flop"]) * float(r["ceg"])
                ax.scatter([xb], [r["p_enhanced"]], color=col,
                           marker=">" if r["bound"] == "lower" else "<", facecolors="none")
            handles.append(Line2D([], [], color=col, marker="D", ls="", label=str(scaffold)))
        ax.set_xscale("log")
        ax.set_xlabel("training compute (FLOP)")
        ax.set_ylabel("mean score")
        ax.set_ylim(-0.02, 1.02)
        title = f"family {curve.family}: baseline scaling and compute-equivalent gains"
        if result.simulated:
            title += "  [SIMULATED]"
        ax.set_title(title, fontsize=11)
        base_handles, _ = ax.get_legend_handles_labels()
        key = [Line2D([], [], color="0.4", marker="o", mfc="none", ls="", label="at own compute"),
               Line2D([], [], color="0.4", marker="D", ls="", label="at compute-equivalent C'"),
               Line2D([], [], color="0.4", marker=">", mfc="none", ls="",
                      label="bound (> / <): C' beyond the range")]
        ax.legend(handles=[*base_handles, *key, *handles], fontsize=8, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
        ax.grid(alpha=0.3)
        out.append(_png(fig))
    return "".join(out)


def pareto_figure(table: pd.DataFrame, result: CEGResult,
                  colors: dict[str, str] | None = None) -> str:
    """Accuracy vs inference FLOPs (and $) per task, per (model, scaffold), with the frontier."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_spec = [("inference_flop", "inference FLOPs per task (epoch-comparable)")]
    if "cost_usd" in table.columns and _positive(table["cost_usd"]):
        axes_spec.append(("cost_usd", "$ per task"))
    if not len(table):
        return "<p class='meta'>No scored episodes: no cost–accuracy frontier.</p>"
    if "inference_flop" not in table.columns or not _positive(table["inference_flop"]):
        return "<p>No inference FLOPs were logged: no cost–accuracy frontier.</p>"
    per = table.groupby(["family", "model", "scaffold"]).agg(
        score=("score", "mean"), inference_flop=("inference_flop", "mean"),
        **({"cost_usd": ("cost_usd", "mean")} if len(axes_spec) > 1 else {})).reset_index()
    fig, axs = plt.subplots(1, len(axes_spec), figsize=(6.5 * len(axes_spec), 4.6), squeeze=False)
    colors = colors or {}
    for ax, (col, label) in zip(axs[0], axes_spec, strict=True):
        d = per.loc[per[col] > 0].sort_values(col)
        for i, (scaffold, g) in enumerate(d.groupby("scaffold")):
            ax.scatter(g[col], g["score"], color=colors.get(str(scaffold), PALETTE[i % len(PALETTE)]),
                       label=scaffold, s=22)
        best, front = -1.0, []
        for _, r in d.iterrows():  # cheapest first: keep points that beat every cheaper one
            if r["score"] > best:
                best = r["score"]
                front.append((r[col], r["score"], str(r["model"]).split("/")[-1]))
        if front:
            fx, fy, _ = zip(*front, strict=True)
            ax.step(fx, fy, where="post", color="0.2", lw=1, ls="--", label="Pareto frontier")
            # only the frontier is labelled, alternating above and below: labels never pile up
            for j, (xv, yv, nm) in enumerate(front):
                ax.annotate(nm, (xv, yv), fontsize=7, xytext=(4, 6 if j % 2 else -10),
                            textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("mean score")
        ax.grid(alpha=0.3)
    handles, labels = axs[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5),
               frameon=False)
    fig.suptitle("cost–accuracy frontier" + ("  [SIMULATED]" if result.simulated else ""))
    return _png(fig)


def heatmap_figure(table: pd.DataFrame, max_tasks: int = 80) -> str:
    """Per-task success rate (rows: tasks, hardest at the bottom; columns: model × scaffold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not len(table):
        return "<p class='meta'>No scored episodes: no per-task picture.</p>"
    piv = table.pivot_table(index="task_id", columns=["scaffold", "model"], values="score",
                            aggfunc="mean")
    firsts = table.groupby("model")["train_flop"].first()
    flop = dict(zip(map(str, firsts.index), np.asarray(firsts, float), strict=True))
    cols: list[tuple[str, str]] = [(str(s), str(m)) for s, m in piv.columns]
    piv = piv.reindex(sorted(cols, key=lambda c: (c[0], flop.get(c[1], 0.0))), axis=1)
    order = piv.mean(axis=1).sort_values(ascending=False).index
    note = ""
    if len(order) > max_tasks:
        order = order[np.linspace(0, len(order) - 1, max_tasks).astype(int)]
        note = f"<p class='meta'>{max_tasks} of {len(piv)} tasks shown, evenly spread by difficulty.</p>"
    piv = piv.loc[order]
    fig, ax = plt.subplots(figsize=(min(2 + 0.45 * piv.shape[1], 14), min(2 + 0.14 * len(piv), 14)))
    im = ax.imshow(piv.to_numpy(float), aspect="auto", cmap="viridis", vmin=0, vmax=1,
                   interpolation="nearest")
    ax.set_xticks(range(piv.shape[1]))
    ax.set_xticklabels([f"{s} · {str(m).split('/')[-1]}" for s, m in piv.columns], rotation=60,
                       ha="right", fontsize=7)
    ax.set_yticks(range(len(piv)))
    ax.set_yticklabels([str(t) for t in piv.index], fontsize=5 if len(piv) > 40 else 7)
    fig.colorbar(im, ax=ax, label="success rate over epochs")
    ax.set_title("per-task success")
    return _png(fig) + note


def _frame_html(frame: pd.DataFrame | None) -> str:
    if frame is None or not len(frame):
        return ""
    from ptebench.results.export import readable_column, readable_value

    head = "".join(f"<th>{_esc(readable_column(str(c)))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_esc(readable_value(v))}</td>" for v in r) + "</tr>"
                   for r in frame.itertuples(index=False))
    return f"<table><tr>{head}</tr>{rows}</table>"


def episodes_html(run_dir: Path, max_reasons: int = 6) -> str:
    """Per scaffold × model: status counts, the error/limit reasons with counts, and one
    failing and one passing transcript rendered in the page (anchored from the table)."""
    from markdown_it import MarkdownIt

    from ptebench.results import show
    from ptebench.results.store import load_episodes
    from ptebench.results.transcript import TranscriptError, TranscriptStore

    episodes = load_episodes(run_dir)
    store = TranscriptStore(run_dir)
    have = store.ids() if store.exists() else set()
    md = MarkdownIt("commonmark", {"html": True})
    cells: dict[tuple[str, str], list[Episode]] = {}
    for e in episodes:
        cells.setdefault((e.spec.scaffold_label, e.spec.model), []).append(e)
    head = ("<tr><th>scaffold</th><th>model</th><th>episodes</th><th>ok / limit / error</th>"
            "<th>error and limit reasons (count)</th><th>transcripts</th></tr>")
    rows, shown = [], []
    for (scaffold, model), eps in sorted(cells.items()):
        counts = {k: sum(1 for e in eps if e.status == k) for k in ("ok", "limit", "error")}
        reasons: dict[str, int] = {}
        for e in eps:
            if e.status != "ok":
                r = show.one_line_reason(e)
                reasons[r] = reasons.get(r, 0) + 1
        top = sorted(reasons.items(), key=lambda x: (-x[1], x[0]))
        rtext = "<br>".join(f"{_esc(r)} ({n})" for r, n in top[:max_reasons]) or "–"
        if len(top) > max_reasons:
            rtext += f"<br>… {len(top) - max_reasons} more reasons"
        links = []
        rank = {"error": 0, "limit": 1, "ok": 2}  # the failing example: an error first
        ordered = sorted(eps, key=lambda e: rank[e.status])
        for label, want in (("failing", False), ("passing", True)):
            ex = next((e for e in ordered if show.passed(e) == want and e.spec.episode_id in have),
                      None)
            if ex is None:
                continue
            anchor = f"ep-{ex.spec.episode_id}"
            links.append(f'<a href="#{anchor}">{label}</a>')
            shown.append((anchor, label, ex))
        rows.append(f"<tr><td>{_esc(scaffold)}</td><td>{_esc(model)}</td><td>{len(eps)}</td>"
                    f"<td>{counts['ok']} / {counts['limit']} / {counts['error']}</td>"
                    f"<td>{rtext}</td><td>{' · '.join(links) or '–'}</td></tr>")
    parts = [f"<table>{head}{''.join(rows)}</table>"]
    if not have:
        parts.append(f"<p class='meta'>{_esc(store.path)}: missing: no transcripts to show.</p>")
    for anchor, label, e in shown:
        try:
            t = store.get(e.spec.episode_id)
        except TranscriptError as err:
            parts.append(f"<p class='meta'>{_esc(err)}</p>")
            continue
        parts.append(
            f"<details class='transcript' id='{anchor}'><summary>{label} transcript: "
            f"{_esc(e.spec.scaffold_label)} · {_esc(e.spec.model)} · {_esc(show.task_label(e))} "
            f"· epoch {e.spec.epoch} · {_esc(show.one_line_reason(e) if label == 'failing' else 'passed')}"
            f"</summary>{md.render(show.render_markdown(e, t, collapsible=True))}</details>")
    store.close()
    return "".join(parts)


def build_report(loaded: LoadedTable, result: CEGResult, title: str = "") -> str:
    """The whole HTML document."""
    o = result.options
    name = title or (loaded.manifest or {}).get("name") or Path(loaded.source).name
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>ptebench report: "
             f"{_esc(name)}</title><style>{CSS}</style></head><body>",
             f"<h1>ptebench report: {_esc(name)}</h1>"]
    if result.simulated:
        parts.append(f"<div class='banner'>{_esc(result.banner)}</div>")
    parts.append(
        f"<p class='meta'>source {_esc(loaded.source)} · CEG method <b>{_esc(o.method)}</b> · "
        f"baseline <b>{_esc(o.baseline)}</b> · {o.n_boot} bootstrap replicates "
        f"(resampling {', '.join(o.resample)}; seed {o.seed}) · inference FLOPs are "
        f"epoch-comparable (2·N·tokens) · {result.excluded_errors} error episode(s) excluded · "
        f"{len(loaded.table)} scored episodes</p>")
    if loaded.excluded_errors:
        from ptebench.records import FAILURE_CLASSES

        by = " · ".join(f"{c} {loaded.failures.get(c, 0)}" for c in FAILURE_CLASSES)
        parts.append(f"<p class='meta'>error episodes by failure class: {_esc(by)}</p>")
    parts.append("<h2>Compute-equivalent gain (Table-1 style)</h2>")
    parts.append(ceg_table_html(result))
    parts.append("<p class='meta'>CEG depends on scale: read it per model; the geometric mean "
                 "is a labelled summary over point estimates only (bounds are counted, never "
                 "averaged). '&gt; x' / '&lt; x' is the bound the data support: a baseline size "
                 f"the enhanced score beats (or stays under) in ≥ {o.bound_level:.0%} of the "
                 "bootstrap replicates; the fitted curve's extrapolation is its own column, "
                 "a model-based guess, not a measurement. Break-even assumes a model trained "
                 f"with C' costs (C'/C)^{o.inference_scaling:g} × the baseline per task"
                 + (" (compute-optimal)" if o.inference_scaling == 0.5 else "") + ".</p>")
    parts.append("<ul class='meta'>" + "".join(
        f"<li><b>{_esc(k)}</b>: {_esc(v)}</li>" for k, v in FLAG_HELP.items()) + "</ul>")
    if len(result.combos):
        parts.append("<h2>Combined enhancements vs the product of their parts</h2>")
        parts.append(_frame_html(result.combos))
    if result.safety is not None:
        parts.append("<h2>Safety-buffer view</h2>" + _frame_html(result.safety)
                     + _frame_html(result.crossings))
    colors = scaffold_colors(loaded.table, o.baseline)
    parts.append("<h2>Scaling</h2>" + scaling_figure(result, colors))
    parts.append("<h2>Cost and accuracy</h2>" + pareto_figure(loaded.table, result, colors))
    parts.append("<h2>Per-task success</h2>" + heatmap_figure(loaded.table))
    run_dir = Path(loaded.source)
    if run_dir.is_dir() and (run_dir / "episodes.jsonl").exists():
        parts.append("<h2>Episodes: outcomes, reasons and transcripts</h2>" + episodes_html(run_dir))
    row_notes = []
    if len(result.rows):
        for _, r in result.rows.loc[(result.rows["note"].astype(str) != "")
                                    & (result.rows["row"].astype(str) == "model")].iterrows():
            row_notes.append(f"{r['scaffold']} on {r['model']}: {r['note']}")
    notes = list(dict.fromkeys([*result.notes, *loaded.notes, *row_notes]))
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>Run manifest</h2>")
    if loaded.manifest is not None:
        parts.append(f"<pre>{_esc(json.dumps(loaded.manifest, indent=2))}</pre>")
    else:
        parts.append("<p class='meta'>Input was a table, not a run directory: no manifest.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(loaded: LoadedTable, result: CEGResult, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_report(loaded, result))
    return out
