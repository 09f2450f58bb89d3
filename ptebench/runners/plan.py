"""Matrix expansion: an Experiment becomes a list of EpisodeSpecs with stable ids and seeds.

An episode's id is a hash of what defines it — model id, scaffold label and resolved params,
task family, instance id, epoch — so the same experiment always plans the same ids, and a
resumed run can skip exactly the episodes already on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import itertools
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptebench import registry
from ptebench.errors import ConfigError
from ptebench.records import EpisodeSpec
from ptebench.runners.config import Experiment, ScaffoldEntry, TaskEntry
from ptebench.tasks.base import Task, TaskInstance, TaskOptions


@dataclass
class PlannedTask:
    """A task family opened for this run, with the instances selected from it."""

    family: Task
    name: str
    instances: dict[str, TaskInstance]


def open_task(entry: TaskEntry, exp: Experiment) -> Task:
    """Instantiate the family an entry names (registered name, native folder or METR folder).

    Raises:
        ConfigError: the family cannot be loaded.
    """
    if entry.name is not None:
        return registry.get("task", entry.name)()
    if entry.path is not None:
        native = importlib.import_module("ptebench.tasks.native")
        return native.load_family(Path(entry.path))
    if entry.harbor is not None:
        harbor = importlib.import_module("ptebench.tasks.harbor")
        return harbor.load_harbor(
            Path(entry.harbor.path), allow_full_internet=exp.allow_full_internet,
            image_map=entry.harbor.image_map, build_network=entry.harbor.build_network)
    assert entry.metr is not None  # guaranteed by TaskEntry's validator
    metr = importlib.import_module("ptebench.tasks.metr")
    return metr.load_metr_family(Path(entry.metr.path), allow_full_internet=exp.allow_full_internet)


def open_tasks(exp: Experiment) -> list[PlannedTask]:
    planned: list[PlannedTask] = []
    for i, entry in enumerate(exp.task_entries()):
        family = open_task(entry, exp)
        opts = TaskOptions(
            limit=entry.limit, ids=entry.ids, seed=entry.seed, split=entry.split, options=entry.options
        )
        accepted: Any = getattr(family, "accepted_options", None)
        unknown = sorted(set(entry.options) - set(accepted)) if accepted is not None else []
        if unknown and accepted is not None:
            raise ConfigError(f"tasks[{i}].options: unknown option(s) {', '.join(unknown)} for "
                              f"{family.name!r}; accepted: {', '.join(sorted(accepted)) or 'none'}")
        try:
            instances = family.instances(opts)
        except ConfigError as e:
            raise ConfigError(f"tasks[{i}]: {e}") from e
        if not instances:
            raise ConfigError(f"tasks[{i}]: family {family.name!r} selected no instances")
        planned.append(PlannedTask(family, family.name, {inst.id: inst for inst in instances}))
    return planned


def resolved_params(entry: ScaffoldEntry) -> dict[str, Any]:
    """The scaffold's params with every default filled in (what the episode records)."""
    cls = registry.get("scaffold", entry.name)
    params: dict[str, Any] = cls.Params.model_validate(entry.params).model_dump(mode="json")
    return params


