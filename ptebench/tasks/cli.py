"""``ptebench tasks ...``: validate native task folders, list and show task families.

validate PATH     every error of every task.yaml under PATH at once (file and field);
                  ``--run`` also proves each task solvable in a sandbox (setup, empty
                  submission scores 0, the reference solution scores 1).
list              every registered family with its instance count.
show NAME         a family (registered name or folder) and its instances; ``--id`` shows one
                  instance's public view, sandbox and limits (never the hidden reference).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ptebench import registry
from ptebench.errors import SandboxError, UserError
from ptebench.tasks.base import Task, TaskInstance, TaskOptions
from ptebench.tasks.native import (
    TASK_FILE,
    NativeTaskFamily,
    TaskBuildError,
    TaskFormatError,
    load_family,
)

app = typer.Typer(help="Task families: validate, list, show.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def find_folders(path: Path) -> list[Path]:
    """``path`` itself when it holds a task.yaml (or is one), else every folder below it that does."""
    if path.is_file():
        return [path.parent]
    if (path / TASK_FILE).exists():
        return [path]
    return sorted(p.parent for p in path.rglob(TASK_FILE))


def _resolve_path(target: str) -> Path:
    """A folder, or the folder of a registered folder suite (e.g. ``ctf``)."""
    p = Path(target)
    if p.exists():
        return p
    try:
        obj = registry.get("task", target)
    except UserError:
        raise UserError(f"{target}: no such file or folder, and no task family of that name") from None
    folder = getattr(obj, "folder", None)
    if not isinstance(folder, Path):
        raise UserError(f"{target}: a registered family without task folders; give a path")
    return folder


@app.command("validate")
def validate(
    path: Annotated[str, typer.Argument(help="A task folder, a task.yaml / task.toml, a folder of task folders, or a suite name (ctf).")],
    run: Annotated[bool, typer.Option("--run", help="Also run setup + solution in a sandbox: the oracle must score 1, an empty attempt 0, the verifier the same twice.")] = False,
    sandbox: Annotated[str, typer.Option(help="Sandbox backend for --run.")] = "docker",
    concurrency: Annotated[int, typer.Option(help="Sandboxes in flight for --run.")] = 4,
    image_map: Annotated[list[str] | None, typer.Option("--image-map", help="FROM image=local image for Harbor builds (repeatable); PTEBENCH_IMAGE_MAP applies too.")] = None,
) -> None:
    """Validate native (task.yaml) and Harbor (task.toml) task folders, reporting every error at once."""
    from ptebench.tasks.harbor import HarborFamily, find_tasks, load_harbor

    root = _resolve_path(path)
    folders = find_folders(root)
    harbor_roots = find_tasks(root)
    if not folders and not harbor_roots:
        raise UserError(f"{root}: no {TASK_FILE} or task.toml found")
    errors: list[str] = []
    families: list[Task] = []
    for folder in folders:
        try:
            fam = load_family(folder)
        except TaskFormatError as e:
            errors.extend(e.errors)
            continue
        image = ""
        if fam.spec.kind != "qa" and fam.spec.sandbox.build is not None:
            try:
                built = fam.build_image()
            except TaskBuildError as e:
                errors.append(str(e))
                continue
            except SandboxError as e:
                errors.append(f"task folder {folder}: sandbox.build {fam.spec.sandbox.build!r} "
                              f"cannot be built: {e}")
                continue
            how = f"built in {built.seconds:.1f}s" if built.built else "cached"
            image = f", image {built.tag} ({how})"
        families.append(fam)
        n = len(fam.entries)
        out.print(f"[green]ok[/]  {fam.name} ({n} task{'s' if n != 1 else ''}{escape(image)}) "
                  f"{escape(str(folder))}")
    mapping = {}
    for entry in image_map or []:
        src, sep, dst = entry.partition("=")
        if not sep:
            raise UserError(f"--image-map {entry!r}: give FROM_IMAGE=LOCAL_IMAGE")
        mapping[src] = dst
    n_bad_harbor = 0
    if harbor_roots:
        from ptebench.tasks.harbor import parse_task

        for r in harbor_roots:
            try:
                parse_task(r)
            except TaskFormatError as e:
                errors.extend(e.errors)
                n_bad_harbor += 1
        if not n_bad_harbor:
            try:
                hfam: HarborFamily = load_harbor(root, image_map=mapping)
            except TaskFormatError as e:  # across tasks: e.g. two folders of one name
                errors.extend(e.errors)
            else:
                families.append(hfam)
                for t in hfam.tasks.values():
                    extra = f", services: {', '.join(t.services)}" if t.services else ""
                    oracle = "oracle" if t.has_solution else "no oracle"
                    out.print(f"[green]ok[/]  harbor {t.id} ({oracle}{extra}) {escape(str(t.root))}")
    for line in errors:
        err.print(f"[red]error[/] {escape(line)}", highlight=False, soft_wrap=True)
    if errors:
        total = len(folders) + len(harbor_roots)
        bad = len(folders) - sum(isinstance(f, NativeTaskFamily) for f in families) + n_bad_harbor
        err.print(f"{len(errors)} error(s) in {bad} of {total} folder(s)")
        raise typer.Exit(2)
    if run and not asyncio.run(_run_solutions(families, sandbox, concurrency)):
        raise typer.Exit(1)


async def _run_solutions(families: list[Task], backend: str, concurrency: int) -> bool:
    from ptebench.tasks.validate import SolutionCheck, check_solution

    provider = registry.get("sandbox", backend)()
    labels = {"ptebench.run": f"tasks-validate-{int(time.time())}"}
    sem = asyncio.Semaphore(concurrency)
    t0 = time.monotonic()

    def yn(v: bool | None) -> str:
        return "-" if v is None else "yes" if v else "[red]no[/]"

    async def one(fam: Task, inst: TaskInstance) -> tuple[str, SolutionCheck]:
        async with sem:
            res = await check_solution(fam, inst, lambda spec: provider.acquire(spec, labels))
            mark = "[green]pass[/]" if res.ok else "[red]FAIL[/]"
            out.print(f"{mark} {fam.name}/{inst.id}: {res.verdict} · oracle passes {yn(res.oracle_passes)}"
                      f" · verifier deterministic {yn(res.deterministic)} ({res.total_s:.1f}s)")
            return f"{fam.name}/{inst.id}", res

    try:
        jobs = [one(f, i) for f in families for i in f.instances(TaskOptions())]
        results = await asyncio.gather(*jobs)
    finally:
        await provider.aclose()
    failed = [(n, r) for n, r in results if not r.ok]
    for name, r in failed:
        why = r.error or (
            f"{r.verdict}: empty submission scored {r.empty.value if r.empty else None} "
            f"({r.empty.explanation if r.empty else ''}); "
            f"solution scored {r.solved.value if r.solved else None} "
            f"({r.solved.explanation if r.solved else ''})"
            + (f"; scored again {r.rescored.value} ({r.rescored.explanation})"
               if r.rescored is not None and r.deterministic is False else "")
        )
        err.print(
            f"[red]FAIL[/] {name}: {escape(why)}\n  last output: {escape(r.log.strip()[-400:])}",
            highlight=False,
        )
    broken = sum(r.broken for _, r in results)
    out.print(
        f"{len(results) - len(failed)}/{len(results)} solutions pass, {broken} broken "
        f"(wall {time.monotonic() - t0:.1f}s, {concurrency} at a time, {backend})"
    )
    return not failed


def _open(name: str) -> Task:
    p = Path(name)
    if p.exists():
        from ptebench.tasks.harbor import find_tasks, load_harbor

        if not find_folders(p) and find_tasks(p):
            return load_harbor(p)
        return load_family(p)
    obj: Any = registry.get("task", name)
    return obj() if isinstance(obj, type) else obj


def _first_line(obj: object) -> str:
    doc = getattr(obj, "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _description(fam: object) -> str:
    """The family's own description (a native task.yaml's), else its class's first doc line."""
    own = getattr(fam, "description", None)
    return own if isinstance(own, str) and own else _first_line(type(fam))


