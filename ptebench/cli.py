"""The ptebench command line (typer).

User errors (a bad config, an unknown name, a missing file) print one clear message and exit
with status 2, without a traceback. Each room contributes its own commands: sandbox, tasks
and models sub-apps, and the results commands (ceg, report, compare, history).
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ptebench import registry
from ptebench.errors import UserError

app = typer.Typer(help="ptebench: measure what scaffolds add, in compute-equivalent gain.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True, soft_wrap=True)  # messages: never hard-wrapped mid-line
out = Console()

scaffolds_app = typer.Typer(help="Scaffolds (how a model is driven).", no_args_is_help=True)
app.add_typer(scaffolds_app, name="scaffolds")


def _doc(obj: Any) -> str:
    return (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else ""



def _shown(default: object) -> object:
    """A parameter default as a user would write it in the experiment file."""
    return default.model_dump() if isinstance(default, BaseModel) else default

@scaffolds_app.command("list")
def scaffolds_list() -> None:
    """List registered scaffolds and their parameters."""
    table = Table("name", "parameters (defaults)", "description")
    for name, cls in registry.items("scaffold"):
        params = ", ".join(
            f"{k}={_shown(v.get_default(call_default_factory=True))!r}" if not v.is_required() else f"{k} (required)"
            for k, v in cls.Params.model_fields.items()
        )
        table.add_row(name, params, _doc(sys.modules[cls.__module__]) or _doc(cls))
    out.print(table)


def _fmt_si(x: float | None) -> str:
    if x is None:
        return "n/a"
    for unit, scale in (("e24", 1e24), ("e21", 1e21), ("e18", 1e18), ("e15", 1e15), ("e12", 1e12)):
        if x >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.3g}"


def _progress_stats(p: Any) -> str:
    """``ok 3 · limit 1 · error 0 · 1,234 tok · 2.1e15 FLOP`` (n/a when FLOPs are unknown)."""
    return (f"ok {p.ok} · limit {p.limit} · error {p.error} · {p.tokens:,} tok · "
            f"{_fmt_si(p.flops)} FLOP")


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [x.strip() for x in value.split(",") if x.strip()]


def _overridden(exp: Any, source: str, *, sandbox: str | None, concurrency: int | None,
                limit: int | None, models: list[str] | None, scaffolds: list[str] | None,
                epochs: int | None, spend_cap: float | None) -> Any:
    """The experiment with the command line's quick overrides applied (validated again).

    Raises:
        ConfigError: an override names a model or scaffold the experiment does not have.
    """
    from ptebench.errors import ConfigError
    from ptebench.runners.config import parse_experiment

    data: dict[str, Any] = exp.model_dump(mode="json", exclude_unset=True)
    if sandbox is not None:
        data["sandbox"] = sandbox
    if concurrency is not None:
        data["concurrency"] = {"episodes": concurrency}
    if epochs is not None:
        data["epochs"] = epochs
    if spend_cap is not None:
        data["spend_cap_usd"] = spend_cap
    if limit is not None:
        data["tasks"] = [
            {**t.model_dump(mode="json", exclude_unset=True),
             "limit": limit if t.limit is None else min(t.limit, limit)}
            for t in exp.task_entries()]
    if models is not None:
        ids = [m.id for m in exp.model_configs()]
        unknown = [m for m in models if m not in ids]
        if unknown:
            raise ConfigError(f"--models: {unknown} not in the experiment; its models: {', '.join(ids)}")
        data["models"] = [entry for entry, mid in zip(data["models"], ids, strict=True) if mid in models]
    if scaffolds is not None:
        entries = exp.scaffold_entries()
        labels = [str(e.label) for e in entries]
        unknown = [s for s in scaffolds if s not in labels]
        if unknown:
            raise ConfigError(f"--scaffolds: {unknown} not in the experiment; its scaffolds: "
                              f"{', '.join(labels)}")
        if exp.baseline not in scaffolds:
            raise ConfigError(f"--scaffolds: keep the baseline {exp.baseline!r} (CEG is measured "
                              "against it)")
        data["scaffolds"] = [entry for entry, lab in zip(data["scaffolds"], labels, strict=True)
                             if lab in scaffolds]
    return parse_experiment(data, source)


_CATALOG_HELP = ("History catalog to index the finished run in (default: $PTEBENCH_HISTORY, "
                 "else runs/history.sqlite under the current directory).")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run folder (default: the file's `out`, else runs/<name>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue a run in --out: skip finished episodes. The config must be the one the run's manifest records.")] = False,
    extend: Annotated[bool, typer.Option(help="With --resume: accept a changed config (more epochs, models, tasks) and record it in the manifest beside the first.")] = False,
    sandbox: Annotated[str | None, typer.Option(help="Override the sandbox backend (docker, local).")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Override episodes in flight.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many instances per task family.")] = None,
    models: Annotated[str | None, typer.Option(help="Only these model ids (comma-separated).")] = None,
    scaffolds: Annotated[str | None, typer.Option(help="Only these scaffold labels (comma-separated; keep the baseline).")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Override epochs.")] = None,
    spend_cap: Annotated[float | None, typer.Option("--spend-cap", min=0.01, help="Run-level spend cap in dollars (the config's spend_cap_usd): no new episode starts once it is spent.")] = None,
    max_error_rate: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Exit 1 when the share of errored episodes exceeds this (default: exit 1 on any infrastructure error, or when every episode errored).")] = None,
    catalog: Annotated[Path | None, typer.Option(help=_CATALOG_HELP)] = None,
    no_catalog: Annotated[bool, typer.Option("--no-catalog", help="Do not index the run in the history catalog.")] = False,
    progress_every: Annotated[float, typer.Option(min=0.0, help="When stderr is not a terminal: seconds between progress lines.")] = 5.0,
    executor: Annotated[str | None, typer.Option(help="Override the executor (local, ray).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address for --executor ray "
                                                "(host:6379, ray://host:10001, auto).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Run an experiment: every model × scaffold × task instance × epoch.

    Everything the run writes goes into its run folder, except one row per run in the history
    catalog (--catalog). Exit status: 0 done; 1 the error threshold was crossed or the spend
    cap stopped the run; 2 a usage or config error; 130 interrupted.
    """
    from ptebench.runners.config import load_experiment, parse_experiment
    from ptebench.runners.failures import verdict
    from ptebench.runners.local import run_experiment

    if extend and not resume:
        raise typer.BadParameter("--extend only makes sense with --resume", param_hint="--extend")
    exp, raw = load_experiment(config)
    exp = _overridden(exp, str(config), sandbox=sandbox, concurrency=concurrency, limit=limit,
                      models=_csv(models), scaffolds=_csv(scaffolds), epochs=epochs,
                      spend_cap=spend_cap)
    if address and (executor or exp.executor) != "ray":
        raise UserError("--address is the Ray cluster's: use it with --executor ray")
    if executor or address:
        ray_over: dict[str, Any] = {"executor": executor or exp.executor}
        if address:
            ray_over["ray"] = {**exp.ray.model_dump(exclude_unset=True), "address": address}
        exp = parse_experiment({**exp.model_dump(mode="json", exclude_unset=True), **ray_over},
                               str(config))
    target = out_dir or Path(exp.out or f"runs/{exp.name}")
    t0 = time.monotonic()
    live = console.is_terminal and not quiet
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
        console=console, disable=not live, transient=False,
    ) as bar:
        task_id = bar.add_task(exp.name, total=None, stats="")
        last = [-float("inf")]

        def update(p: Any) -> None:
            if live:
                bar.update(task_id, total=p.total, completed=p.skipped + p.done,
                           stats=_progress_stats(p))
                return
            now = time.monotonic()
            if not quiet and (now - last[0] >= progress_every or p.skipped + p.done == p.total):
                last[0] = now
                console.print(f"progress: {p.skipped + p.done}/{p.total} · {_progress_stats(p)} · "
                              f"{now - t0:.0f}s", highlight=False, markup=False)

        result = run_experiment(exp, target, resume=resume, raw=raw, config_path=str(config),
                                on_progress=update, extend=extend)
    wall = time.monotonic() - t0
    p = result.progress
    rate = p.done / wall if wall > 0 else 0.0
    console.print(
        f"{'interrupted' if result.interrupted else 'finished'}: {p.done} episodes run "
        f"({p.skipped} already done) in {wall:.1f}s = {rate:.1f} episodes/s; "
        f"ok {p.ok}, limit {p.limit}, error {p.error} → {result.run_dir}"
    )
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    if p.error:
        console.print(f"errors by class: {p.failures.counts()}", highlight=False)
        for line in p.failures.top_reasons():
            console.print(f"  {line}", highlight=False, markup=False)
    if not result.interrupted and not no_catalog:
        from ptebench.results.history import default_db, index_run

        try:
            db = index_run(result.run_dir, catalog or default_db())
            console.print(f"indexed in the history catalog {db}")
        except (OSError, UserError) as e:  # the run is safe on disk; the catalog is a convenience
            console.print(f"[yellow]warning:[/] could not index the run in the history catalog: {e}")
    if result.interrupted:
        console.print(f"resume with: ptebench run {config} --out {result.run_dir} --resume")
        raise typer.Exit(130)
    failed = verdict(p.failures, max_error_rate)
    if result.stop_reason is not None:
        console.print(f"[yellow]stopped:[/] {result.stop_reason}", highlight=False)
    if failed is not None:
        console.print(f"[red]run failed:[/] {failed}", highlight=False)
    if failed is not None or result.stop_reason is not None:
        raise typer.Exit(1)


def _mount() -> None:
    """Attach each room's commands when its module is present."""
    for module, name in (
        ("ptebench.tasks.cli", "tasks"),
        ("ptebench.models.cli", "models"),
        ("ptebench.sandbox.cli", "sandbox"),
    ):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        app.add_typer(mod.app, name=name)
    try:
        results_cli = importlib.import_module("ptebench.results.cli")
    except ModuleNotFoundError as e:
        if e.name != "ptebench.results.cli":
            raise
    else:
        results_cli.register(app)


_mount()


def _version(value: bool) -> None:
    if value:
        from ptebench import __version__

        typer.echo(f"ptebench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """ptebench: measure what scaffolds add, in compute-equivalent gain."""


def main() -> None:
    """The console entry point. Usage errors (an unknown command or option, a missing or
    extra argument, a bad option value) are typer's: one message, exit 2. A UserError (bad
    config, unknown name, missing file) prints its message and exits 2 too; neither shows a
    traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(prog_name="ptebench")  # standalone: typer reports usage errors and exits 2
    except UserError as e:
        console.print(f"[red]error:[/] {escape(str(e))}", markup=True, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
