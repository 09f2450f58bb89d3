"""Task, TaskInstance and the public view a scaffold is allowed to see.

A *task family* (registered under kind 'task') yields instances. Each instance has a public
part — instructions, tools, visible examples — which becomes the ``TaskView`` handed to the
scaffold, and a hidden part — the reference solution and hidden tests — which only the
family's scorer and the simulated model family (through the runner) ever read.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import Field, JsonValue

from ptebench.records import Action, Limits, Record, Score
from ptebench.sandbox.base import Sandbox, SandboxSpec

TaskKind = Literal["qa", "code", "agentic"]
"""qa: answer in text; code: submit a program; agentic: act with tools in a sandbox."""


class CodeSpec(Record):
    """Public description of a programming task."""

    language: str = "python"
    prompt: str
    """The signature and docstring the program must complete."""
    entry_point: str
    """Name of the function under test."""
    visible_tests: list[str] = Field(default_factory=list)
    """Assertions a scaffold may run (e.g. the docstring's examples)."""


class Reference(Record):
    """A known-good solution. Hidden: for scorers and the simulated model only."""

    answer: str | None = None
    """The correct final answer / submission (a program for code tasks)."""
    actions: list[Action] = Field(default_factory=list)
    """A sequence of tool actions that solves the task (agentic tasks)."""
    steps: list[str] = Field(default_factory=list)
    """Intermediate thoughts of a solution (ToT partial solutions), in order."""
    difficulty: float = 0.0
    """Difficulty offset of the final answer in logits (0 = average), for the sim law."""
    action_difficulty: float = -1.0
    """Difficulty offset of each tool action / intermediate step, for the sim law."""
    tests: list[str] = Field(default_factory=list)
    """Correct unit tests a competent model could write (for the sim's test_gen role)."""


TOOLS: tuple[str, ...] = ("bash", "python", "submit")
"""The tool names an environment executes; a task file naming another is refused."""


class TaskInstance(Record):
    """One thing to solve."""

    family: str
    id: str
    kind: TaskKind = "qa"
    instructions: str
    """What the agent is told (public)."""
    tools: list[str] = Field(default_factory=lambda: ["submit"])
    """Tools the agent may call (public): bash, python, submit, ..."""
    code: CodeSpec | None = None
    """For code tasks: signature, entry point and visible tests (public)."""
    prompts: dict[str, str] = Field(default_factory=dict)
    """Task-specific prompt packs for scaffolds (e.g. ToT propose/value prompts; public)."""
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    """Category, difficulty, human minutes, ... (public)."""
    limits: Limits | None = None
    """Instance-level budget overrides."""
    reference: Reference = Field(default_factory=Reference)
    """Hidden: never part of the view."""
    hidden: dict[str, JsonValue] = Field(default_factory=dict)
    """Hidden: whatever the scorer needs (hidden tests, flag hashes, ...)."""

    def view(self) -> TaskView:
        return TaskView(
            family=self.family,
            id=self.id,
            kind=self.kind,
            instructions=self.instructions,
            tools=list(self.tools),
            code=self.code,
            prompts=dict(self.prompts),
            metadata=dict(self.metadata),
        )


class TaskView(Record):
    """The public face of a task instance: all a scaffold may know."""

    family: str
    id: str
    kind: TaskKind
    instructions: str
    tools: list[str]
    code: CodeSpec | None = None
    prompts: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


class TaskOptions(Record):
    """How an experiment selects instances of a family."""

    limit: int | None = None
    """Take at most this many instances (after ids/split filtering)."""
    ids: list[str] | None = None
    """Only these instance ids."""
    seed: int | None = None
    """Shuffle with this seed before applying limit (None keeps the family's order)."""
    split: str | None = None
    """A family-defined split (e.g. game24 'test')."""
    options: dict[str, JsonValue] = Field(default_factory=dict)
    """Family-specific options."""


@runtime_checkable
class Task(Protocol):
    """A task family."""

    name: str

    def instances(self, options: TaskOptions) -> list[TaskInstance]: ...

    def sandbox_spec(self, instance: TaskInstance) -> SandboxSpec | None:
        """The sandbox the instance needs, or None when it needs none."""
        ...

    async def setup(self, sandbox: Sandbox | None, instance: TaskInstance) -> None:
        """Prepare the sandbox before the agent starts (runs with full rights)."""
        ...

    async def score(
        self, sandbox: Sandbox | None, instance: TaskInstance, submission: str | None
    ) -> Score:
        """The hidden scorer. Called by the runner after the scaffold submits, or by an
        explicit oracle when the experiment enabled oracle_feedback."""
        ...


def select(instances: list[TaskInstance], options: TaskOptions) -> list[TaskInstance]:
    """Apply ids, seed (shuffle) and limit from ``options``, in that order."""
    import random

    out = list(instances)
    if options.ids is not None:
        wanted = set(options.ids)
        missing = wanted - {i.id for i in out}
        if missing:
            from ptebench.errors import ConfigError

            fam = out[0].family if out else "task"
            raise ConfigError(f"{fam}: unknown instance ids {sorted(missing)}")
        out = [i for i in out if i.id in wanted]
    if options.seed is not None:
        random.Random(options.seed).shuffle(out)
    if options.limit is not None:
        out = out[: options.limit]
    return out
