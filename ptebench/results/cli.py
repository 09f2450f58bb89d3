"""Top-level commands of the results room: ceg, report, compare, history, show, export.

The lead's ptebench/cli.py calls ``register(app)``. User errors raise UserError subclasses;
the main CLI turns them into a message and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer

from ptebench.errors import UserError


def ceg_command(
    source: Annotated[list[Path], typer.Argument(help="A run directory, or a CSV/Parquet table "
                                                 "(family, model, train_flop, scaffold, task_id, "
                                                 "score); or several run directories, merged.")],
    baseline: Annotated[str, typer.Option(help="Baseline scaffold (any scaffold present).")] = "direct",
    method: Annotated[str, typer.Option(help="fit-logit | fit-loglinear (alias loglinear) | "
                                        "bound | isotonic.")] = "fit-logit",
    fmt: Annotated[Literal["table", "json", "csv", "parquet"],
                   typer.Option("--format", help="Output format.")] = "table",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout "
                                             "(required for parquet).")] = None,
    boot: Annotated[int, typer.Option("--boot", min=0, help="Bootstrap replicates (0: none).")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    resample: Annotated[str, typer.Option(help="Bootstrap stages, comma-separated: task "
                                          "(default), family, epoch.")] = "task",
    chance: Annotated[float, typer.Option(help="Chance level f of the task set.")] = 0.0,
    min_sizes: Annotated[int, typer.Option(help="Baseline sizes a fitted curve needs.")] = 3,
    threshold: Annotated[bool, typer.Option("--threshold", help="Add the safety-buffer view.")] = False,
    task_pass: Annotated[float, typer.Option(help="Per-task pass rate for --threshold.")] = 0.10,
    capability: Annotated[float, typer.Option(help="Share of tasks passed for --threshold.")] = 0.50,
    cards: Annotated[Path | None, typer.Option(help="Inspect logs: model-card YAML matched to "
                                               "each log's model before the catalog.")] = None,
    scorer: Annotated[str | None, typer.Option(help="Inspect logs: the score to use, NAME or "
                                               "NAME.KEY (default: each log's first).")] = None,
    truth_reps: Annotated[int, typer.Option(help="Sim runs: episodes per task simulating the "
                                            "true CEG of scaffolds without a closed form "
                                            "(0: closed forms only).")] = 20,
) -> None:
    """Compute-equivalent gain per enhanced scaffold and model, with intervals and flags.

    SOURCE may also be a folder of Inspect AI .eval logs (needs ptebench[inspect])."""
    from ptebench.results import ceg, export, table
    from ptebench.results.merge import load_sources

    if fmt == "parquet" and out is None:
        raise typer.BadParameter("--format parquet needs --out FILE.parquet", param_hint="--out")
    levels = tuple(x.strip() for x in resample.split(",") if x.strip())
    bad = [x for x in levels if x not in ("family", "task", "epoch")]
    if bad or not levels:
        raise UserError(f"--resample: unknown stage(s) {bad or [resample]}; accepted: "
                        "task, family, epoch (comma-separated)")
    for name, v in (("--task-pass", task_pass), ("--capability", capability)):
        if not 0.0 <= v <= 1.0:
            raise UserError(f"{name} must lie in [0, 1], got {v}")
    opts = ceg.make_options(baseline=baseline, method=ceg.resolve_method(method), n_boot=boot,
                            seed=seed, resample=levels, chance=chance, min_sizes=min_sizes,
                            truth_reps=truth_reps)
    loaded = (table.load_input(source[0], cards=cards, scorer=scorer) if len(source) == 1
              else load_sources(source))
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
    boot: Annotated[int, typer.Option("--boot", min=0, help="Bootstrap replicates.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    threshold: Annotated[bool, typer.Option("--threshold", help="Add the safety-buffer view.")] = False,
    truth_reps: Annotated[int, typer.Option(help="Sim runs: episodes per task simulating the "
                                            "true CEG (0: closed forms only).")] = 20,
) -> None:
    """Write one self-contained HTML report: CEG table, scaling plot, Pareto, heatmap, manifest."""
    from ptebench.results import ceg, report
    from ptebench.results.merge import load_sources

    loaded = load_sources(source)
    # every run shape gets a report: with nothing to estimate, the report says why
    result = report.estimate_for_report(loaded, ceg.make_options(
        baseline=baseline, n_boot=boot, seed=seed, method=ceg.resolve_method(method),
        truth_reps=truth_reps))
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
    alpha: Annotated[float, typer.Option(min=1e-9, max=0.5,
                                         help="Significance level (Holm-adjusted).")] = 0.05,
    boot: Annotated[int, typer.Option("--boot", min=0, help="Bootstrap replicates.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    pair_by: Annotated[Literal["params", "label"], typer.Option(
        "--pair-by", help="Match scaffolds by name and params, or by label (two versions of "
        "a scaffold under one label).")] = "params",
    fmt: Annotated[Literal["markdown", "json"], typer.Option("--format", help="Output format.")] = "markdown",
    out: Annotated[Path | None, typer.Option(help="Also write the summary here.")] = None,
) -> None:
    """Paired per-task comparison of two runs: differences, exact tests, status shifts (ok /
    limit / error by class), cost changes and the config diff. A cell regresses when its score
    drops significantly, it vanishes, errors more or hits limits more."""
    from ptebench.results import compare

    result = compare.compare_runs(run_a, run_b, n_boot=boot, seed=seed, alpha=alpha,
                                  pair_by=pair_by)
    text = compare.to_markdown(result) if fmt == "markdown" else compare.to_json(result)
    if out is not None:
        out.write_text(text)
    typer.echo(text, nl=False)
    if fail_on_regression and len(result.regressions):
        reasons = "; ".join(f"{r['model']} · {r['scaffold']}: {r['why']}"
                            for _, r in result.regressions.iterrows())
        typer.echo(f"FAIL: {len(result.regressions)} regression(s): {reasons}", err=True)
        raise typer.Exit(1)


def history_command(
    index: Annotated[Path | None, typer.Option("--index", help="Add this run dir to the "
                                               "catalog, then show.")] = None,
    db: Annotated[Path | None, typer.Option(help="Catalog file (default $PTEBENCH_HISTORY, else "
                                            "runs/history.sqlite under the current directory).")] = None,
    metric: Annotated[str, typer.Option(help="mean_score | error_rate | mean_flops | mean_cost "
                                        "| mean_wall_s | n_episodes.")] = "mean_score",
    name: Annotated[str | None, typer.Option(help="Only runs of this experiment name.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    scaffold: Annotated[str | None, typer.Option(help="Only this scaffold label.")] = None,
    task_family: Annotated[str | None, typer.Option(help="Only this task family.")] = None,
    fmt: Annotated[Literal["table", "json", "csv"], typer.Option("--format", help="Output format.")] = "table",
) -> None:
    """A metric's trend over indexed runs, per (model, scaffold, task family)."""
    from ptebench.results import history

    db_path = db or history.default_db()
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


