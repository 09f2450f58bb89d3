"""The sim family's true success rates for any scaffold, by Monte-Carlo over real episodes.

Multi-call scaffolds (react, reflexion, tot, lats, majority, best_of_n with the model's own
selector) have no closed form under the sim law, but the law is known: the truth is what the
scaffold *does* against the sim. So the scaffold's own code is played, in process, through the
runner's own episode function (``ptebench.runners.local.run_episode``: the experiment's limits,
the task's scorer), ``reps`` times per task with seeds of its own — never the run's episodes —
and the share of episodes that succeed is the task's true success probability, up to Monte-Carlo
error (binomial, stated with the truth).

Sandbox: the episodes never need Docker. They get a deterministic in-process stand-in
(``TruthSandbox``): a python program that only prints integer/float arithmetic
(``print(123 * 45)``, what the sim writes for arith, right or perturbed) is evaluated in process
and answered with exactly what python3 prints; the sim's one exploration command ``ls -la``
gets a fixed listing of an empty work folder; any other command runs in a real local sandbox
(a subprocess in a temporary folder, ptebench.sandbox.local). A sandbox is *there* (not None),
so scaffolds that branch on having one (lats samples 1 action per fork with a sandbox, 5
without) take the same path as in the run. Why this is faithful: with a static reference answer
the sim decides from the *actions* visible in the transcript (the decomposition rule), not from
their outputs; outputs enter only its random key (which changes which draw, not the law) and
the judge's check whether a candidate contains the answer — which exact arithmetic output
preserves. tests/results/test_truth_sim.py checks the stand-in against the local sandbox.

Results are cached per (scaffold config, model config, limits, task instance, reps, seed,
TRUTH_VERSION) in ``$PTEBENCH_TRUTH_CACHE`` (default ~/.cache/ptebench/truth), so a second
``ptebench ceg`` or report is free.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import hashlib
import json
import math
import operator
import os
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptebench.sandbox.base import DEFAULT_OUTPUT_LIMIT, ExecResult, Sandbox, SandboxSpec

TRUTH_VERSION = 1
"""Bump when the simulation path changes what it computes (invalidates the cache)."""
DEFAULT_REPS = 20
"""Episodes per (task, model, scaffold) for the truth: the mean over 20 tasks then has a
binomial SE ≤ √(0.25/400) = 0.025 (a third of the demo estimate's own, 2 epochs × 20 tasks)."""

_LS = ("total 8\n"
       "drwxr-xr-x 2 agent agent 4096 Jan  1 00:00 .\n"
       "drwxr-xr-x 3 root  root  4096 Jan  1 00:00 ..\n")
"""What ``ls -la`` prints in a fresh, empty work folder (fixed date: deterministic)."""

_BIN: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Div: operator.truediv}
_UN: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.USub: operator.neg,
                                                      ast.UAdd: operator.pos}


def _arith(node: ast.expr) -> int | float:
    """Value of a numeric-literal arithmetic expression; ValueError for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
            and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        a, b = _arith(node.left), _arith(node.right)
        if isinstance(a, int) and isinstance(b, int) and max(abs(a), abs(b)) > 10**60:
            raise ValueError("too large")
        return _BIN[type(node.op)](a, b)  # ZeroDivisionError → not handled here
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UN:
        return _UN[type(node.op)](_arith(node.operand))
    raise ValueError("not arithmetic")


def print_arithmetic(program: str) -> str | None:
    """stdout of a program made only of ``print(<numeric arithmetic>)`` lines, exactly as
    python3 prints it; None when the program is anything else (or would raise)."""
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return None
    out: list[str] = []
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
                and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == "print"
                and not stmt.value.keywords and len(stmt.value.args) == 1):
            return None
        try:
            out.append(repr(_arith(stmt.value.args[0])))
        except (ValueError, ArithmeticError):
            return None
    return "".join(line + "\n" for line in out) if out else None


class TruthSandbox:
    """The truth simulation's sandbox: arithmetic prints and ``ls -la`` in process, anything
    else in a real local sandbox created on first use (see the module docstring)."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self._real: Sandbox | None = None
        self.delegated = 0

    @property
    def name(self) -> str:
        return "truth"

    async def _local(self) -> Sandbox:
        if self._real is None:
            from ptebench.sandbox.local import LocalSandbox

            self._real = LocalSandbox.create(self.spec)
        return self._real

    async def exec(self, cmd: str | list[str], timeout: float | None = None,
                   input: str | bytes | None = None, cwd: str | None = None,
                   user: str | None = None, env: dict[str, str] | None = None,
                   output_limit: int = DEFAULT_OUTPUT_LIMIT) -> ExecResult:
        text = input.decode(errors="replace") if isinstance(input, bytes) else input
        if cmd == ["python3", "-"] and text is not None and self._real is None:
            out = print_arithmetic(text)
            if out is not None:
                return _result(out, output_limit)
        if isinstance(cmd, str) and cmd.strip() == "ls -la" and self._real is None:
            return _result(_LS, output_limit)
        self.delegated += 1
        real = await self._local()
        return await real.exec(cmd, timeout=timeout, input=input, cwd=cwd, user=user, env=env,
                               output_limit=output_limit)

    async def read_file(self, path: str) -> bytes:
        return await (await self._local()).read_file(path)

    async def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        await (await self._local()).write_file(path, data, mode)

    async def snapshot(self) -> str:
        if self._real is None:
            return "empty"
        return await self._real.snapshot()

    async def restore(self, snapshot_id: str) -> Sandbox:
        child = TruthSandbox(self.spec)
        if self._real is not None:
            child._real = await self._real.restore(snapshot_id)
        return child

    async def close(self) -> None:
        if self._real is not None:
            await self._real.close()

    def profile(self) -> dict[str, object]:
        return {"backend": "truth", "note": "in-process stand-in for the truth simulation"}