def episode_id(model: str, label: str, params: dict[str, Any], family: str, task_id: str, epoch: int) -> str:
    key = json.dumps([model, label, params, family, task_id, epoch], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def episode_seed(root: int, eid: str) -> int:
    return int(hashlib.sha256(f"{root}:{eid}".encode()).hexdigest()[:12], 16)


def task_epochs(exp: Experiment, pt: PlannedTask, index: int) -> tuple[int, str]:
    """(attempts per instance, score reducer) of one planned family.

    The experiment's ``epochs`` wins when it is set; otherwise a family that declares its
    own (native ``scoring.epochs``) gets its ``n``. The reducer is always the family's.

    Raises:
        ConfigError: pass@k with fewer than k epochs.
    """
    declared = getattr(pt.family, "epochs", None)
    if declared is None:
        return exp.epochs, "mean"
    n = exp.epochs if "epochs" in exp.model_fields_set else int(declared.n)
    if declared.reducer == "pass_at_k" and (declared.k or 1) > n:
        raise ConfigError(f"tasks[{index}]: family {pt.name!r} scores pass@{declared.k}, which "
                          f"needs at least {declared.k} epochs; the experiment runs {n}")
    return n, str(declared.recorded)


class Plan:
    """The episodes of a run, generated on demand: iterating yields every (epoch, task,
    instance, model, scaffold) in epoch-major order, so early stops stay balanced; nothing
    per episode is held, so a plan of 10^7 episodes costs no more memory than one of 10.
    ``len`` is the count, computed without generating; ``contains`` tells whether a
    recorded episode belongs to the plan (what a resume skips)."""

    def __init__(self, exp: Experiment, tasks: list[PlannedTask]) -> None:
        self.exp = exp
        self.tasks = tasks
        self.models = [m.id for m in exp.model_configs()]
        self.scaffolds = [(s.name, s.label or s.name, resolved_params(s))
                          for s in exp.scaffold_entries()]
        self.per_task = [task_epochs(exp, pt, i) for i, pt in enumerate(tasks)]
        self._epochs = {pt.name: n for pt, (n, _) in zip(tasks, self.per_task, strict=True)}
        self._tasks = {pt.name: pt for pt in tasks}
        self.size = len(self.models) * len(self.scaffolds) * sum(
            n * len(pt.instances) for pt, (n, _) in zip(tasks, self.per_task, strict=True))

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[EpisodeSpec]:
        for epoch in range(max((n for n, _ in self.per_task), default=0)):
            for pt, (n_epochs, reducer) in zip(self.tasks, self.per_task, strict=True):
                if epoch >= n_epochs:
                    continue
                for inst in pt.instances.values():
                    for m in self.models:
                        for name, label, params in self.scaffolds:
                            eid = episode_id(m, label, params, pt.name, inst.id, epoch)
                            yield EpisodeSpec(
                                episode_id=eid, model=m, scaffold=name, scaffold_label=label,
                                scaffold_params=params, task_family=pt.name, task_id=inst.id,
                                epoch=epoch, seed=episode_seed(self.exp.seed, eid),
                                score_reducer=reducer,
                            )

    def heads(self) -> list[EpisodeSpec]:
        """One spec of every (model, scaffold) pair — every scaffold label the plan uses."""
        return list(itertools.islice(iter(self), len(self.models) * len(self.scaffolds)))

    def contains(self, spec: EpisodeSpec) -> bool:
        """Whether ``spec`` (e.g. a recorded episode's) is one of this plan's episodes."""
        pt = self._tasks.get(spec.task_family)
        if (pt is None or spec.task_id not in pt.instances or spec.model not in self.models
                or not 0 <= spec.epoch < self._epochs[spec.task_family]):
            return False
        return any(label == spec.scaffold_label and spec.episode_id == episode_id(
            spec.model, label, params, spec.task_family, spec.task_id, spec.epoch)
            for _, label, params in self.scaffolds)


def make_plan(exp: Experiment, tasks: list[PlannedTask]) -> Plan:
    """The run's plan, refused when it is larger than ``max_episodes``.

    Raises:
        ConfigError: more than ``max_episodes`` episodes (counted before any record is
            made), or pass@k with fewer than k epochs.
    """
    p = Plan(exp, tasks)
    if p.size > exp.max_episodes:
        raise ConfigError(f"the plan has {p.size:,} episodes, more than max_episodes "
                          f"({exp.max_episodes:,}); lower epochs or limits, or raise "
                          "max_episodes in the experiment")
    return p


def plan(exp: Experiment, tasks: list[PlannedTask]) -> list[EpisodeSpec]:
    """Every episode of ``make_plan`` as a list (for small plans; the runner streams)."""
    return list(make_plan(exp, tasks))


def check_plan(exp: Experiment, tasks: list[PlannedTask]) -> None:
    """Refuse, before any episode starts, what would fail or mislead at run time: a task the
    chosen sandbox backend cannot set up, and a dollar budget (``limits.cost_usd``,
    ``spend_cap_usd``) on a model whose card has no prices (its spend would read as $0).

    Raises:
        ConfigError: naming the task or model and the fix.
    """
    for pt in tasks:
        problem_of = getattr(pt.family, "backend_problem", None)
        if problem_of is None:
            continue
        for inst in pt.instances.values():
            problem = problem_of(exp.sandbox, inst)
            if problem is not None:
                raise ConfigError(f"sandbox {exp.sandbox!r}: {problem}")
    priced = _cost_budgets(exp, tasks)
    if not priced:
        return
    from ptebench.models.catalog import default_catalog

    cat = default_catalog()
    for m in exp.model_configs():
        card = cat.get(m.card) if m.card else None
        if card is None or card.price_input_per_mtok is None or card.price_output_per_mtok is None:
            raise ConfigError(
                f"{' and '.join(priced)}: model {m.id!r} has no prices (no catalog card with "
                "price_input_per_mtok and price_output_per_mtok), so its spend cannot be "
                "metered and the budget would never stop it. Give it a `card` with prices (a shipped "
                "card, or your own in a PTEBENCH_CARDS file), or drop "
                "the dollar budget")


def _cost_budgets(exp: Experiment, tasks: list[PlannedTask]) -> list[str]:
    """The dollar budgets this run would enforce."""
    found: list[str] = []
    if exp.spend_cap_usd is not None:
        found.append("spend_cap_usd")
    family_cost = any(
        getattr(getattr(pt.family, "default_limits", None), "cost_usd", None) is not None
        or any(i.limits is not None and i.limits.cost_usd is not None
               for i in pt.instances.values())
        for pt in tasks)
    if exp.limits.cost_usd is not None or family_cost:
        found.append("limits.cost_usd")
    return found


def prepare_images(exp: Experiment, tasks: list[PlannedTask]) -> None:
    """Build the images the selected tasks' sandboxes need (a native ``sandbox.build``,
    services' ``build``), before any episode starts. Blocking: see ``prepare_images_async``.

    Raises:
        ConfigError: a Dockerfile did not build (the message names the task folder and the
            failing step).
    """
    if exp.sandbox == "local":  # backend_problem refuses image builds there
        return
    for pt in tasks:
        prepare: Any = getattr(pt.family, "prepare_images", None)
        if prepare is not None:
            prepare(list(pt.instances.values()))


async def prepare_images_async(exp: Experiment, tasks: list[PlannedTask]) -> None:
    """``prepare_images`` in a daemon thread: the event loop (and SIGTERM) stays responsive
    during a long build, and an interrupted run does not wait for the build to end."""
    fut: Future[None] = Future()

    def target() -> None:
        try:
            prepare_images(exp, tasks)
        except BaseException as e:
            with contextlib.suppress(InvalidStateError):
                fut.set_exception(e)
            return
        with contextlib.suppress(InvalidStateError):
            fut.set_result(None)

    threading.Thread(target=target, daemon=True, name="ptebench-image-build").start()
    await asyncio.wrap_future(fut)
