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


class HangOnceTask(EchoTask):
    """Echo without a sandbox, whose instance ``w0`` hangs in setup the first time it is played
    (after writing the playing process's pid to ``<dir>/w0.pid``) and goes through when played
    again: the first player is meant to be killed."""

    name = "hang-once"

    def instances(self, options: TaskOptions) -> list[TaskInstance]:
        import pathlib

        self.dir = pathlib.Path(str(options.options["dir"]))
        return [i.model_copy(update={"family": "hang-once", "tools": ["submit"]})
                for i in super().instances(options)]

    def sandbox_spec(self, instance: TaskInstance) -> SandboxSpec | None:
        return None

    async def setup(self, sandbox: Sandbox | None, instance: TaskInstance) -> None:
        import asyncio
        import os

        marker = self.dir / f"{instance.id}.pid"
        if instance.id == "w0" and not marker.exists():
            tmp = marker.with_suffix(".tmp")
            tmp.write_text(str(os.getpid()))
            tmp.replace(marker)
            await asyncio.Event().wait()  # until this process is killed


class GateTask(HangOnceTask):
    """Echo without a sandbox whose instances ``w<hold>`` and later wait in setup until the file
    ``<dir>/release`` exists: a run of it makes observable progress (the first ``hold``
    episodes) and then waits for the test."""

    name = "gate"

    def instances(self, options: TaskOptions) -> list[TaskInstance]:
        self.hold = int(str(options.options.get("hold", 1)))
        return [i.model_copy(update={"family": "gate"}) for i in super().instances(options)]

    async def setup(self, sandbox: Sandbox | None, instance: TaskInstance) -> None:
        import asyncio

        if int(instance.id[1:]) >= self.hold:
            while not (self.dir / "release").exists():
                await asyncio.sleep(0.05)  # polling a file the test creates
