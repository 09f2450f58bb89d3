"""Matrix expansion: an Experiment becomes a list of EpisodeSpecs with stable ids and seeds.

An episode's id is a hash of what defines it — model id, scaffold label and resolved params,
task family, instance id, epoch — so the same experiment always plans the same ids, and a
resumed run can skip exactly the episodes already on disk.
"""

from __future__ import annotations

import hashlib
import importlib
import json
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


def plan(exp: Experiment, tasks: list[PlannedTask]) -> list[EpisodeSpec]:
    """Every (model, scaffold, instance, epoch), epoch-major so early stops stay balanced."""
    specs: list[EpisodeSpec] = []
    scaffolds = [(s, resolved_params(s)) for s in exp.scaffold_entries()]
    models = exp.model_configs()
    per_task = [task_epochs(exp, pt, i) for i, pt in enumerate(tasks)]
    total = len(models) * len(scaffolds) * sum(
        n * len(pt.instances) for pt, (n, _) in zip(tasks, per_task, strict=True))
    if total > exp.max_episodes:  # counted before a single record is made
        raise ConfigError(f"the plan has {total:,} episodes, more than max_episodes "
                          f"({exp.max_episodes:,}); lower epochs or limits, or raise "
                          "max_episodes in the experiment")
    for epoch in range(max((n for n, _ in per_task), default=0)):
        for pt, (n_epochs, reducer) in zip(tasks, per_task, strict=True):
            if epoch >= n_epochs:
                continue
            for inst in pt.instances.values():
                for m in models:
                    for s, params in scaffolds:
                        label = s.label or s.name
                        eid = episode_id(m.id, label, params, pt.name, inst.id, epoch)
                        specs.append(
                            EpisodeSpec(
                                episode_id=eid,
                                model=m.id,
                                scaffold=s.name,
                                scaffold_label=label,
                                scaffold_params=params,
                                task_family=pt.name,
                                task_id=inst.id,
                                epoch=epoch,
                                seed=episode_seed(exp.seed, eid),
                                score_reducer=reducer,
                            )
                        )
    return specs


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