def show_command(
    run: Annotated[Path, typer.Argument(help="A run folder.")],
    episode_id: Annotated[str | None, typer.Argument(help="Episode id (or a unique prefix).")] = None,
    model: Annotated[str | None, typer.Option(help="Select by model id.")] = None,
    scaffold: Annotated[str | None, typer.Option(help="Select by scaffold label or name.")] = None,
    task: Annotated[str | None, typer.Option(help="Select by task id (or family/id).")] = None,
    epoch: Annotated[int | None, typer.Option(help="Select by epoch.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text | markdown | json.")] = "text",
    failed: Annotated[bool, typer.Option("--failed", help="List failing episodes, grouped by "
                                         "their one-line reason.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Show the system prompt and prompts in full.")] = False,
    interrupted: Annotated[bool, typer.Option("--interrupted", help="List the episodes a stop "
                                              "(SIGTERM, Ctrl-C) cut off in flight and not "
                                              "finished since: their calls so far, the cancelled "
                                              "one included.")] = False,
) -> None:
    """Print one episode's whole conversation, turn by turn: what the model was sent and
    said, what ran and came back, per-call tokens/FLOPs/cost/latency, the score and why."""
    from ptebench.results import show
    from ptebench.results.store import episodes_path, load_episodes
    from ptebench.results.transcript import load_transcript

    fmt = fmt.lower()
    if fmt not in ("text", "markdown", "json"):
        raise UserError(f"--format: unknown format {fmt!r}; accepted: text, markdown, json")
    if interrupted:
        _print_interrupted(run, episode_id, fmt)
        return
    where = episodes_path(run)
    episodes = show.select(load_episodes(run), episode_id, model, scaffold, task, epoch)
    show.check_selection(episodes, str(where), episode_id)
    if failed:
        _print_failed(show.failed_groups(episodes), fmt)
        return
    if len(episodes) > 1:
        _print_list(episodes, fmt)
        return
    (e,) = episodes
    t = load_transcript(where.parent, e.spec.episode_id)
    if fmt == "json":
        typer.echo(show.to_json(e, t))
    elif fmt == "markdown":
        typer.echo(show.render_markdown(e, t, collapsible=True, full=full), nl=False)
    else:
        from rich.console import Console
        from rich.markdown import Markdown

        Console(width=110, soft_wrap=False).print(
            Markdown(show.render_markdown(e, t, collapsible=False, full=full), code_theme="ansi_dark"))