@app.command("list")
def list_families() -> None:
    """Every registered task family with its number of instances."""
    table = Table("name", "instances", "kinds", "description")
    for name in registry.names("task"):
        try:
            fam = _open(name)
            insts = fam.instances(TaskOptions())
        except Exception as e:  # one broken family must not hide the others
            table.add_row(name, "-", "-", f"[red]unavailable: {escape(str(e))}[/]")
            continue
        kinds = ", ".join(sorted({i.kind for i in insts}))
        table.add_row(name, str(len(insts)), kinds, _description(fam))
    out.print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="A registered family (ctf, arith, ...) or a task folder.")],
    id: Annotated[str | None, typer.Option("--id", help="Show this instance's public view, sandbox and limits.")] = None,
) -> None:
    """A family's instances, or one instance in detail (never its hidden reference)."""
    fam = _open(name)
    insts = fam.instances(TaskOptions())
    if id is None:
        cats = Counter(str(i.metadata.get("category", "-")) for i in insts)
        out.print(f"[bold]{fam.name}[/]: {len(insts)} instances — {_description(fam)}",
                  highlight=False)
        out.print("categories: " + ", ".join(f"{c} {n}" for c, n in sorted(cats.items())))
        table = Table("id", "kind", "category", "difficulty", "human min")
        for i in insts:
            m = i.metadata
            table.add_row(i.id, i.kind, str(m.get("category", "")), str(m.get("difficulty", "")),
                          str(m.get("human_minutes", "")))
        out.print(table)
        return
    found = [i for i in insts if i.id == id]
    if not found:
        raise UserError(f"{fam.name}: no instance {id!r}; see `ptebench tasks show {name}`")
    inst = found[0]
    spec = fam.sandbox_spec(inst)
    out.print(f"[bold]{fam.name} / {inst.id}[/] ({inst.kind})")
    out.print(inst.instructions, markup=False, highlight=False)
    out.print(f"tools: {', '.join(inst.tools)}")
    out.print(f"metadata: {json.dumps(inst.metadata)}", highlight=False)
    if inst.limits is not None:
        out.print(f"limits: {inst.limits.model_dump_json(exclude_none=True)}", highlight=False)
    out.print(f"sandbox: {spec.model_dump_json() if spec else 'none'}", highlight=False)
