"""A tiny real task family and helpers to play scaffold episodes.

``TinyTask`` is found by dotted path (``tests.scaffolds.kit:TinyTask``), like a plugin.
Its scorer is instrumented: every call is logged in ``SCORER_CALLS``, so a test can prove
a scaffold never consulted it before submitting (the runner scores exactly once after).
Every instance hides a ``SECRET`` in its reference and hidden part: it must never reach a
prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptebench.models.base import Model, ModelConfig
from ptebench.models.catalog import ModelCard
from ptebench.models.meter import LimitReached, MeteredModel, Trace
from ptebench.models.scripted import ScriptedModel
from ptebench.records import Episode, Limits, Score
from ptebench.registry import get
from ptebench.results.store import RunStore
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment
from ptebench.sandbox.base import Sandbox, SandboxSpec
from ptebench.sandbox.local import LocalSandbox
from ptebench.scaffolds.base import Environment, EpisodeContext, Oracle
from ptebench.tasks.base import CodeSpec, Reference, TaskInstance, TaskOptions, select

SECRET = "SECRET-7f3a"
SCORER_CALLS: list[tuple[str, str | None]] = []

ADD_PROMPT = 'def add(a, b):\n    """Return a + b.\n    >>> add(1, 2)\n    3\n    """\n'
ADD_OK = "def add(a, b):\n    return a + b\n"
ADD_BAD = "def add(a, b):\n    return a - b\n"


PACK = {
    "propose": "PROPOSE numbers: {input}\nNext steps:\n",
    "value": "VALUE numbers: {input}\nsure, likely or impossible?\n",
    "value_last": "VALUE-LAST puzzle {input} answer: {answer}\nsure or impossible?\n",
    "cot": "COT input: {input}\n",
}
"""A Game-of-24-shaped prompt pack (ToT's keys)."""


def instances() -> list[TaskInstance]:
    hidden_ref = dict(difficulty=0.0, action_difficulty=-1.0, steps=[f"note {SECRET}"])
    return [
        TaskInstance(
            family="tiny", id="qa", kind="qa", instructions="What is 6 * 7?", tools=["submit"],
            reference=Reference(answer="42", **hidden_ref), hidden={"secret": SECRET},
        ),
        TaskInstance(
            family="tiny", id="code", kind="code", instructions="Implement the function.",
            tools=["submit"],
            code=CodeSpec(prompt=ADD_PROMPT, entry_point="add", visible_tests=["assert add(1, 2) == 3"]),
            reference=Reference(answer=ADD_OK, tests=["assert add(2, 2) == 4"], **hidden_ref),
            hidden={"tests": [f"assert add(5, 5) == 10  # {SECRET}"]},
        ),
        TaskInstance(
            family="tiny", id="pack", kind="qa", instructions="Make 24 from 2 3 4 (and 1).",
            tools=["submit"], prompts=PACK, metadata={"input": "1 2 3 4"},
            reference=Reference(answer="(2 * 3) * 4 * 1", **hidden_ref), hidden={"secret": SECRET},
        ),
        TaskInstance(
            family="tiny", id="agent", kind="agentic",
            instructions="Find the word in word.txt and submit it.", tools=["bash", "submit"],
            reference=Reference(answer="banana", **hidden_ref), hidden={"secret": SECRET},
        ),
    ]


class TinyTask:
    """Three instances — qa, code, agentic — with an instrumented hidden scorer."""

    name = "tiny"

    def instances(self, options: TaskOptions) -> list[TaskInstance]:
        return select(instances(), options)

    def sandbox_spec(self, instance: TaskInstance) -> SandboxSpec | None:
        return None if instance.kind == "qa" else SandboxSpec()

    async def setup(self, sandbox: Sandbox | None, instance: TaskInstance) -> None:
        if sandbox is not None and instance.kind == "agentic":
            await sandbox.write_file("word.txt", "banana\n")

    async def score(self, sandbox: Sandbox | None, instance: TaskInstance, submission: str | None) -> Score:
        SCORER_CALLS.append((instance.id, submission))
        if instance.kind == "code":
            ok = submission is not None and "a + b" in submission
        else:
            ok = (submission or "").strip() == instance.reference.answer
        return Score(value=float(ok))


def run_one(
    tmp_path: Path, scaffold: str | dict[str, Any], outputs: list[str], task_id: str,
    limits: dict[str, Any] | None = None,
) -> Episode:
    """One episode through the real runner (local sandbox, scripted model)."""
    exp = parse_experiment({
        "name": "t",
        "models": [{"id": "s", "provider": "scripted", "outputs": outputs}],
        "scaffolds": [scaffold],
        "tasks": [{"name": "tests.scaffolds.kit:TinyTask", "ids": [task_id]}],
        "sandbox": "local",
        "baseline": scaffold if isinstance(scaffold, str) else scaffold["name"],
        "limits": limits or {},
    })
    out = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    run_experiment(exp, out)
    (ep,) = list(RunStore(out).iter_episodes())
    return ep


def roles(ep: Episode) -> list[str]:
    return [c.role for c in ep.calls]


@dataclass
class Played:
    """An episode played on a hand-built context (to inspect the model's requests)."""

    submission: str | None
    ctx: EpisodeContext
    model: ScriptedModel
    limit: LimitReached | None


async def play(
    scaffold: str, params: dict[str, Any], outputs: list[str], task_id: str,
    limits: Limits | None = None, sandbox: Sandbox | None = None,
) -> Played:
    """Run a scaffold on a context built the way the runner builds it."""
    inst = next(i for i in instances() if i.id == task_id)
    limits = limits or Limits()
    trace = Trace()
    model = ScriptedModel(ModelConfig(id="s", provider="scripted", outputs=outputs))
    metered = MeteredModel("s", model, None, trace, limits)
    own_box = sandbox is None and inst.kind != "qa"
    box: Sandbox | None = LocalSandbox.create(SandboxSpec()) if own_box else sandbox
    try:
        await TinyTask().setup(box, inst)
        cls = get("scaffold", scaffold)
        p = cls.Params.model_validate(params)
        oracle = None
        if p.oracle_feedback:
            async def _score(c: str | None) -> float | None:
                return (await TinyTask().score(box, inst, c)).value
            oracle = Oracle(_score)
        ctx = EpisodeContext(
            task=inst.view(), model=metered, env=Environment(box, list(inst.tools), limits, trace),
            limits=limits, trace=trace, seed=0, oracle=oracle,
        )
        try:
            sub = await cls(p).run(ctx)
            return Played(sub, ctx, model, None)
        except LimitReached as e:
            return Played(ctx.best, ctx, model, e)
    finally:
        if own_box and box is not None:
            await box.close()


@dataclass
class PlayedWith:
    """An episode played with any model (e.g. a real provider against a wire server)."""

    submission: str | None
    ctx: EpisodeContext
    limit: LimitReached | None


async def play_with(
    model: Model, scaffold: str, params: dict[str, Any], task_id: str,
    limits: Limits | None = None, native_tools: bool = False, card: ModelCard | None = None,
) -> PlayedWith:
    """Like ``play``, with the given model (metered as the runner meters it)."""
    inst = next(i for i in instances() if i.id == task_id)
    limits = limits or Limits()
    trace = Trace()
    metered = MeteredModel("m", model, card, trace, limits, native_tools=native_tools)
    box: Sandbox | None = LocalSandbox.create(SandboxSpec()) if inst.kind != "qa" else None
    try:
        await TinyTask().setup(box, inst)
        cls = get("scaffold", scaffold)
        ctx = EpisodeContext(
            task=inst.view(), model=metered, env=Environment(box, list(inst.tools), limits, trace),
            limits=limits, trace=trace, seed=0,
        )
        try:
            return PlayedWith(await cls(cls.Params.model_validate(params)).run(ctx), ctx, None)
        except LimitReached as e:
            return PlayedWith(ctx.best, ctx, e)
    finally:
        if box is not None:
            await box.close()
