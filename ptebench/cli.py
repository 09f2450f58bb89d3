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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ptebench import registry
from ptebench.errors import UserError

app = typer.Typer(help="ptebench: measure what scaffolds add, in compute-equivalent gain.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True)
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


def _fmt_si(x: float) -> str:
    for unit, scale in (("e24", 1e24), ("e21", 1e21), ("e18", 1e18), ("e15", 1e15), ("e12", 1e12)):
        if x >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.3g}"


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run folder (default: the file's `out`, else runs/<name>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue a run in --out: skip finished episodes.")] = False,
    sandbox: Annotated[str | None, typer.Option(help="Override the sandbox backend (docker, local).")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Override episodes in flight.")] = None,
    executor: Annotated[str | None, typer.Option(help="Override the executor (local, ray).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address for --executor ray "
                                                "(host:6379, ray://host:10001, auto).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Run an experiment: every model × scaffold × task instance × epoch."""
    from ptebench.runners.config import load_experiment, parse_experiment
    from ptebench.runners.local import run_experiment

    exp, raw = load_experiment(config)
    overrides: dict[str, Any] = {}
    if sandbox:
        overrides["sandbox"] = sandbox
    if concurrency:
        overrides["concurrency"] = {"episodes": concurrency}
    if executor:
        overrides["executor"] = executor
    if address:
        if (executor or exp.executor) != "ray":
            raise UserError("--address is the Ray cluster's: use it with --executor ray")
        overrides["ray"] = {**exp.ray.model_dump(exclude_unset=True), "address": address}
    if overrides:
        exp = parse_experiment({**exp.model_dump(mode="json", exclude_unset=True), **overrides}, str(config))
    target = out_dir or Path(exp.out or f"runs/{exp.name}")
    t0 = time.monotonic()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
        console=console, disable=quiet, transient=False,
    ) as bar:
        task_id = bar.add_task(exp.name, total=None, stats="")

        def update(p: Any) -> None:
            bar.update(
                task_id, total=p.total, completed=p.skipped + p.done,
                stats=(f"ok {p.ok} · limit {p.limit} · [red]error {p.error}[/] · "
                       f"{p.tokens:,} tok · {_fmt_si(p.flops)} FLOP"),
            )

        result = run_experiment(exp, target, resume=resume, raw=raw, config_path=str(config),
                                on_progress=update)
    wall = time.monotonic() - t0
    p = result.progress
    rate = p.done / wall if wall > 0 else 0.0
    console.print(
        f"{'interrupted' if result.interrupted else 'finished'}: {p.done} episodes run "
        f"({p.skipped} already done) in {wall:.1f}s = {rate:.1f} episodes/s; "
        f"ok {p.ok}, limit {p.limit}, error {p.error} → {result.run_dir}"
    )
    if not result.interrupted:
        from ptebench.results.history import index_run

        try:
            console.print(f"indexed in the history catalog {index_run(result.run_dir)}")
        except (OSError, UserError) as e:  # the run is safe on disk; the catalog is a convenience
            console.print(f"[yellow]warning:[/] could not index the run in the history catalog: {e}")
    if result.interrupted:
        console.print(f"resume with: ptebench run {config} --out {result.run_dir} --resume")
        raise typer.Exit(130)


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


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        rc = app(standalone_mode=False)  # click returns a typer.Exit's code in this mode
    except UserError as e:
        console.print(f"[red]error:[/] {e}", markup=True, highlight=False)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # click usage errors carry their own exit codes
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