def _result(out: str, limit: int) -> ExecResult:
    raw = out.encode()
    return ExecResult(exit_code=0, stdout=raw[:limit].decode(errors="replace"),
                      stdout_bytes=len(raw), truncated=len(raw) > limit)


class TruthProvider:
    """Hands out a TruthSandbox per episode (or a LocalSandbox with ``local=True``, for the
    check that the stand-in changes nothing)."""

    name = "truth"

    def __init__(self, local: bool = False) -> None:
        self.local = local

    @contextlib.asynccontextmanager
    async def acquire(self, spec: SandboxSpec, labels: dict[str, str]) -> AsyncGenerator[Sandbox]:
        sb: Sandbox
        if self.local:
            from ptebench.sandbox.local import LocalSandbox

            sb = LocalSandbox.create(spec)
        else:
            sb = TruthSandbox(spec)
        try:
            yield sb
        finally:
            await sb.close()

    async def aclose(self) -> None:
        return None


@dataclass
class Outcome:
    """Monte-Carlo outcome of one (task, model, scaffold): wins of n scored episodes."""

    wins: float
    n: int
    errors: int = 0


def cache_dir() -> Path:
    env = os.environ.get("PTEBENCH_TRUTH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ptebench" / "truth"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _cell(exp: Any, planned: Any, model_id: str, label: str, reps: int, seed: int,
          local_sandbox: bool) -> tuple[Any, dict[str, Any], Any, dict[str, Any]]:
    from ptebench.runners.plan import resolved_params

    entry = next(e for e in exp.scaffold_entries() if str(e.label or e.name) == label)
    params = resolved_params(entry)
    cfg = next(m for m in exp.model_configs() if m.id == model_id)
    cell = {"v": TRUTH_VERSION, "scaffold": entry.name, "params": params,
            "model": cfg.model_dump(mode="json"), "limits": exp.limits.model_dump(mode="json")
            if exp.limits is not None else None, "family": planned.name, "reps": reps,
            "seed": seed, "local": local_sandbox}
    return entry, params, cfg, cell


_MEMO: dict[str, Outcome] = {}
"""This process's outcomes by cache key (also when the cache folder is not writable)."""


def simulate(exp: Any, planned: Any, model_id: str, label: str, task_ids: list[str],
             reps: int = DEFAULT_REPS, seed: int = 0, use_cache: bool = True,
             local_sandbox: bool = False, concurrency: int = 32) -> dict[str, Outcome]:
    """Play scaffold ``label`` of experiment ``exp`` on model ``model_id`` ``reps`` times per
    task of ``planned`` (a PlannedTask) and return each task's outcome.

    Episodes get their own ids and seeds (from ``seed``, the rep and the cell), so they are
    independent of the run's episodes and of another seed's truth. ``use_cache=False``
    neither reads nor writes the cache.
    """
    entry, params, cfg, cell = _cell(exp, planned, model_id, label, reps, seed, local_sandbox)
    keys = {t: _digest([cell, planned.instances[t].model_dump(mode="json")]) for t in task_ids}
    folder = cache_dir() / _digest(cell)[:24]
    out: dict[str, Outcome] = {}
    if use_cache:
        for t, k in keys.items():
            if k in _MEMO:
                out[t] = _MEMO[k]
                continue
            f = folder / f"{k[:32]}.json"
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                d = json.loads(f.read_text())
                out[t] = _MEMO[k] = Outcome(float(d["wins"]), int(d["n"]), int(d["errors"]))
    todo = [t for t in task_ids if t not in out]
    if todo:
        fresh = asyncio.run(_play(exp, planned, cfg, entry, params, todo, reps, seed,
                                  local_sandbox, concurrency))
        for t, o in fresh.items():
            out[t] = o
            if use_cache:
                _MEMO[keys[t]] = o
                with contextlib.suppress(OSError):
                    folder.mkdir(parents=True, exist_ok=True)
                    tmp = folder / f".{keys[t][:32]}.{os.getpid()}.tmp"
                    tmp.write_text(json.dumps({"wins": o.wins, "n": o.n, "errors": o.errors,
                                               "task": t, "cell": cell}))
                    tmp.replace(folder / f"{keys[t][:32]}.json")
    return out


Cell = tuple[str, str, str, tuple[str, ...]]
"""(task family, model id, scaffold label, instance ids) of one simulation job."""


def workers() -> int:
    """Processes for simulate_cells: $PTEBENCH_TRUTH_WORKERS, else the CPU count (≤ 4)."""
    env = os.environ.get("PTEBENCH_TRUTH_WORKERS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(os.cpu_count() or 1, 4))


def simulate_cells(config: dict[str, Any], cells: list[Cell], reps: int = DEFAULT_REPS,
                   seed: int = 0, n_workers: int | None = None) -> None:
    """Fill the cache (and this process's memo) for every cell, spread over processes.

    ``config`` is the experiment's resolved config (run.json), from which each worker
    reopens the experiment and its tasks. The outcomes are the ones ``simulate`` gives in
    one process: every episode has its own seed, so the split changes nothing.
    """
    n = n_workers if n_workers is not None else workers()
    todo = list(dict.fromkeys(cells))
    if n <= 1 or len(todo) <= 1:
        for c in todo:
            _run_cell(config, c, reps, seed)
        return
    import concurrent.futures as cf
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # no fork of a process that may hold threads
    with cf.ProcessPoolExecutor(max_workers=min(n, len(todo)), mp_context=ctx) as pool:
        done = list(pool.map(_run_cell, [config] * len(todo), todo, [reps] * len(todo),
                             [seed] * len(todo)))
    for c, res in zip(todo, done, strict=True):
        _remember(config, c, reps, seed, res)


_OPENED: dict[str, tuple[Any, dict[str, Any]]] = {}


def _open(config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    key = _digest(config)
    if key not in _OPENED:
        from ptebench.runners.config import parse_experiment
        from ptebench.runners.plan import open_tasks

        exp = parse_experiment(dict(config))
        _OPENED[key] = (exp, {pt.name: pt for pt in open_tasks(exp)})
    return _OPENED[key]


def _run_cell(config: dict[str, Any], cell: Cell, reps: int, seed: int) -> dict[str, Outcome]:
    exp, planned = _open(config)
    family, model, label, ids = cell
    return simulate(exp, planned[family], model, label, list(ids), reps, seed)


def _remember(config: dict[str, Any], cell: Cell, reps: int, seed: int,
              res: dict[str, Outcome]) -> None:
    """Put a worker's outcomes into this process's memo (the worker also wrote the cache)."""
    exp, planned = _open(config)
    family, model, label, _ = cell
    pt = planned[family]
    _, _, _, c = _cell(exp, pt, model, label, reps, seed, False)
    for t, o in res.items():
        _MEMO[_digest([c, pt.instances[t].model_dump(mode="json")])] = o


async def _play(exp: Any, planned: Any, cfg: Any, entry: Any, params: dict[str, Any],
                task_ids: list[str], reps: int, seed: int, local_sandbox: bool,
                concurrency: int) -> dict[str, Outcome]:
    import logging

    from ptebench.records import EpisodeSpec
    from ptebench.runners.local import _ModelPool, run_episode  # pyright: ignore[reportPrivateUsage]
    from ptebench.runners.plan import episode_seed

    logging.getLogger("ptebench").setLevel(max(logging.getLogger("ptebench").level,
                                               logging.WARNING))
    models = _ModelPool([cfg])
    provider = TruthProvider(local=local_sandbox)
    label = str(entry.label or entry.name)
    sem = asyncio.Semaphore(concurrency)
    res: dict[str, Outcome] = {t: Outcome(0.0, 0) for t in task_ids}

    async def one(task_id: str, rep: int) -> None:
        eid = _digest(["truth", TRUTH_VERSION, seed, cfg.id, label, params, planned.name,
                       task_id, rep])[:20]
        spec = EpisodeSpec(episode_id=eid, model=cfg.id, scaffold=entry.name,
                           scaffold_label=label, scaffold_params=params,
                           task_family=planned.name, task_id=task_id, epoch=rep,
                           seed=episode_seed(seed, eid))
        async with sem:
            ep, _ = await run_episode(spec, planned, models, provider, exp, "truth")
        o = res[task_id]
        if ep.status == "error" or ep.score is None or ep.score.value is None:
            o.errors += 1
        else:
            o.wins += float(ep.score.value)
            o.n += 1

    try:
        await asyncio.gather(*(one(t, r) for t in task_ids for r in range(reps)))
    finally:
        await models.aclose()
    return res


def mc_mean_se(outcomes: list[Outcome]) -> tuple[float, float]:
    """Mean success over tasks and its Monte-Carlo standard error (binomial per task, the
    rate shrunk by ½ a success so a task at 0/n or n/n still carries variance)."""
    if not outcomes or any(o.n == 0 for o in outcomes):
        return math.nan, math.nan
    mean = sum(o.wins / o.n for o in outcomes) / len(outcomes)
    var = 0.0
    for o in outcomes:
        p = (o.wins + 0.5) / (o.n + 1.0)
        var += p * (1 - p) / o.n
    return mean, math.sqrt(var) / len(outcomes)
