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

from ptebench.records import Episode
from ptebench.results.ceg import CEGResult
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

FLAG_HELP = {
    "extrapolated": "C' is more than 0.3 OOM past the largest baseline model: read as a lower bound",
    "lower_bound_only": "C' more than 1 OOM past, or > 5% of bootstrap inversions failed",
    "below_range": "the enhanced score is below the smallest baseline model: an upper bound",
    "non_monotone": "the baseline does not rise with compute (Kendall τ): a high CEG may only "
                    "mean scaling does not help",
    "floor_or_ceiling": "the enhanced score is within 5 points of chance or of 100%",
    "disagree": "fit-logit and fit-loglinear differ by more than 2×",
    "oracle": "some episodes used oracle (ground-truth) feedback",
}


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
    head = ("<tr><th>enhancement</th><th>family</th><th>model</th><th>CEG [95% interval]</th>"
            "<th>flags</th><th>score (enh / base)</th><th>one-time cost (× training)</th>"
            "<th>inference-cost multiple</th><th>break-even tasks</th></tr>")
    body = []
    for _, r in result.rows.iterrows():
        cls = "" if str(r["row"]) == "model" else ' class="summary"'
        flags = "".join(f'<span class="flag" title="{_esc(FLAG_HELP.get(f, ""))}">{_esc(f)}</span>'
                        for f in r["flags"]) or "–"
        scores = f"{_num(r.get('p_enhanced'))} / {_num(r.get('p_baseline'))}"
        body.append(
            f"<tr{cls}><td>{_esc(r['scaffold'])}</td><td>{_esc(r['family'])}</td>"
            f"<td>{_esc(r['model'])}</td><td>{_esc(r['display'])}</td><td>{flags}</td>"
            f"<td>{scores}</td><td>{_num(r.get('one_time_cost'))}</td>"
            f"<td>{_num(r.get('inference_multiple'))}</td>"
            f"<td>{_num(r.get('break_even_tasks'))}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def scaling_figure(result: CEGResult) -> str:
    """Figure-1 style: the baseline curve with fit and band; each scaffold's points moved
    horizontally from their own compute to their compute-equivalent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    rows = result.rows.loc[result.rows["row"] == "model"]
    for curve in result.curves:
        fig, ax = plt.subplots(figsize=(8, 4.8))
        if curve.grid:
            grid = np.array(curve.grid)
            if curve.lo:
                ax.fill_between(10**grid, curve.lo, curve.hi, color="0.85",
                                label="baseline fit, 95% band")
            ax.plot(10**grid, curve.fit, color="0.3", lw=1.5, label=f"baseline fit ({curve.method})")
        ax.scatter(10 ** np.array(curve.x_points), curve.y_points, color="black", zorder=5,
                   label=f"baseline: {result.options.baseline}")
        fam = rows.loc[rows["family"] == curve.family]
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (scaffold, g) in enumerate(fam.groupby("scaffold")):
            col = colors[i % len(colors)]
            x_own = g["train_flop"].astype(float).to_numpy()
            ax.scatter(x_own, g["p_enhanced"], color=col, marker="o", facecolors="none",
                       label=f"{scaffold} at its own compute")
            eq = g.loc[np.isfinite(g["log10_c_equiv"].astype(float))]
            if len(eq):
                x_eq = 10 ** eq["log10_c_equiv"].astype(float).to_numpy()
                ax.scatter(x_eq, eq["p_enhanced"], color=col, marker="D",
                           label=f"{scaffold} at compute-equivalent")
                for xo, xe, y in zip(eq["train_flop"], x_eq, eq["p_enhanced"], strict=True):
                    ax.annotate("", xy=(xe, y), xytext=(float(xo), y),
                                arrowprops={"arrowstyle": "->", "color": col, "lw": 0.8})
        ax.set_xscale("log")
        ax.set_xlabel("training compute (FLOP)")
        ax.set_ylabel("mean score")
        ax.set_ylim(-0.02, 1.02)
        title = f"family {curve.family}: baseline scaling and compute-equivalent gains"
        if result.simulated:
            title += "  [SIMULATED]"
        ax.set_title(title, fontsize=11)
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
        out.append(_png(fig))
    return "".join(out)


def pareto_figure(table: pd.DataFrame, result: CEGResult) -> str:
    """Accuracy vs inference FLOPs (and $) per task, per (model, scaffold), with the frontier."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_spec = [("inference_flop", "inference FLOPs per task (epoch-comparable)")]
    if "cost_usd" in table.columns and _positive(table["cost_usd"]):
        axes_spec.append(("cost_usd", "$ per task"))
    if "inference_flop" not in table.columns or not _positive(table["inference_flop"]):
        return "<p>No inference FLOPs were logged: no cost–accuracy frontier.</p>"
    per = table.groupby(["family", "model", "scaffold"]).agg(
        score=("score", "mean"), inference_flop=("inference_flop", "mean"),
        **({"cost_usd": ("cost_usd", "mean")} if len(axes_spec) > 1 else {})).reset_index()
    fig, axs = plt.subplots(1, len(axes_spec), figsize=(6.5 * len(axes_spec), 4.6), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (col, label) in zip(axs[0], axes_spec, strict=True):
        d = per.loc[per[col] > 0].sort_values(col)
        for i, (scaffold, g) in enumerate(d.groupby("scaffold")):
            ax.scatter(g[col], g["score"], color=colors[i % len(colors)], label=scaffold)
            for _, r in g.iterrows():
                ax.annotate(str(r["model"]).split("/")[-1], (r[col], r["score"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
        best, front = -1.0, []
        for _, r in d.iterrows():  # cheapest first: keep points that beat every cheaper one
            if r["score"] > best:
                best = r["score"]
                front.append((r[col], r["score"]))
        if front:
            fx, fy = zip(*front, strict=True)
            ax.step(fx, fy, where="post", color="0.2", lw=1, ls="--", label="Pareto frontier")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("mean score")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("cost–accuracy frontier" + ("  [SIMULATED]" if result.simulated else ""))
    return _png(fig)


def heatmap_figure(table: pd.DataFrame, max_tasks: int = 80) -> str:
    """Per-task success rate (rows: tasks, hardest at the bottom; columns: model × scaffold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_num(v) if isinstance(v, float) else _esc(v)}</td>"
                                    for v in r) + "</tr>" for r in frame.itertuples(index=False))
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
    parts.append("<h2>Compute-equivalent gain (Table-1 style)</h2>")
    parts.append(ceg_table_html(result))
    parts.append("<p class='meta'>CEG depends on scale: read it per model; the geometric mean "
                 "is a labelled summary. '&gt; x' is a lower bound, '&lt; x' an upper bound.</p>")
    parts.append("<ul class='meta'>" + "".join(
        f"<li><b>{_esc(k)}</b>: {_esc(v)}</li>" for k, v in FLAG_HELP.items()) + "</ul>")
    if len(result.combos):
        parts.append("<h2>Combined enhancements vs the product of their parts</h2>")
        parts.append(_frame_html(result.combos))
    if result.safety is not None:
        parts.append("<h2>Safety-buffer view</h2>" + _frame_html(result.safety)
                     + _frame_html(result.crossings))
    parts.append("<h2>Scaling</h2>" + scaling_figure(result))
    parts.append("<h2>Cost and accuracy</h2>" + pareto_figure(loaded.table, result))
    parts.append("<h2>Per-task success</h2>" + heatmap_figure(loaded.table))
    run_dir = Path(loaded.source)
    if run_dir.is_dir() and (run_dir / "episodes.jsonl").exists():
        parts.append("<h2>Episodes: outcomes, reasons and transcripts</h2>" + episodes_html(run_dir))
    notes = list(result.notes) + list(loaded.notes)
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
