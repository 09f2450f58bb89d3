"""The Ray executor: the episodes of a run as Ray tasks on a cluster, one writer on the driver.

The driver plans the run exactly as the local executor does, then hands every episode still to
do to Ray as a task (at most ``concurrency.episodes`` in flight). A task plays its episode with
the local executor's own ``run_episode`` (one step loop) inside the worker process, which opens
the task families, the model providers and the sandbox provider once per run — so each node
acquires its sandboxes from its own Docker engine — and returns the finished ``Episode`` and
its transcript. The driver appends every episode that comes back to the run folder's ``RunStore``: the run folder,
``--resume``, the history catalog and every command downstream are the same as for a local run.

A worker or node that dies mid-episode makes Ray re-run the task (``ray.max_retries``); the
driver records an episode once, by id, however many times it was played. An episode still lost
after its retries is not recorded: the run ends ``failed`` naming it, and ``--resume`` plays it.

Every node needs ptebench (same version) and the task files at the same paths as the driver;
model endpoints must be reachable from every node (a ``launch``-ed local server is refused).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from ptebench import registry
from ptebench.errors import ConfigError, UserError
from ptebench.models.transcript import Transcript
from ptebench.records import Episode, EpisodeSpec
from ptebench.runners.config import Experiment
from ptebench.runners.local import (
    Executor,
    RunResult,
    _ModelPool,  # pyright: ignore[reportPrivateUsage]
    _Todo,  # pyright: ignore[reportPrivateUsage]
    run_episode,
    run_model_configs,
)
from ptebench.runners.plan import PlannedTask, open_tasks
from ptebench.sandbox.base import Sandbox, SandboxProvider, SandboxSpec

log = logging.getLogger("ptebench.runner.ray")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ConfigError(
            "executor: ray needs Ray installed: pip install 'ptebench[ray]'"
        ) from e
    return ray


# -- the worker side ----------------------------------------------------------------------

class _NodeRun:
    """What one worker process keeps for one run: an event loop thread, the task families,
    the models and the sandbox provider of the node it runs on."""

    def __init__(self, exp: Experiment, run_id: str, run_dir: str) -> None:
        self.exp, self.run_id = exp, run_id
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ptebench-ray-episodes",
                                       daemon=True)
        self.thread.start()
        self.tasks: dict[str, PlannedTask] = {}
        self.models: _ModelPool | None = None
        self.provider: SandboxProvider | None = None
        try:
            self._call(self._open(Path(run_dir)))
        except BaseException:
            self.close()
            raise

    async def _open(self, run_dir: Path) -> None:
        self.tasks = {t.name: t for t in open_tasks(self.exp)}
        self.models = _ModelPool(run_model_configs(self.exp, run_dir))
        self.provider = registry.get("sandbox", self.exp.sandbox)(**self.exp.sandbox_options)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def play(self, spec: EpisodeSpec) -> tuple[Episode, Transcript]:
        task = self.tasks.get(spec.task_family)
        if task is None or spec.task_id not in task.instances:
            raise ConfigError(
                f"episode {spec.episode_id}: task {spec.task_family}/{spec.task_id} is not among "
                "the tasks this node opened; every node needs the same task files and ptebench"
            )
        assert self.models is not None and self.provider is not None
        return self._call(run_episode(spec, task, self.models, self.provider, self.exp,
                                      self.run_id, executor="ray"))

    async def _aclose(self) -> None:
        if self.provider is not None:
            with contextlib.suppress(Exception):
                await self.provider.aclose()
        if self.models is not None:
            await self.models.aclose()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


_NODE: dict[str, _NodeRun] = {}
_NODE_LOCK = threading.Lock()


def _close_all() -> None:
    with _NODE_LOCK:
        for state in _NODE.values():
            state.close()
        _NODE.clear()


atexit.register(_close_all)


def play_episode(exp: Experiment, run_id: str, run_dir: str, spec_json: str) -> tuple[str, str]:
    """The body of one Ray task: play one planned episode, return its record and its
    transcript as JSON."""
    spec = EpisodeSpec.model_validate_json(spec_json)
    with _NODE_LOCK:
        state = _NODE.get(run_id)
        if state is None:
            for old in list(_NODE.values()):  # a worker process reused by a later run
                old.close()
            _NODE.clear()
            state = _NODE[run_id] = _NodeRun(exp, run_id, run_dir)
    episode, transcript = state.play(spec)
    return episode.model_dump_json(), transcript.model_dump_json()


# -- the driver side ----------------------------------------------------------------------

class _NoSandboxes:
    """The driver's provider: the driver never plays an episode, the nodes do."""

    name = "none"

    def acquire(self, spec: SandboxSpec, labels: dict[str, str]
                ) -> contextlib.AbstractAsyncContextManager[Sandbox]:
        @contextlib.asynccontextmanager
        async def _never() -> AsyncGenerator[Sandbox]:
            raise RuntimeError("the ray driver acquires no sandboxes")
            yield  # pragma: no cover

        return _never()

    async def aclose(self) -> None:
        return None