def _print_interrupted(run: Path, episode_id: str | None, fmt: str) -> None:
    from ptebench.results.transcript import TranscriptStore

    if not run.is_dir():
        raise UserError(f"{run}: no ptebench run folder here")
    store = TranscriptStore(run)
    try:
        found = store.interrupted() if store.exists() else []
    finally:
        store.close()
    if episode_id is not None:
        found = [i for i in found if i.spec.episode_id.startswith(episode_id)]
    if fmt == "json":
        typer.echo(json.dumps([{
            "episode_id": i.spec.episode_id, "spec": i.spec.model_dump(mode="json"),
            "reason": i.reason, "calls": [c.model_dump(mode="json") for c in i.transcript.calls],
            "actions": len(i.transcript.actions)} for i in found], indent=2))
        return
    if not found:
        typer.echo(f"{run}: no interrupted episodes (none was cut off in flight, or --resume "
                   "finished them)")
        return
    typer.echo(f"{len(found)} interrupted episode(s) in {run} (not in episodes.jsonl; "
               "--resume runs them again)")
    for i in found:
        s = i.spec
        typer.echo(f"{s.episode_id}  {s.model}  {s.scaffold_label}  {s.task_family}/{s.task_id}"
                   f"  epoch {s.epoch}  {len(i.transcript.calls)} call(s), "
                   f"{len(i.transcript.actions)} action(s)")
        for c in i.transcript.calls:
            what = c.error or f"{c.usage.prompt_tokens} in / {c.usage.completion_tokens} out tokens"
            typer.echo(f"  call {c.index} ({c.role}, {c.model or s.model}): {what}")


def _print_list(episodes: list[Any], fmt: str) -> None:
    from ptebench.results import show

    rows = [{"episode_id": e.spec.episode_id, "model": e.spec.model, "scaffold": e.spec.scaffold_label,
             "task": show.task_label(e), "epoch": e.spec.epoch, "status": e.status,
             "score": e.score.value if e.score else None} for e in episodes]
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{len(rows)} episodes match: give an EPISODE_ID (or narrow with --model, "
               "--scaffold, --task, --epoch)")
    for r in rows:
        typer.echo(f"{r['episode_id']}  {r['model']}  {r['scaffold']}  {r['task']}  epoch {r['epoch']}"
                   f"  {r['status']}  score {r['score']}")


def _print_failed(groups: list[Any], fmt: str) -> None:
    if fmt == "json":
        typer.echo(json.dumps([{"reason": g.reason, "count": len(g.episodes),
                                "episodes": [e.spec.episode_id for e in g.episodes]}
                               for g in groups], indent=2))
        return
    if not groups:
        typer.echo("no failing episodes")
        return
    total = sum(len(g.episodes) for g in groups)
    typer.echo(f"{total} failing episodes, {len(groups)} reasons:")
    for g in groups:
        typer.echo(f"\n{len(g.episodes):>5} × {g.reason}")
        for e in g.episodes[:5]:
            typer.echo(f"        {e.spec.episode_id}  {e.spec.model}  {e.spec.scaffold_label}  "
                       f"{e.spec.task_family}/{e.spec.task_id}  epoch {e.spec.epoch}")
        if len(g.episodes) > 5:
            typer.echo(f"        … and {len(g.episodes) - 5} more")

def merge_command(
    runs: Annotated[list[Path], typer.Argument(help="Run folders to merge (two or more).")],
    out: Annotated[Path, typer.Option("--out", help="New run folder to write.")],
) -> None:
    """Combine run folders (e.g. made on different machines) into one; refuses conflicts."""
    from ptebench.results.merge import merge_runs

    res = merge_runs(runs, out)
    typer.echo(f"merged {res.episodes} episodes from {len(runs)} runs "
               f"({res.duplicates} identical duplicate(s) kept once) → {res.out}")


def export_command(
    run: Annotated[Path, typer.Argument(help="A ptebench run directory.")],
    out: Annotated[Path, typer.Option(help="Folder to write the logs into.")],
    fmt: Annotated[str, typer.Option("--format", help="inspect (Inspect AI .eval logs).")] = "inspect",
) -> None:
    """Write a run's episodes in another harness's log format: one Inspect .eval log per
    model × scaffold (needs ptebench[inspect]); open them with `inspect view --log-dir OUT`."""
    from ptebench.results import inspect_logs

    if fmt != "inspect":
        raise UserError(f"--format: unknown format {fmt!r}; accepted: inspect")
    paths = inspect_logs.export_run(run, out)
    for p in paths:
        typer.echo(f"wrote {p}")


def register(app: typer.Typer) -> None:
    """Add the results commands (ceg, report, compare, history, show, export) to the top-level app."""
    app.command("show")(show_command)
    app.command("ceg")(ceg_command)
    app.command("report")(report_command)
    app.command("compare")(compare_command)
    app.command("history")(history_command)
    app.command("export")(export_command)
    app.command("merge")(merge_command)
