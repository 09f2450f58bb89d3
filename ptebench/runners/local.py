"""The asyncio executor: planned episodes → bounded concurrency → the results store.

One episode is the unit of work, of failure and of resumption. An exception inside an episode
marks that episode ``error`` with the reason and the run goes on; a budget that runs out marks
it ``limit`` and scores the best submission so far. Ctrl-C or SIGTERM stops the run: episodes
in flight are abandoned (their sandboxes closed), finished ones are already on disk, and
``--resume`` picks up exactly the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import platform
import signal
import socket
import subprocess
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptebench import __version__, registry
from ptebench.errors import ConfigError, SandboxError, UserError
from ptebench.models.base import EpisodeBinding, Model, ModelConfig
from ptebench.models.catalog import ModelCard, default_catalog
from ptebench.models.meter import LimitReached, MeteredModel, Trace, warn_missing_card
from ptebench.models.transcript import Transcript
from ptebench.records import (
    CatalogEntry,
    Episode,
    EpisodeSpec,
    FailureClass,
    Limits,
    RunManifest,
    Score,
    Totals,
)
from ptebench.results.commit import MAX_BATCH, GroupCommit
from ptebench.results.store import RunStore
from ptebench.runners.config import Experiment
from ptebench.runners.failures import FailureSummary, Phase, classify
from ptebench.runners.plan import (
    PlannedTask,
    check_plan,
    make_plan,
    open_tasks,
    prepare_images_async,
)
from ptebench.runners.resume import check_labels, check_resume, extension_record
from ptebench.sandbox.base import (
    DEFAULT_OUTPUT_LIMIT,
    ExecResult,
    Sandbox,
    SandboxProvider,
    SandboxSpec,
    ServiceSandbox,
)
from ptebench.scaffolds.base import Environment, EpisodeContext, Oracle

log = logging.getLogger("ptebench.runner")


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass
class Progress:
    """Live counts of a run, for the progress display."""

    total: int = 0
    skipped: int = 0
    done: int = 0
    ok: int = 0
    limit: int = 0
    error: int = 0
    tokens: int = 0
    flops: float | None = 0.0
    """Epoch-comparable FLOPs so far; None once an episode's are unknown (no model card)."""
    cost_usd: float = 0.0
    """Dollars spent so far (calls without prices count 0; plan-time checks refuse a spend
    cap on such models)."""
    failures: FailureSummary = field(default_factory=FailureSummary)
    """Errored episodes of this session by failure class, with reasons."""
    listeners: list[Callable[[Progress], None]] = field(default_factory=list)

    def add(self, e: Episode) -> None:
        self.done += 1
        setattr(self, e.status, getattr(self, e.status) + 1)
        self.tokens += e.totals.prompt_tokens + e.totals.completion_tokens
        f = e.totals.flops_epoch
        self.flops = None if self.flops is None or f is None else self.flops + f
        self.cost_usd += e.totals.cost_usd or 0.0
        self.failures.add(e)
        for f in self.listeners:
            f(self)


@dataclass
class RunResult:
    run_dir: Path
    manifest: RunManifest
    progress: Progress
    interrupted: bool = False
    stop_reason: str | None = None
    """Why scheduling stopped before the plan was done (the run-level spend cap)."""
    notes: list[str] = field(default_factory=list)
    """This session's additions to the manifest's ``notes`` (e.g. a Ray node skipped)."""


def run_model_configs(exp: Experiment, run_dir: Path) -> list[ModelConfig]:
    """The experiment's model configs with run-wide settings applied: ``cache: true`` turns on
    every model's response cache (unless a model says otherwise), and a launched server's log
    goes to the run folder (``logs/<model id>.log``) unless the model names a file."""
    out: list[ModelConfig] = []
    for cfg in exp.model_configs():
        opts = dict(cfg.options)
        if exp.cache:
            opts.setdefault("cache", True)
        launch = opts.get("launch")
        if isinstance(launch, dict) and not launch.get("log_file"):
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in cfg.id)
            opts["launch"] = {**launch, "log_file": str(run_dir / "logs" / f"{safe}.log")}
        out.append(cfg.model_copy(update={"options": opts}))
    return out


