"""Top-level commands of the results room: ceg, report, compare, history.

The lead's ptebench/cli.py calls ``register(app)``. User errors raise UserError subclasses;
the main CLI turns them into a message and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from ptebench.errors import UserError


def ceg_command(
    source: Annotated[list[Path], typer.Argument(help="A run directory, or a CSV/Parquet table "
                                                 "(family, model, train_flop, scaffold, task_id, "
                                                 "score); or several run directories, merged.")],
    baseline: Annotated[str, typer.Option(help="Baseline scaffold (any scaffold present).")] = "direct",
    method: Annotated[str, typer.Option(help="fit-logit | fit-loglinear (alias loglinear) | "
                                        "bound | isotonic.")] = "fit-logit",
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv | parquet.")] = "table",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout "
                                             "(required for parquet).")] = None,
    boot: Annotated[int, typer.Option("--boot", help="Bootstrap replicates (0: none).")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    resample: Annotated[str, typer.Option(help="Bootstrap stages, comma-separated: task "
                                          "(default), family, epoch.")] = "task",
    chance: Annotated[float, typer.Option(help="Chance level f of the task set.")] = 0.0,
    min_sizes: Annotated[int, typer.Option(help="Baseline sizes a fitted curve needs.")] = 3,
    threshold: Annotated[bool, typer.Option("--threshold", help="Add the safety-buffer view.")] = False,
    task_pass: Annotated[float, typer.Option(help="Per-task pass rate for --threshold.")] = 0.10,
    capability: Annotated[float, typer.Option(help="Share of tasks passed for --threshold.")] = 0.50,
) -> None:
    """Compute-equivalent gain per enhanced scaffold and model, with intervals and flags."""
    from ptebench.results import ceg, export
    from ptebench.results.merge import load_sources

    fmt = fmt.lower()
    if fmt not in export.FORMATS:
        raise UserError(f"--format: unknown format {fmt!r}; accepted: {', '.join(export.FORMATS)}")
    if fmt == "parquet" and out is None:
        raise UserError("--format parquet needs --out FILE.parquet")
    if boot < 0:
        raise UserError(f"--boot must be >= 0, got {boot}")
    levels = tuple(x.strip() for x in resample.split(",") if x.strip())
    bad = [x for x in levels if x not in ("family", "task", "epoch")]
    if bad or not levels:
        raise UserError(f"--resample: unknown stage(s) {bad or [resample]}; accepted: "
                        "task, family, epoch (comma-separated)")
    opts = ceg.CEGOptions(baseline=baseline, method=ceg.resolve_method(method), n_boot=boot,
                          seed=seed, resample=levels, chance=chance,  # type: ignore[arg-type]
                          min_sizes=min_sizes)
    loaded = load_sources(source)
    result = ceg.estimate(loaded, opts)
    if threshold:
        from ptebench.results.safety import threshold_view

        result.safety, result.crossings = threshold_view(loaded.table, baseline, task_pass,
                                                         capability)
    if fmt == "table":
        text = export.render(result)
    elif fmt == "json":
        text = export.to_json(result)
    elif fmt == "csv":
        text = export.to_csv(result)
    else:
        assert out is not None
        export.export(result, out, "parquet")
        typer.echo(f"wrote {out}")
        return
    if out is not None:
        out.write_text(text)
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text, nl=not text.endswith("\n"))


def report_command(
    source: Annotated[list[Path], typer.Argument(help="A run directory, or a CSV/Parquet table; "
                                                 "or several run directories, merged.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("report.html"),
    baseline: Annotated[str, typer.Option(help="Baseline scaffold.")] = "direct",
    method: Annotated[str, typer.Option(help="CEG method (see `ptebench ceg`).")] = "fit-logit",
    boot: Annotated[int, typer.Option("--boot", help="Bootstrap replicates.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    threshold: Annotated[bool, typer.Option("--threshold", help="Add the safety-buffer view.")] = False,
) -> None:
    """Write one self-contained HTML report: CEG table, scaling plot, Pareto, heatmap, manifest."""
    from ptebench.results import ceg, report
    from ptebench.results.merge import load_sources

    if boot < 0:
        raise UserError(f"--boot must be >= 0, got {boot}")
    loaded = load_sources(source)
    result = ceg.estimate(loaded, ceg.CEGOptions(baseline=baseline, n_boot=boot, seed=seed,
                                                 method=ceg.resolve_method(method)))
    if threshold:
        from ptebench.results.safety import threshold_view

        result.safety, result.crossings = threshold_view(loaded.table, baseline)
    report.write_report(loaded, result, out)
    typer.echo(f"wrote {out}")


def compare_command(
    run_a: Annotated[Path, typer.Argument(help="Reference run (e.g. last night's).")],
    run_b: Annotated[Path, typer.Argument(help="New run.")],
    fail_on_regression: Annotated[bool, typer.Option(
        "--fail-on-regression", help="Exit 1 when a significant drop appears.")] = False,
    alpha: Annotated[float, typer.Option(help="Significance level (Holm-adjusted).")] = 0.05,
    boot: Annotated[int, typer.Option("--boot", help="Bootstrap replicates.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="markdown | json.")] = "markdown",
    out: Annotated[Path | None, typer.Option(help="Also write the summary here.")] = None,
) -> None:
    """Paired per-task comparison of two runs: differences, exact tests, cost changes."""
    from ptebench.results import compare

    if fmt not in ("markdown", "json"):
        raise UserError(f"--format: unknown format {fmt!r}; accepted: markdown, json")
    if not 0 < alpha < 1:
        raise UserError(f"--alpha must lie in (0, 1), got {alpha}")
    result = compare.compare_runs(run_a, run_b, n_boot=boot, seed=seed, alpha=alpha)
    text = compare.to_markdown(result) if fmt == "markdown" else compare.to_json(result)
    if out is not None:
        out.write_text(text)
    typer.echo(text, nl=False)
    if fail_on_regression and len(result.regressions):
        typer.echo(f"FAIL: {len(result.regressions)} significant regression(s)", err=True)
        raise typer.Exit(1)


def history_command(
    index: Annotated[Path | None, typer.Option("--index", help="Add this run dir to the "
                                               "catalog, then show.")] = None,
    db: Annotated[Path | None, typer.Option(help="Catalog file (default $PTEBENCH_HISTORY or "
                                            "runs/history.sqlite).")] = None,
    metric: Annotated[str, typer.Option(help="mean_score | error_rate | mean_flops | mean_cost "
                                        "| mean_wall_s | n_episodes.")] = "mean_score",
    name: Annotated[str | None, typer.Option(help="Only runs of this experiment name.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    scaffold: Annotated[str | None, typer.Option(help="Only this scaffold label.")] = None,
    task_family: Annotated[str | None, typer.Option(help="Only this task family.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv.")] = "table",
) -> None:
    """A metric's trend over indexed runs, per (model, scaffold, task family)."""
    from ptebench.results import history

    if fmt not in ("table", "json", "csv"):
        raise UserError(f"--format: unknown format {fmt!r}; accepted: table, json, csv")
    db_path = db or history.default_db(index)
    if index is not None:
        history.index_run(index, db_path)
        typer.echo(f"indexed {index} into {db_path}")
    df = history.trend(db_path, metric, name, model, scaffold, task_family)
    if fmt == "json":
        typer.echo(df.to_json(orient="records", indent=2))
        return
    if fmt == "csv":
        typer.echo(df.to_csv(index=False), nl=False)
        return
    if not len(df):
        typer.echo("no matching runs in the catalog")
        return
    wide = df.pivot_table(index=["model", "scaffold", "task_family"],
                          columns=["started_at", "run_id"], values="value", aggfunc="first")
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{metric} over {wide.shape[1]} run(s), oldest → newest")
    for c in ("model", "scaffold", "task family", "trend", "first", "last", "change"):
        t.add_column(c)
    for key, vals in wide.iterrows():
        v = [float(x) for x in vals.tolist()]
        seen = [x for x in v if x == x]
        first, last = (seen[0], seen[-1]) if seen else (float("nan"), float("nan"))
        t.add_row(*[str(k) for k in cast(tuple[str, str, str], key)], history.sparkline(v), f"{first:.4g}", f"{last:.4g}",
                  f"{last - first:+.4g}")
    if bool(df["simulated"].any()):
        typer.echo("*** SIMULATED runs included: pipeline checks, not real results ***")
    Console(width=150).print(t)


def merge_command(
    runs: Annotated[list[Path], typer.Argument(help="Run folders to merge (two or more).")],
    out: Annotated[Path, typer.Option("--out", help="New run folder to write.")],
) -> None:
    """Combine run folders (e.g. made on different machines) into one; refuses conflicts."""
    from ptebench.results.merge import merge_runs

    res = merge_runs(runs, out)
    typer.echo(f"merged {res.episodes} episodes from {len(runs)} runs "
               f"({res.duplicates} identical duplicate(s) kept once) → {res.out}")


def register(app: typer.Typer) -> None:
    """Add the results commands (ceg, report, compare, history) to the top-level app."""
    app.command("ceg")(ceg_command)
    app.command("report")(report_command)
    app.command("compare")(compare_command)
    app.command("history")(history_command)
    app.command("merge")(merge_command)
