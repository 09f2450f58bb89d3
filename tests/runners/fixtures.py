"""Small real task families used by the runner tests (found by dotted path, like a plugin)."""

from __future__ import annotations

from ptebench.records import Score
from ptebench.sandbox.base import Sandbox, SandboxSpec
from ptebench.scaffolds.base import EpisodeContext, ScaffoldParams
from ptebench.tasks.base import Reference, TaskInstance, TaskOptions, select

SCORER_CALLS: list[str] = []


class EchoTask:
    """Instance i asks for the word ``w<i>``; instance 'broken' fails in setup."""

    name = "echo"

    def instances(self, options: TaskOptions) -> list[TaskInstance]:
        ids = [f"w{i}" for i in range(int(str(options.options.get("n", 4))))]
        if options.options.get("broken"):
            ids.append("broken")
        return select(
            [
                TaskInstance(family="echo", id=i, instructions=f"Say {i}.", tools=["bash", "submit"],
                             reference=Reference(answer=i))
                for i in ids
            ],
            options,
        )

    def sandbox_spec(self, instance: TaskInstance) -> SandboxSpec | None:
        return SandboxSpec()

    async def setup(self, sandbox: Sandbox | None, instance: TaskInstance) -> None:
        if instance.id == "broken":
            raise RuntimeError("setup exploded on purpose")
        assert sandbox is not None
        await sandbox.write_file("word.txt", instance.id)

    async def score(self, sandbox: Sandbox | None, instance: TaskInstance, submission: str | None) -> Score:
        SCORER_CALLS.append(instance.id)
        ok = (submission or "").strip() == instance.id
        return Score(value=float(ok), explanation="match" if ok else "no match")


class CrashingScorerTask(EchoTask):
    """EchoTask whose scorer crashes: a task failure."""

    name = "crashing_scorer"

    async def score(self, sandbox: Sandbox | None, instance: TaskInstance, submission: str | None) -> Score:
        raise ZeroDivisionError("the scorer divided by zero on purpose")


class CrashingScaffold:
    """A scaffold that raises before doing anything: a harness failure."""

    name = "crashing"

    class Params(ScaffoldParams):
        pass

    def __init__(self, params: ScaffoldParams) -> None:
        self.params = params

    async def run(self, ctx: EpisodeContext) -> str | None:
        raise RuntimeError("the scaffold crashed on purpose")