class _ModelPool:
    """One provider instance per model id, shared by every episode of the run."""

    def __init__(self, configs: list[ModelConfig]) -> None:
        cat = default_catalog()
        self.configs = {c.id: c for c in configs}
        self.cards: dict[str, ModelCard | None] = {
            c.id: cat.get(c.card) if c.card else None for c in configs
        }
        self.models: dict[str, Any] = {}
        for c in configs:
            provider = registry.get("model", c.provider)
            self.models[c.id] = provider(c)
            warn_missing_card(c.id, self.cards[c.id])  # once per model id per process

    def for_episode(self, spec: EpisodeSpec, binding: EpisodeBinding) -> Model:
        m: Any = self.models[spec.model]
        bind: Any = getattr(m, "bind", None)
        return bind(binding) if bind is not None else m

    def entries(self) -> list[CatalogEntry]:
        out = []
        for mid, c in self.configs.items():
            card = self.cards[mid]
            out.append(
                CatalogEntry(
                    id=mid, provider=c.provider, model=c.model,
                    family=card.family if card else None,
                    train_flop=card.train_flop if card else None,
                    params_active=card.n_active if card else None,
                    simulated=bool(card and card.simulated) or c.provider == "sim",
                )
            )
        return out

    async def aclose(self) -> None:
        for m in self.models.values():
            closer: Any = getattr(m, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()


class Executor:
    """Runs one experiment into one run folder."""

    name = "local"

    def __init__(self, exp: Experiment, out: Path, raw_config: dict[str, Any] | None = None,
                 config_path: str | None = None, extend: bool = False) -> None:
        self.exp = exp
        self.extend = extend
        self.stop_reason: str | None = None
        self.notes: list[str] = []
        """What this session wants recorded in the manifest's ``notes`` (e.g. a skipped node)."""
        self.store = RunStore(out)
        self.raw = raw_config if raw_config is not None else exp.model_dump(mode="json")
        self.config_path = config_path
        self.progress = Progress()

    def _manifest(self, resume: bool, planned: int, models: _ModelPool) -> RunManifest:
        old = self.store.read_manifest()
        if old is not None and resume:
            resolved = self.exp.model_dump(mode="json")
            changes = check_resume(old, resolved, self.extend)
            extensions = list(old.extensions)
            if changes:
                extensions.append(extension_record(self.raw, resolved, changes))
            return old.model_copy(update={
                "status": "running", "finished_at": None, "sessions": old.sessions + 1,
                "planned_episodes": planned, "extensions": extensions, "stop_reason": None,
                "executor": self.name,
            })
        return RunManifest(
            run_id=uuid.uuid4().hex[:12],
            name=self.exp.name,
            config=self.raw,
            resolved=self.exp.model_dump(mode="json"),
            config_path=self.config_path,
            package_version=__version__,
            git_sha=git_sha(),
            host=socket.gethostname(),
            python=platform.python_version(),
            started_at=now(),
            planned_episodes=planned,
            models=models.entries(),
            executor=self.name,
        )

    async def run(self, resume: bool = False) -> RunResult:
        with RunLock(self.store.dir):
            return await self._run_locked(resume)

    async def _run_locked(self, resume: bool) -> RunResult:
        if self.store.exists() and not resume:
            raise UserError(
                f"{self.store.dir} already holds a run; pass --resume to continue it, "
                "or choose another --out"
            )
        tasks = open_tasks(self.exp)
        planned = make_plan(self.exp, tasks)  # lazy: no spec exists until a worker asks
        check_plan(self.exp, tasks)
        await prepare_images_async(self.exp, tasks)  # before anything is written
        if resume and self.store.exists():
            check_labels((e.spec for e in self.store.iter_episodes()), planned.heads())
        provider = self._provider()
        models = _ModelPool(run_model_configs(self.exp, self.store.dir))
        previous = self.store.read_manifest() if resume else None
        manifest = self._manifest(resume, len(planned), models)
        self.store.reserve()
        self.store.write_manifest(manifest)
        appended_before = self.progress.done
        interrupted = False
        status = "finished"
        try:
            self.store.open()
            done = self.store.finished_ids()  # the ids on disk: the one set a resume keeps
            self.progress.total = len(planned)
            self.progress.skipped = (sum(planned.contains(e.spec) for e in self.store.iter_episodes())
                                     if done else 0)
            todo = _Todo(planned, done, len(planned) - self.progress.skipped)
            by_family = {t.name: t for t in tasks}
            await self._run_all(todo, by_family, models, provider, manifest.run_id)
        except asyncio.CancelledError:
            interrupted, status = True, "interrupted"
            raise
        except BaseException:
            status = "failed"
            raise
        finally:
            self.store.close()
            with contextlib.suppress(Exception):
                await asyncio.shield(provider.aclose())
            await models.aclose()
            self.store.release_reserve()  # room for the manifest even on a full disk
            if self.stop_reason is not None and status == "finished":
                status = "interrupted"
            if status == "failed" and previous is not None and self.progress.done == appended_before:
                manifest = previous  # a resume that ran nothing leaves the record as it was
            else:
                manifest = manifest.model_copy(update={
                    "status": status, "finished_at": now(), "stop_reason": self.stop_reason,
                    "notes": [*manifest.notes, *self.notes]})
            self.store.write_manifest(manifest)
        return RunResult(self.store.dir, manifest, self.progress, interrupted, self.stop_reason,
                         list(self.notes))

    def _provider(self) -> SandboxProvider:
        return registry.get("sandbox", self.exp.sandbox)(**self.exp.sandbox_options)

    def _keep_interrupted(self, spec: EpisodeSpec, transcript: Transcript) -> None:
        """An episode cut off by a stop: its transcript so far goes to the transcript
        store's ``interrupted`` rows (``ptebench show RUN --interrupted``); it has no line in
        episodes.jsonl, so ``--resume`` runs it again and its finished record supersedes."""
        self.store.transcripts.put_interrupted(spec, transcript, INTERRUPTED)

    def _spent_before(self) -> float:
        """What earlier sessions of a resumed run spent: the spend cap covers the whole run."""
        if self.exp.spend_cap_usd is None:
            return 0.0
        return sum(e.totals.cost_usd or 0.0 for e in self.store.iter_episodes())

    def _cap_reached(self, spent: float, not_started: int) -> bool:
        """The spend-cap rule of every executor: no new episode once the run has spent the
        cap (``spent`` includes earlier sessions); the first time, says why in
        ``stop_reason``."""
        cap = self.exp.spend_cap_usd
        if cap is None or spent < cap:
            return False
        if self.stop_reason is None:
            self.stop_reason = (
                f"spend cap reached: ${spent:.6g} spent of spend_cap_usd ${cap:g}; "
                f"{not_started} episode(s) not started (raise the cap and --resume to run "
                "them)")
        return True

    async def _run_all(self, todo: _Todo, tasks: dict[str, PlannedTask],
                       models: _ModelPool, provider: SandboxProvider, run_id: str) -> None:
        before = self._spent_before()

        async def worker() -> None:
            while True:
                spent = before + self.progress.cost_usd + sum(unrecorded.values())
                if self._cap_reached(spent, todo.left):
                    return
                spec = await todo.next()
                if spec is None:
                    return
                episode, transcript = await run_episode(
                    spec, tasks[spec.task_family], models, provider, self.exp, run_id,
                    on_interrupt=self._keep_interrupted)
                # its cost counts at once: the cap must not wait for the batch's fsync
                unrecorded[spec.episode_id] = episode.totals.cost_usd or 0.0
                # handed over without waiting: it counts (progress) once its batch is durable
                durable = commit.submit(episode, transcript)
                if commit.backlog >= MAX_BATCH:  # the disk is behind: wait for it
                    await asyncio.shield(durable)

        # cost of the finished episodes whose batch is not durable yet
        unrecorded: dict[str, float] = {}

        def recorded(e: Episode) -> None:
            unrecorded.pop(e.spec.episode_id, None)
            self.progress.add(e)

        commit = GroupCommit(self.store, recorded)
        n = min(self.exp.concurrency.episodes, max(1, todo.left))
        workers: list[asyncio.Task[Any]] = [asyncio.create_task(worker()) for _ in range(n)]
        watcher: asyncio.Task[Any] = asyncio.create_task(commit.failed.wait())
        try:
            pending: set[asyncio.Task[Any]] = set(workers)
            while pending and not commit.failed.is_set():
                done, _ = await asyncio.wait(pending | {watcher},
                                             return_when=asyncio.FIRST_COMPLETED)
                for t in done - {watcher}:
                    pending.discard(t)
                    t.result()  # a worker's exception ends the run, as before
            await commit.flush()  # raises a batch's write error (the disk is full)
        finally:
            for w in [*workers, watcher]:
                w.cancel()
            await asyncio.gather(*workers, watcher, return_exceptions=True)
            # every finished episode handed over is written before the store closes
            await commit.aclose()


class _Todo:
    """The episodes still to run, drawn one at a time from the lazy plan, skipping those on
    disk (workers share it; the event loop is single-threaded). Every draw, and every 1,000
    specs of a long stretch of recorded episodes (a resume), yields to the loop, so SIGTERM
    stays responsive."""

    def __init__(self, plan: Iterable[EpisodeSpec], done: set[str], count: int) -> None:
        self._specs = iter(plan)
        self._done = done
        self.left = count
        """Episodes not yet handed out."""

    async def next(self) -> EpisodeSpec | None:
        # Each draw yields to the loop once: an episode that never suspends (a simulated
        # model, no sandbox) would otherwise let one worker run the whole plan with the
        # loop starved — SIGTERM's handler and the other workers never got a turn.
        await asyncio.sleep(0)
        for n, spec in enumerate(self._specs, 1):
            if spec.episode_id not in self._done:
                self.left -= 1
                return spec
            if n % 1000 == 0:
                await asyncio.sleep(0)
        return None


class RunLock:
    """An exclusive lock on a run folder (``.lock``, flock) for one ``run`` / ``--resume``.

    Two processes on one ``--out`` duplicated episodes (two run ids in one file); the
    second now stops at once with a clear message. The kernel drops the lock when the
    holder dies, so a killed run never leaves a stale lock.

    Raises:
        UserError: another process holds the folder.
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(f"{self.path.parent} is in use by another ptebench run (pid "
                            f"{holder}); wait for it to finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None


def episode_limits(exp: Experiment, family: Any, limits_override: Limits | None) -> Limits:
    """Defaults ← the family's defaults ← the instance's ← the experiment's explicit settings."""
    base = Limits()
    base = base.merged(getattr(family, "default_limits", None))
    base = base.merged(limits_override)
    return base.merged(exp.limits)


class LazySandbox:
    """The episode's sandbox, acquired from the provider on first use.

    Scaffolds that never act (direct, cot, ...) on tasks whose setup and scorer need no
    sandbox (arith) then cost no container at all. Behaves as the Sandbox protocol.
    """

    def __init__(self, provider: SandboxProvider, spec: SandboxSpec, labels: dict[str, str]) -> None:
        self._provider = provider
        self._spec = spec
        self._labels = labels
        self._stack = contextlib.AsyncExitStack()
        self._box: Sandbox | None = None
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        # The backend's name even before acquisition: tasks decide what they may do (e.g.
        # refuse root setup on the host) from it, and setup is usually the first use.
        return self._box.name if self._box is not None else self._provider.name

    @property
    def acquired(self) -> bool:
        return self._box is not None

    async def get(self) -> Sandbox:
        async with self._lock:
            if self._box is None:
                self._box = await self._stack.enter_async_context(
                    self._provider.acquire(self._spec, self._labels)
                )
            return self._box

    async def exec(self, cmd: str | list[str], timeout: float | None = None,
                   input: str | bytes | None = None, cwd: str | None = None,
                   user: str | None = None, env: dict[str, str] | None = None,
                   output_limit: int = DEFAULT_OUTPUT_LIMIT) -> ExecResult:
        box = await self.get()
        return await box.exec(cmd, timeout=timeout, input=input, cwd=cwd, user=user, env=env,
                              output_limit=output_limit)

    async def read_file(self, path: str) -> bytes:
        return await (await self.get()).read_file(path)

    async def exec_service(self, service: str, cmd: str | list[str], timeout: float | None = None,
                           input: str | bytes | None = None, user: str | None = None,
                           env: dict[str, str] | None = None) -> ExecResult:
        box = await self.get()
        if not isinstance(box, ServiceSandbox):
            raise SandboxError(f"the {box.name} sandbox has no service containers")
        return await box.exec_service(service, cmd, timeout=timeout, input=input, user=user, env=env)

    async def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        await (await self.get()).write_file(path, data, mode)

    async def snapshot(self) -> str:
        return await (await self.get()).snapshot()

    async def restore(self, snapshot_id: str) -> Sandbox:
        return await (await self.get()).restore(snapshot_id)

    async def discard_snapshot(self, snapshot_id: str) -> None:
        discard: Any = getattr(self._box, "discard_snapshot", None)
        if discard is not None:
            await discard(snapshot_id)

    async def stop_agent(self) -> None:
        """Kill the agent's processes (see DockerSandbox.stop_agent), if a sandbox was
        acquired and its backend can."""
        stop: Any = getattr(self._box, "stop_agent", None)
        if stop is not None:
            await stop()

    async def close(self) -> None:
        await self._stack.aclose()

    def profile(self) -> dict[str, object]:
        return dict(self._box.profile()) if self._box is not None else {}


async def stop_agent(lazy: LazySandbox | None, family: Any, instance: Any) -> None:
    """Before scoring: kill every process the agent left running, unless the task's point
    is a process that survives the episode (``stop_agent_before_scoring`` says so). A
    sandbox that cannot be stopped raises SandboxError: the episode is an infrastructure
    error, never a score."""
    if lazy is None or not lazy.acquired:
        return
    wants: Any = getattr(family, "stop_agent_before_scoring", None)
    if wants is None or wants(instance):
        await lazy.stop_agent()


INTERRUPTED = ("interrupted: the run was stopped (SIGTERM or Ctrl-C) while this episode was "
               "in flight; --resume runs it again")


async def run_episode(spec: EpisodeSpec, task: PlannedTask, models: _ModelPool,
                      provider: SandboxProvider, exp: Experiment, run_id: str,
                      executor: str = "local",
                      on_interrupt: Callable[[EpisodeSpec, Transcript], None] | None = None,
                      ) -> tuple[Episode, Transcript]:
    """Play one episode to its record and transcript. Never raises for a failure inside the
    episode (its traceback goes into the transcript). Cancelled (a stop of the run), it
    hands what it did so far — the cancelled model call included — to ``on_interrupt``
    before the cancellation goes on."""
    started = now()
    t0 = time.monotonic()
    instance = task.instances[spec.task_id]
    family = task.family
    limits = episode_limits(exp, family, instance.limits)
    trace = Trace()
    cfg = models.configs[spec.model]
    card = models.cards[spec.model]
    binding = EpisodeBinding(
        episode_id=spec.episode_id, seed=spec.seed, task_family=spec.task_family,
        task_id=spec.task_id, hidden=instance.reference.model_dump(mode="json"),
    )
    native = cfg.native_tools if cfg.native_tools is not None else bool(card and card.native_tools)
    metered = MeteredModel(spec.model, models.for_episode(spec, binding), card, trace, limits,
                           native_tools=native and not cfg.completion)
    scaffold_cls = registry.get("scaffold", spec.scaffold)
    params = scaffold_cls.Params.model_validate(spec.scaffold_params)
    oracle_on = bool(getattr(params, "oracle_feedback", False))
    status: str = "ok"
    reason: str | None = None
    submission: str | None = None
    score: Score | None = None
    profile: dict[str, Any] | None = None
    oracle: Oracle | None = None
    backend = "none"
    ctx: EpisodeContext | None = None
    tb: str | None = None
    labels = {"ptebench.run": run_id, "ptebench.episode": spec.episode_id}
    failure: FailureClass | None = None
    phase: Phase = "setup"
    try:
        sb_spec = family.sandbox_spec(instance)
        if sb_spec is not None and sb_spec.network == "full" and not exp.allow_full_internet:
            raise ConfigError(
                f"task {spec.task_family}/{spec.task_id} asks for full internet access; "
                "set allow_full_internet: true in the experiment to grant it"
            )
        lazy = LazySandbox(provider, sb_spec, labels) if sb_spec is not None else None
        sandbox: Sandbox | None = lazy
        async with contextlib.AsyncExitStack() as stack:
            if lazy is not None:
                stack.push_async_callback(lazy.close)

                def _record() -> None:
                    nonlocal backend, profile
                    if lazy.acquired:
                        backend, profile = lazy.name, lazy.profile()

                stack.callback(_record)  # runs first on exit, error or not
            await family.setup(sandbox, instance)
            phase = "scaffold"
            env = Environment(sandbox, list(instance.tools), limits, trace)
            if oracle_on:
                async def _oracle(candidate: str | None) -> float | None:
                    return (await family.score(sandbox, instance, candidate)).value
                oracle = Oracle(_oracle)
            ctx = EpisodeContext(task=instance.view(), model=metered, env=env, limits=limits,
                                 trace=trace, seed=spec.seed, oracle=oracle)
            scaffold = scaffold_cls(params)
            try:
                submission = await asyncio.wait_for(scaffold.run(ctx), limits.wall_s)
            except LimitReached as e:
                status, reason, submission = "limit", str(e), ctx.best
            except TimeoutError:
                if limits.wall_s is not None and trace.elapsed() >= limits.wall_s * 0.99:
                    status, reason, submission = "limit", f"wall_s limit reached ({limits.wall_s}s)", ctx.best
                else:
                    raise
            await stop_agent(lazy, family, instance)
            phase = "score"
            try:
                score = await family.score(sandbox, instance, submission)
            except Exception as e:  # a broken scorer is this episode's error, not the run's
                status, reason = "error", f"scoring failed: {type(e).__name__}: {e}"
                tb = traceback.format_exc()
                failure = classify(e, "score")

    except asyncio.CancelledError:
        if on_interrupt is not None:
            partial = trace.transcript.finish(spec.episode_id, None, None,
                                              instance.reference.answer, INTERRUPTED)
            try:
                on_interrupt(spec, partial)
            except Exception:  # the stop goes on: a record that cannot be kept is logged
                log.warning("episode %s: cannot keep its interrupted transcript", spec.episode_id,
                            exc_info=True)
        raise
    except Exception as e:
        status, reason = "error", f"{type(e).__name__}: {e}"
        tb = traceback.format_exc()
        failure = classify(e, phase)
        log.debug("episode %s failed", spec.episode_id, exc_info=True)
    wall = time.monotonic() - t0
    transcript = trace.transcript.finish(spec.episode_id, submission, score,
                                         instance.reference.answer, tb)
    episode = Episode(
        run_id=run_id,
        spec=spec,
        model_family=card.family if card else None,
        train_flop=card.train_flop if card else None,
        simulated=bool(card and card.simulated) or cfg.provider == "sim",
        oracle_feedback=oracle_on,
        oracle_calls=oracle.calls if oracle else 0,
        sandbox=backend,
        sandbox_profile=profile,
        steps=trace.steps,
        calls=trace.calls,
        submission=submission,
        score=score,
        status=status,  # type: ignore[arg-type]
        reason=reason,
        failure=failure,
        totals=Totals.of(trace.calls, trace.steps, wall),
        metrics=dict(ctx.metrics) if ctx else {},
        started_at=started,
        finished_at=now(),
        host=socket.gethostname(),
        executor=executor,
    )
    return episode, transcript


def run_experiment(exp: Experiment, out: Path, resume: bool = False, raw: dict[str, Any] | None = None,
                   config_path: str | None = None,
                   on_progress: Callable[[Progress], None] | None = None,
                   extend: bool = False) -> RunResult:
    """Run an experiment to completion (or interruption) in a fresh event loop.

    SIGTERM is turned into a clean stop like Ctrl-C: finished episodes stay on disk, the
    manifest says ``interrupted``, and ``resume=True`` continues the run.
    """
    if exp.executor == "ray":
        from ptebench.runners.ray import RayExecutor

        executor: Executor = RayExecutor(exp, out, raw, config_path, extend)
    else:
        executor = Executor(exp, out, raw, config_path, extend)
    if on_progress is not None:
        executor.progress.listeners.append(on_progress)

    async def main() -> RunResult:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        if me is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGTERM, me.cancel)
        return await executor.run(resume)

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        manifest = executor.store.read_manifest()
        if manifest is None:  # interrupted before the run folder was written
            raise
        return RunResult(executor.store.dir, manifest, executor.progress, interrupted=True)
