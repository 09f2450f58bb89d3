"""The Ray executor: the episodes of a run played on a Ray cluster, one writer on the driver.

The driver plans the run exactly as the local executor does and writes ``run.json``
(``"executor": "ray"``). Then, for every node of the cluster that can hold episodes (alive, with
``ray.num_cpus`` CPUs and the ``ray.resources`` free), it starts one ptebench worker — a Ray
actor pinned to that node (``NodeAffinitySchedulingStrategy``, hard) — which opens the task
families, the model providers and the sandbox provider of that node once for the run: each node
acquires its sandboxes from its own Docker engine.

**Node check.** Each worker first answers a check: the same ptebench version as the driver, the
task files open, and the sandbox backend works there (for Docker: an engine answers at the
node's ``DOCKER_HOST`` and it has the ``ptebench/base`` image). A node that fails, or does not
answer within ``ray.check_timeout_s``, is reported — a warning and a line in the manifest's
``notes`` naming the node id, its host and why — and gets no episodes; the other nodes play
them. No node passing is an error (exit 2) naming every node and its reason.

**Scheduling.** The driver keeps the queue: an episode goes to the least-loaded passing node
with room (a node holds ``its CPUs / ray.num_cpus`` episodes at once; ``concurrency.episodes``
bounds the whole cluster). A model named in ``ray.model_resources`` only goes to nodes that
declare those Ray resources (``ray start --resources``), e.g. the node that serves it. The
run-level spend cap stops new episodes once reached, as the local executor does. Every
episode that comes back is appended to the driver's ``RunStore`` with the Ray node id it ran on
(``node``): the run folder, ``--resume``, the history catalog and every command downstream
are the same as for a local run.

**Faults.** A worker that dies mid-episode (its process or its node's raylet killed) fails the
episodes it held; the driver plays each again on another node (at most ``ray.max_retries``
times) and records an episode once, by id. The dead worker is pinged: a restarted one (its node
alive) gets episodes again, one that stays dead drops its node from the run, with a note. An
episode still lost after its retries is not recorded: the run ends ``failed`` naming it, and
``--resume`` plays it. A killed driver takes its workers with it; ``--resume`` with the same
executor plays exactly the episodes not in ``episodes.jsonl``. At the end each worker closes its
sandbox provider and removes whatever its engine still holds for the run (by the run label).

Every node needs ptebench (same version) and the task files at the same paths as the driver;
model endpoints must be reachable from the nodes that play the model (a ``launch``-ed local
server is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ptebench import __version__, registry
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


# -- the worker side: one actor per node ----------------------------------------------------

class NodeWorker:
    """The ptebench worker of one node for one run (a Ray actor, async: its episodes share
    one event loop, as in the local executor): the task families, the models and the
    sandbox provider of the node it runs on."""

    def __init__(self, exp: Experiment, run_id: str, run_dir: str) -> None:
        import ray

        self.exp, self.run_id, self.run_dir = exp, run_id, Path(run_dir)
        self.node_id: str = ray.get_runtime_context().get_node_id()
        self.host = socket.gethostname()
        self.tasks: dict[str, PlannedTask] | None = None
        self.models: _ModelPool | None = None
        self.provider: SandboxProvider | None = None

    def _open(self) -> None:
        if self.provider is None:
            self.tasks = {t.name: t for t in open_tasks(self.exp)}
            self.models = _ModelPool(run_model_configs(self.exp, self.run_dir))
            self.provider = registry.get("sandbox", self.exp.sandbox)(**self.exp.sandbox_options)

    async def check(self, version: str) -> dict[str, str | None]:
        """This node's id, host and why it cannot play episodes (None: it can)."""
        problem: str | None = None
        if version != __version__:
            problem = f"ptebench {__version__} here, {version} on the driver"
        else:
            try:
                self._open()
                probe: Any = getattr(self.provider, "node_problem", None)
                if probe is not None:
                    problem = await asyncio.get_running_loop().run_in_executor(None, probe)
            except Exception as e:  # a node that cannot even open the tasks is skipped
                problem = f"{type(e).__name__}: {e}"
        return {"node": self.node_id, "host": self.host, "problem": problem}

    async def ping(self) -> str:
        return self.node_id

    async def play(self, spec_json: str) -> tuple[str, str]:
        """Play one planned episode; its record (with this node's id) and transcript as JSON."""
        spec = EpisodeSpec.model_validate_json(spec_json)
        self._open()
        assert self.tasks is not None and self.models is not None and self.provider is not None
        task = self.tasks.get(spec.task_family)
        if task is None or spec.task_id not in task.instances:
            raise ConfigError(
                f"episode {spec.episode_id}: task {spec.task_family}/{spec.task_id} is not among "
                f"the tasks node {self.node_id} ({self.host}) opened; every node needs the same "
                "task files and ptebench"
            )
        episode, transcript = await run_episode(spec, task, self.models, self.provider, self.exp,
                                                self.run_id, executor="ray")
        episode = episode.model_copy(update={"node": self.node_id})
        return episode.model_dump_json(), transcript.model_dump_json()

    async def close(self) -> None:
        """Close the sandbox provider and the models; remove what the engine still holds for
        this run (e.g. from an earlier worker of this node that was killed)."""
        if self.provider is not None:
            with contextlib.suppress(Exception):
                await self.provider.aclose()
            purge: Any = getattr(self.provider, "purge_run", None)
            if purge is not None:
                with contextlib.suppress(Exception):
                    await asyncio.get_running_loop().run_in_executor(None, purge, self.run_id)
        if self.models is not None:
            await self.models.aclose()


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


