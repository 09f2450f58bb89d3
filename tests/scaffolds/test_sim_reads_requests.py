"""The sim works out what each request asks from its text alone, as a model would: on every
call of every scaffold, on QA, puzzle, code and agentic tasks, what it reads agrees with the
accounting role the scaffold put on the call (which the sim never sees)."""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest

from ptebench import registry
from ptebench.models.base import EpisodeBinding, GenerateRequest, GenerateResponse, ModelConfig
from ptebench.models.meter import LimitReached, MeteredModel, Trace
from ptebench.models.sim import SimEpisodeModel, SimModel, asked_for
from ptebench.records import Limits
from ptebench.sandbox.base import SandboxSpec
from ptebench.sandbox.local import LocalSandbox
from ptebench.scaffolds.base import Environment, EpisodeContext
from ptebench.tasks.base import TaskInstance, TaskOptions
from tests.scaffolds import kit

SCAFFOLDS = ["direct", "cot", "majority", "best_of_n", "react", "reflexion", "tot", "lats"]
SAME = {"test_gen": "tests"}
"""The scaffolds' role name → the sim's name for the same kind of request."""


class Reading:
    """A bound sim that notes, for every request, the role label and what the sim read."""

    def __init__(self, inner: SimEpisodeModel) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str]] = []

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        self.seen.append((SAME.get(request.role, request.role), asked_for(request)))
        return await self.inner.generate(request)


def _instances() -> list[TaskInstance]:
    arith = registry.get("task", "arith")().instances(TaskOptions(limit=2))
    game24 = registry.get("task", "game24")().instances(TaskOptions(limit=2))
    return [*arith, *game24, *kit.instances()]


@pytest.mark.parametrize("scaffold", SCAFFOLDS)
async def test_what_the_sim_reads_matches_the_role_label(scaffold: str) -> None:
    seen: Counter[tuple[str, str]] = Counter()
    for size in ("1e20", "1e24"):
        sim = SimModel(ModelConfig(id=f"sim/{size}", provider="sim", model=size))
        for inst in _instances():
            binding = EpisodeBinding(episode_id=f"{inst.id}-{size}", seed=1, task_family=inst.family,
                                     task_id=inst.id, hidden=inst.reference.model_dump(mode="json"))
            reading = Reading(sim.bind(binding))
            trace, limits = Trace(), Limits(steps=30)
            box = LocalSandbox.create(SandboxSpec()) if inst.kind != "qa" or inst.tools != ["submit"] else None
            try:
                if inst.family == kit.TinyTask.name:
                    await kit.TinyTask().setup(box, inst)
                ctx = EpisodeContext(task=inst.view(), model=MeteredModel("sim", reading, None, trace, limits),
                                     env=Environment(box, list(inst.tools), limits, trace),
                                     limits=limits, trace=trace, seed=1)
                cls = registry.get("scaffold", scaffold)
                with contextlib.suppress(LimitReached):  # a budget stop is a normal end here
                    await cls(cls.Params()).run(ctx)
            finally:
                if box is not None:
                    await box.close()
            seen.update(reading.seen)
    wrong = {k: n for k, n in seen.items() if k[0] != k[1]}
    assert seen and not wrong, f"(role, read) pairs that disagree: {wrong}"
