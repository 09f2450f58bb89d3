"""What a scaffold sees and how it acts: the episode context, the environment, the protocol.

A scaffold is a class registered under kind 'scaffold' with a ``Params`` pydantic model and
an ``async run(ctx) -> str | None`` returning the submission. It reaches the world only
through ``ctx``: the public ``TaskView``, the metered model, the ``Environment`` (tools over
the sandbox, with snapshot/fork for tree search) and, only when the experiment enables
``oracle_feedback``, an ``Oracle`` that consults the hidden scorer and is counted.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, JsonValue

from ptebench.models.meter import LimitReached, MeteredModel, Trace
from ptebench.records import Action, Limits, Step
from ptebench.sandbox.base import Sandbox
from ptebench.tasks.base import TaskView


class ScaffoldParams(BaseModel):
    """Base of every scaffold's params: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")

    oracle_feedback: bool = False
    """Reproduction flag: let the scaffold consult the hidden scorer inside its loop, as some
    papers did. Off by default; episodes that use it are marked and reports flag them."""


class Scaffold(Protocol):
    """How a model is driven to a submission."""

    name: ClassVar[str]
    Params: ClassVar[type[ScaffoldParams]]

    def __init__(self, params: Any) -> None: ...

    async def run(self, ctx: EpisodeContext) -> str | None: ...


class Oracle:
    """Ground-truth feedback, handed out only under ``oracle_feedback: true``. Counted."""

    def __init__(self, score: Callable[[str | None], Awaitable[float | None]]) -> None:
        self._score = score
        self.calls = 0

    async def score(self, candidate: str | None) -> float | None:
        self.calls += 1
        return await self._score(candidate)


# --- the environment ------------------------------------------------------------------------


class Environment:
    """The task's tools over the episode's sandbox, metered into the trace.

    ``fork()`` gives an independent copy of the environment (sandbox snapshot + restore) for
    tree search; the fork must be closed by whoever made it. ``actions`` lists the tool
    actions that brought this environment from the episode's initial state to its current
    one (a fork inherits its parent's), so a chosen branch can be replayed into the root.
    """

    def __init__(
        self,
        sandbox: Sandbox | None,
        tools: list[str],
        limits: Limits,
        trace: Trace,
        branch: str = "",
    ) -> None:
        self.sandbox = sandbox
        self.tools = tools
        self._limits = limits
        self._trace = trace
        self.branch = branch
        self.branch_cost_s = 0.0
        self._children = 0
        self.actions: list[Action] = []

    def _check_steps(self) -> None:
        lim = self._limits.steps
        if lim is not None and len(self._trace.steps) >= lim:
            raise LimitReached("steps", f"{len(self._trace.steps)} ≥ {lim}")

    async def run(self, action: Action, thought: str | None = None) -> Step:
        """Execute a tool action (not ``submit``) and record it as a Step.

        Raises:
            LimitReached: the step budget is spent.
        """
        self._check_steps()
        t = time.monotonic()
        start = self._trace.elapsed()
        sizes = (0, 0)  # stdout and stderr bytes before truncation, for the transcript
        if self.sandbox is None or action.tool not in ("bash", "python"):
            step = Step(
                index=len(self._trace.steps),
                thought=thought,
                action=action,
                observation=f"tool {action.tool!r} is not available in this task",
                branch=self.branch,
                t_start=start,
            )
        else:
            cmd: list[str] | str
            stdin: str | None = None
            if action.tool == "python":
                cmd, stdin = ["python3", "-"], action.input
            else:
                cmd = action.input
            res = await self.sandbox.exec(
                cmd,
                timeout=self._limits.tool_timeout_s,
                input=stdin,
                output_limit=self._limits.tool_output_bytes,
            )
            obs = res.stdout + (("\n" if res.stdout and res.stderr else "") + res.stderr)
            size = res.stdout_bytes + res.stderr_bytes
            sizes = (res.stdout_bytes, res.stderr_bytes)
            if res.timed_out:
                obs += f"\n[timed out after {self._limits.tool_timeout_s:g}s; process killed]"
            if res.truncated:
                obs += f"\n[output truncated; original size {size} bytes]"
            self.actions.append(action)
            step = Step(
                index=len(self._trace.steps),
                thought=thought,
                action=action,
                observation=obs if obs.strip() else f"(no output, exit code {res.exit_code})",
                observation_bytes=size,
                truncated=res.truncated,
                exit_code=res.exit_code,
                timed_out=res.timed_out,
                branch=self.branch,
                t_start=start,
            )
        step.duration_s = time.monotonic() - t
        self._trace.steps.append(step)
        self._trace.transcript.action(step, *sizes)
        return step

    def note(self, observation: str, thought: str | None = None) -> Step:
        """Record a step that ran nothing (e.g. an unparseable action) — it still counts."""
        self._check_steps()
        step = Step(
            index=len(self._trace.steps),
            thought=thought,
            observation=observation,
            observation_bytes=len(observation.encode()),
            branch=self.branch,
            t_start=self._trace.elapsed(),
        )
        self._trace.steps.append(step)
        self._trace.transcript.action(step)
        return step

    async def fork(self) -> Environment:
        """An independent copy of this environment's current state."""
        self._children += 1
        name = f"{self.branch}.{self._children}" if self.branch else str(self._children)
        if self.sandbox is None:
            return Environment(None, self.tools, self._limits, self._trace, name)
        t = time.monotonic()
        snap = await self.sandbox.snapshot()
        try:
            child = await self.sandbox.restore(snap)
        finally:
            discard: Any = getattr(self.sandbox, "discard_snapshot", None)
            if discard is not None:  # one fork, one restore: free it now (disk budget)
                await discard(snap)
        self.branch_cost_s += time.monotonic() - t
        env = Environment(child, self.tools, self._limits, self._trace, name)
        env.actions = list(self.actions)
        return env

    async def close(self) -> None:
        """Close a forked environment's sandbox (never the episode's root sandbox)."""
        if self.branch and self.sandbox is not None:
            await self.sandbox.close()


@dataclass
class EpisodeContext:
    """Everything a scaffold may use in one episode."""

    task: TaskView
    model: MeteredModel
    env: Environment
    limits: Limits
    trace: Trace
    seed: int
    oracle: Oracle | None = None
    metrics: dict[str, JsonValue] = field(default_factory=dict)
    """Scaffold-specific figures to record in the episode."""
    best: str | None = None
    """Best submission so far; scored if a limit ends the episode early."""

    def candidate(self, submission: str | None) -> None:
        """Record the current best submission (what a limit will score)."""
        self.best = submission

    def check_time(self) -> None:
        """Raise LimitReached when the wall-time budget is spent."""
        if self.limits.wall_s is not None and self.trace.elapsed() >= self.limits.wall_s:
            raise LimitReached("wall_s", f"{self.trace.elapsed():.1f}s ≥ {self.limits.wall_s}s")
