"""What a scaffold sees and how it acts: the episode context, the environment, the protocol.

A scaffold is a class registered under kind 'scaffold' with a ``Params`` pydantic model and
an ``async run(ctx) -> str | None`` returning the submission. It reaches the world only
through ``ctx``: the public ``TaskView``, the metered model, the ``Environment`` (tools over
the sandbox, with snapshot/fork for tree search) and, only when the experiment enables
``oracle_feedback``, an ``Oracle`` that consults the hidden scorer and is counted.
"""

from __future__ import annotations

import json
import re
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


# --- action parsing -----------------------------------------------------------------------

_ACTION_RE = re.compile(r"^\s*Action\s*\d*\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
_THOUGHT_RE = re.compile(r"Thought\s*\d*\s*:\s*(.*?)(?=^\s*Action\s*\d*\s*:|\Z)", re.I | re.S | re.M)
_TOOL_INPUT_RE = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*(?:\[(.*)\]\s*$|:\s?(.*)$|\((.*)\)\s*$)", re.S)


class ParseError(ValueError):
    """The model's output holds no usable action; the message becomes the observation."""


def parse_action(text: str, tools: list[str]) -> tuple[str | None, Action]:
    """Parse ``Thought: ...`` / ``Action: tool: input`` (or ``tool[input]``, or a JSON object
    ``{"tool": ..., "input": ...}``) into (thought, Action).

    Everything after ``Action:`` belongs to the action, so multi-line programs work.

    Raises:
        ParseError: no action, an unknown tool, or malformed JSON — with a message the model
            can act on.
    """
    thought_m = _THOUGHT_RE.search(text)
    thought = thought_m.group(1).strip() if thought_m else None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise ParseError(f"could not parse action: invalid JSON ({e.msg})") from e
        if not isinstance(obj, dict) or "tool" not in obj:
            raise ParseError('could not parse action: JSON needs {"tool": ..., "input": ...}')
        tool, arg = str(obj["tool"]), obj.get("input", "")
        if not isinstance(arg, str):
            arg = json.dumps(arg)
        return thought, _checked(Action(tool=tool, input=arg), tools)
    m = _ACTION_RE.search(text)
    if m is None:
        raise ParseError(
            "could not parse action: write 'Thought: ...' then 'Action: <tool>: <input>' "
            f"with a tool among {', '.join(tools)}"
        )
    rest = text[m.start(1) :].strip()
    tm = _TOOL_INPUT_RE.match(rest)
    if tm is None:
        raise ParseError(f"could not parse action {rest[:80]!r}: expected '<tool>: <input>'")
    tool = tm.group(1).lower()
    arg = next((g for g in tm.groups()[1:] if g is not None), "")
    return thought, _checked(Action(tool=tool, input=_strip_fence(arg)), tools)


def _strip_fence(s: str) -> str:
    s = s.strip()
    m = re.match(r"^```[\w+-]*\n(.*?)\n?```$", s, re.S)
    return m.group(1) if m else s


def _checked(action: Action, tools: list[str]) -> Action:
    if action.tool not in tools:
        raise ParseError(
            f"could not parse action: unknown tool {action.tool!r}; available: {', '.join(tools)}"
        )
    return action


_ANSWER_RE = re.compile(r"^\s*(?:final\s+)?answer\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
_CODE_RE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)


def extract_answer(text: str) -> str:
    """The final answer in a model's text: the last ``Answer: ...`` line, else the last
    non-empty line. An empty output gives an empty answer (which scores as wrong)."""
    found = _ANSWER_RE.findall(text)
    if found:
        return str(found[-1]).strip()
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def extract_code(text: str, prompt: str = "") -> str:
    """The program in a model's text: the last fenced block, else the whole text.

    A completion that only continues ``prompt`` (a body without the ``def`` line, as base
    models write) is prefixed with the prompt so the result is a whole program.
    """
    blocks = _CODE_RE.findall(text)
    code = str(blocks[-1]) if blocks else text
    if prompt and "def " not in code:
        code = prompt + code
    return code.strip("\n") + "\n"


# --- the environment ------------------------------------------------------------------------


class Environment:
    """The task's tools over the episode's sandbox, metered into the trace.

    ``fork()`` gives an independent copy of the environment (sandbox snapshot + restore) for
    tree search; the fork must be closed by whoever made it.
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
        child = await self.sandbox.restore(snap)
        self.branch_cost_s += time.monotonic() - t
        return Environment(child, self.tools, self._limits, self._trace, name)

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