@dataclass
class _Node:
    node_id: str
    host: str
    address: str
    resources: dict[str, float]
    capacity: int
    actor: Any = None
    inflight: int = 0
    state: Literal["ok", "checking", "gone"] = "ok"

    @property
    def label(self) -> str:
        return f"ray node {self.node_id} ({self.host}, {self.address})"

    def custom_resources(self) -> dict[str, float]:
        """The resources ``ray start --resources`` declared (not CPU, memory, node:<ip>)."""
        return {k: v for k, v in self.resources.items() if not k.startswith("node:")
                and k not in ("CPU", "GPU", "memory", "object_store_memory")}

    def offers(self, need: dict[str, float]) -> bool:
        return all(self.resources.get(k, 0.0) >= v for k, v in need.items())


@dataclass
class _Queue:
    """The driver's queue of episodes still to start, per model, in plan order."""

    by_model: dict[str, deque[tuple[int, EpisodeSpec]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(q) for q in self.by_model.values())


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"


class RayExecutor(Executor):
    """Runs one experiment on a Ray cluster into one run folder on the driver."""

    name = "ray"
    _exp_ref: Any = None

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

    def _note(self, text: str) -> None:
        """Report now (log) and in the manifest (``notes``), also if the driver dies later."""
        log.warning("%s", text)
        self.notes.append(text)
        m = self.store.read_manifest()
        if m is not None:
            self.store.write_manifest(m.model_copy(update={"notes": [*m.notes, text]}))

    def _candidates(self, ray: Any) -> list[_Node]:
        opts = self.exp.ray
        out: list[_Node] = []
        for n in ray.nodes():
            if not n.get("Alive"):
                continue
            res = {str(k): float(v) for k, v in (n.get("Resources") or {}).items()}
            cpus = res.get("CPU", 0.0)
            cap = (int(cpus / opts.num_cpus + 1e-9) if opts.num_cpus > 0
                   else self.exp.concurrency.episodes)
            node = _Node(str(n["NodeID"]), str(n.get("NodeManagerHostname") or "?"),
                         str(n.get("NodeManagerAddress") or "?"), res, cap)
            if cap >= 1 and node.offers(dict(opts.resources)):
                out.append(node)
        return out

    async def _start_workers(self, ray: Any, nodes: list[_Node], run_id: str) -> list[_Node]:
        """One worker per node, checked; the nodes that passed (the others are noted)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        opts = self.exp.ray
        worker = ray.remote(NodeWorker)
        # held for the whole session: Ray restarts a killed worker from this very object
        self._exp_ref = exp_ref = ray.put(self.exp)
        checks: dict[asyncio.Future[Any], _Node] = {}
        for node in nodes:
            node.actor = worker.options(
                num_cpus=0, max_concurrency=node.capacity + 4, max_restarts=opts.max_retries,
                max_task_retries=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
            ).remote(exp_ref, run_id, str(self.store.dir))
            checks[asyncio.wrap_future(node.actor.check.remote(__version__).future())] = node
        _, late = await asyncio.wait(list(checks), timeout=opts.check_timeout_s)
        passed: list[_Node] = []
        for fut, node in checks.items():
            if fut in late:
                fut.cancel()
                problem = f"no answer to the node check within {opts.check_timeout_s:g}s"
            else:
                try:
                    answer = fut.result()
                    problem = answer["problem"]
                    node.host = answer["host"] or node.host
                except Exception as e:
                    problem = f"its ptebench worker failed to start: {_why(e)}"
            if problem is None:
                passed.append(node)
                continue
            node.state = "gone"
            with contextlib.suppress(Exception):
                ray.kill(node.actor)
            self._note(f"{node.label} skipped: {problem}; its episodes go to the other nodes")
        return passed

    async def _run_all(self, todo: _Todo, tasks: dict[str, PlannedTask],
                       models: _ModelPool, provider: SandboxProvider, run_id: str) -> None:
        ray = _import_ray()
        opts = self.exp.ray
        # The driver places episodes by model and node, so it holds the rest of the plan as
        # a list (bounded by max_episodes, like every plan); drawing yields to the loop.
        specs: list[EpisodeSpec] = []
        while (spec := await todo.next()) is not None:
            specs.append(spec)
        before = self._spent_before()

        def capped(not_started: int) -> bool:
            return self._cap_reached(before + self.progress.cost_usd, not_started)

        if not specs or capped(len(specs)):
            return
        candidates = self._candidates(ray)
        if not candidates:
            need = {"CPU": opts.num_cpus, **opts.resources}
            raise UserError(f"executor: ray: no alive node of the cluster offers what an episode "
                            f"needs ({need}); see `ray status`")
        try:
            nodes = await self._start_workers(ray, candidates, run_id)
            await self._play(ray, specs, nodes, capped)
        finally:
            await self._close_workers(ray, candidates)

    async def _play(self, ray: Any, todo: list[EpisodeSpec], nodes: list[_Node],
                    capped: Callable[[int], bool]) -> None:
        rex: Any = ray.exceptions
        lost_errors: tuple[type[BaseException], ...] = (
            rex.RayActorError, rex.WorkerCrashedError, rex.NodeDiedError, rex.OwnerDiedError,
            rex.ObjectLostError, rex.TaskUnschedulableError, rex.ActorUnschedulableError)
        opts = self.exp.ray
        if not nodes:
            raise UserError("executor: ray: no node of the cluster can play episodes (see the "
                            "notes above: " + " | ".join(self.notes) + ")")
        eligible: dict[str, list[_Node]] = {}
        queue = _Queue()
        for i, spec in enumerate(todo):
            queue.by_model.setdefault(spec.model, deque()).append((i, spec))
        for mid in queue.by_model:
            need = dict(opts.model_resources.get(mid, {}))
            eligible[mid] = [n for n in nodes if n.offers(need)]
            if not eligible[mid]:
                raise UserError(
                    f"executor: ray: model {mid!r} needs a node with the Ray resources {need} "
                    "(ray.model_resources) and none that passed the node check has them; start "
                    f"its node with `ray start --resources '{{...}}'`; nodes: "
                    + ", ".join(f"{n.label} {n.custom_resources()}" for n in nodes)
                    + "".join(f"; {note}" for note in self.notes))

        pending: dict[asyncio.Future[Any], tuple[int, EpisodeSpec, _Node]] = {}
        pings: dict[asyncio.Future[Any], _Node] = {}
        attempts: dict[str, int] = {}
        avoid: dict[str, set[str]] = {}
        lost: list[tuple[EpisodeSpec, str]] = []
        limit = self.exp.concurrency.episodes

        def place(spec: EpisodeSpec) -> _Node | None:
            ok = [n for n in eligible[spec.model] if n.state == "ok"]
            free = [n for n in ok if n.inflight < n.capacity]
            bad = avoid.get(spec.episode_id, set())
            fresh = [n for n in free if n.node_id not in bad]
            if not fresh and any(n.node_id not in bad for n in ok):
                return None  # wait for a node it has not failed on
            pool = fresh or free
            return min(pool, key=lambda n: n.inflight / n.capacity) if pool else None

        def submit() -> None:
            while len(pending) < limit and len(queue):
                if capped(len(queue)):
                    return
                best: tuple[int, str, _Node] | None = None
                for mid, q in queue.by_model.items():
                    if q and (best is None or q[0][0] < best[0]):
                        node = place(q[0][1])
                        if node is not None:
                            best = (q[0][0], mid, node)
                if best is None:
                    return
                idx, spec = queue.by_model[best[1]].popleft()
                node = best[2]
                node.inflight += 1
                ref = node.actor.play.remote(spec.model_dump_json())
                pending[asyncio.wrap_future(ref.future())] = (idx, spec, node)

        def drop(node: _Node, why: str) -> None:
            if node.state == "gone":
                return
            node.state = "gone"
            with contextlib.suppress(Exception):
                ray.kill(node.actor)
            self._note(f"{node.label} was lost mid-run ({why}); its episodes are played on "
                       "the other nodes")

        try:
            submit()
            while pending or pings:
                ready, _ = await asyncio.wait([*pending, *pings],
                                              return_when=asyncio.FIRST_COMPLETED)
                for fut in ready:
                    if fut in pings:
                        node = pings.pop(fut)
                        try:
                            fut.result()
                            if node.state == "checking":
                                node.state = "ok"
                        except BaseException as e:  # still dead: its node goes
                            drop(node, _why(e))
                        continue
                    idx, spec, node = pending.pop(fut)
                    node.inflight -= 1
                    try:
                        episode_json, transcript_json = fut.result()
                    except lost_errors as e:
                        why = _why(e)
                        n = attempts[spec.episode_id] = attempts.get(spec.episode_id, 0) + 1
                        avoid.setdefault(spec.episode_id, set()).add(node.node_id)
                        log.warning("episode %s lost on %s (%s); attempt %d", spec.episode_id,
                                    node.label, why, n)
                        if n > opts.max_retries:
                            lost.append((spec, why))
                        else:  # first in line again, on another node when there is one
                            queue.by_model[spec.model].appendleft((idx, spec))
                        if node.state == "ok":
                            node.state = "checking"
                            ping = asyncio.wait_for(
                                asyncio.wrap_future(node.actor.ping.remote().future()),
                                opts.check_timeout_s)
                            pings[asyncio.ensure_future(ping)] = node
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
                submit()
            if len(queue) and self.stop_reason is None:  # every node that could play them died
                for q in queue.by_model.values():
                    lost.extend((s, "no node left to play it") for _, s in q)
        finally:
            for fut in [*pending, *pings]:
                fut.cancel()
        if lost:
            names = ", ".join(f"{s.episode_id} ({why})" for s, why in lost[:5])
            more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
            raise UserError(
                f"executor: ray: {len(lost)} episode(s) were lost with their workers after "
                f"{opts.max_retries} retries and are not recorded: {names}{more}; "
                "--resume plays them"
            )

    async def _close_workers(self, ray: Any, nodes: list[_Node]) -> None:
        live = [n for n in nodes if n.state != "gone" and n.actor is not None]
        closing = [asyncio.wrap_future(n.actor.close.remote().future()) for n in live]
        if closing:
            with contextlib.suppress(Exception):
                await asyncio.wait(closing, timeout=self.exp.ray.check_timeout_s)
        for n in nodes:
            if n.actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(n.actor)
        self._exp_ref = None