class RayExecutor(Executor):
    """Runs one experiment on a Ray cluster into one run folder on the driver."""

    name = "ray"

    async def run(self, resume: bool = False) -> RunResult:
        launched = [c.id for c in self.exp.model_configs() if c.options.get("launch")]
        if launched:
            raise ConfigError(
                f"executor: ray: model(s) {', '.join(launched)} launch a server in-process, which "
                "every Ray worker would do again; start the server once and give its base_url"
            )
        ray = _import_ray()
        started = False
        if not ray.is_initialized():
            address = self.exp.ray.address
            try:
                ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise UserError(f"executor: ray: cannot join the Ray cluster at "
                                f"{address or '(a new local one)'}: {e}") from e
            started = True
        try:
            return await super().run(resume)
        finally:
            if started:
                ray.shutdown()

    def _provider(self) -> SandboxProvider:
        return _NoSandboxes()

    async def _run_all(self, todo: _Todo, tasks: dict[str, PlannedTask],
                       models: _ModelPool, provider: SandboxProvider, run_id: str) -> None:
        ray = _import_ray()
        rex: Any = ray.exceptions

        opts = self.exp.ray
        remote = ray.remote(play_episode).options(
            num_cpus=opts.num_cpus, resources=dict(opts.resources) or None,
            max_retries=opts.max_retries, retry_exceptions=False,
        )
        exp_ref = ray.put(self.exp)
        pending: dict[asyncio.Future[Any], tuple[Any, EpisodeSpec]] = {}
        lost: list[tuple[EpisodeSpec, str]] = []
        limit = self.exp.concurrency.episodes

        async def submit() -> None:
            while len(pending) < limit:
                spec = await todo.next()  # drawn lazily from the plan
                if spec is None:
                    return
                ref = remote.remote(exp_ref, run_id, str(self.store.dir), spec.model_dump_json())
                cf: concurrent.futures.Future[Any] = ref.future()
                pending[asyncio.wrap_future(cf)] = (ref, spec)

        try:
            await submit()
            while pending:
                ready, _ = await asyncio.wait(list(pending), return_when=asyncio.FIRST_COMPLETED)
                for fut in ready:
                    _, spec = pending.pop(fut)
                    try:
                        episode_json, transcript_json = fut.result()
                    except (rex.WorkerCrashedError, rex.NodeDiedError, rex.OwnerDiedError,
                            rex.ObjectLostError, rex.TaskUnschedulableError) as e:
                        lost.append((spec, f"{type(e).__name__}: {str(e).splitlines()[0]}"))
                        continue
                    except rex.RayTaskError as e:
                        cause = e.cause if isinstance(e.cause, BaseException) else None
                        if isinstance(cause, UserError):
                            raise UserError(f"executor: ray: on a worker: {cause}") from e
                        raise
                    episode = Episode.model_validate_json(episode_json)
                    transcript = Transcript.model_validate_json(transcript_json)
                    # False: already recorded (a re-run) — nothing is written twice
                    if self.store.append(episode, transcript):
                        self.progress.add(episode)
                await submit()
        finally:
            for ref, _ in pending.values():
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            for fut in pending:
                fut.cancel()
        if lost:
            names = ", ".join(f"{s.episode_id} ({why})" for s, why in lost[:5])
            more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
            raise UserError(
                f"executor: ray: {len(lost)} episode(s) were lost with their workers after "
                f"{opts.max_retries} retries and are not recorded: {names}{more}; "
                "--resume plays them"
            )
