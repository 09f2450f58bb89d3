"""Prove a task solvable: set it up, score an empty submission (must be 0), replay the
reference solution as the agent, score its final output (must be 1), then score that same
final state again (the verifier must agree with itself).

Each check ends in a ``verdict``, so a benchmark's hard tasks are not confused with broken
ones: ``ok``; ``broken: oracle fails`` (the reference solution does not score 1);
``broken: empty attempt passes``; ``nondeterministic verifier`` (the two scorings of one state
differ); ``unverified: no oracle`` (nothing to replay — the empty attempt is still scored);
``error`` (setup, sandbox or scorer failed — ``error`` says what).

Used by ``ptebench tasks validate PATH --run`` and by the ctf suite's CI test. The replay is
exactly what the simulated model does when it solves a task: each reference action runs as
a separate bash command as the agent user, and the final observation is the submission
(its last line, when the answer is a per-episode secret — see ``submission_of``).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from ptebench.records import Record, Score
from ptebench.sandbox.base import Sandbox, SandboxSpec
from ptebench.tasks.base import Task, TaskInstance

Acquire = Callable[[SandboxSpec], AbstractAsyncContextManager[Sandbox]]
"""Hands out a fresh sandbox for a spec (e.g. ``lambda s: provider.acquire(s, labels)``)."""


class SolutionCheck(Record):
    """Outcome of validating one instance."""

    instance: str
    """Instance id."""
    empty: Score | None = None
    """Score of an empty submission right after setup (must be 0)."""
    solved: Score | None = None
    """Score of the reference solution's final output (must be 1)."""
    rescored: Score | None = None
    """The verifier run a second time on the same final state (must equal ``solved``)."""
    actions: int = 0
    """Reference actions replayed."""
    setup_s: float = 0.0
    """Seconds spent acquiring the sandbox and running setup."""
    total_s: float = 0.0
    """Seconds for the whole check."""
    log: str = ""
    """Tail of the last action's output (for debugging a failure)."""
    error: str | None = None
    """What broke, if the check could not complete."""

    @property
    def oracle_passes(self) -> bool | None:
        """Whether the reference solution scored 1 (None: no oracle, or it never ran)."""
        return None if self.solved is None else self.solved.value == 1.0

    @property
    def deterministic(self) -> bool | None:
        """Whether the verifier gave the solved state the same score twice (None: not run twice)."""
        if self.solved is None or self.rescored is None:
            return None
        return self.solved.value == self.rescored.value

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "error"
        if self.actions == 0:
            return "unverified: no oracle"
        if self.solved is not None and self.solved.value != 1.0:
            return "broken: oracle fails"
        if self.empty is not None and self.empty.value != 0.0:
            return "broken: empty attempt passes"
        if self.deterministic is False:
            return "nondeterministic verifier"
        return "ok" if self.solved is not None and self.empty is not None else "error"

    @property
    def broken(self) -> bool:
        """The task itself is wrong (its oracle fails or an empty attempt passes)."""
        return self.verdict.startswith("broken")

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def submission_of(instance: TaskInstance, observation: str) -> str:
    """What the simulated model submits after replaying the reference: the static answer's
    stand-in (the whole output, stripped) or, for a per-episode secret, the last non-empty
    line of the final observation (stdout, then stderr — as the Environment shows it)."""
    if instance.reference.answer is not None:
        return observation.strip()
    lines = [ln.strip() for ln in observation.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


Probe = Callable[[Sandbox, TaskInstance], Awaitable[str | None]]
"""Runs right after setup; returns a problem (e.g. "the agent can read the secret") or None."""


async def _stop_agent(task: Task, instance: TaskInstance, sandbox: Sandbox) -> None:
    """As the runner does before scoring: kill what the solution left running, unless the
    task's point is a process that survives (``stop_agent_before_scoring``)."""
    wants: Any = getattr(task, "stop_agent_before_scoring", None)
    stop: Any = getattr(sandbox, "stop_agent", None)
    if stop is not None and (wants is None or wants(instance)):
        await stop()


async def check_solution(
    task: Task, instance: TaskInstance, acquire: Acquire, after_setup: Probe | None = None
) -> SolutionCheck:
    """Validate ``instance`` of ``task`` in a fresh sandbox; never raises for task failures."""
    t0 = time.monotonic()
    out = SolutionCheck(instance=instance.id, actions=len(instance.reference.actions))
    spec = task.sandbox_spec(instance)
    if spec is None:
        out.error = "the task has no sandbox; nothing to replay"
        return out
    timeout = (instance.limits.tool_timeout_s if instance.limits else 60.0) * 2
    try:
        async with acquire(spec) as sandbox:
            await task.setup(sandbox, instance)
            out.setup_s = time.monotonic() - t0
            if after_setup is not None and (problem := await after_setup(sandbox, instance)):
                out.error = problem
            out.empty = await task.score(sandbox, instance, None)
            if not instance.reference.actions:
                out.total_s = time.monotonic() - t0
                return out
            last = ""
            for action in instance.reference.actions:
                cmd: str | list[str] = action.input
                stdin = None
                if action.tool == "python":
                    cmd, stdin = ["python3", "-"], action.input
                res = await sandbox.exec(cmd, timeout=timeout, input=stdin)
                last = res.stdout + ("\n" if res.stdout and res.stderr else "") + res.stderr
                out.log = last[-800:]
            answer = submission_of(instance, last)
            await _stop_agent(task, instance, sandbox)
            out.solved = await task.score(sandbox, instance, answer)
            out.rescored = await task.score(sandbox, instance, answer)
    except Exception as e:  # report, so one broken task does not hide the others
        out.error = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
    out.total_s = time.monotonic() - t0
    return out
