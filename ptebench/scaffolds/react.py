"""react (Yao et al. 2023): a loop of Thought → Action → Observation, then submit.

The model writes ``Thought: ...`` and ``Action: <tool>: <input>`` (or a JSON tool call, or —
with ``tool_calling: native`` — a provider tool call); ptebench runs the action in the task's
sandbox and shows the observation. ``submit`` ends the episode with its input as the answer.
Unparseable output is an observation: the model gets ``parse_retries`` more tries per step,
after which the step is recorded as wasted. At ``max_steps`` — or when the episode's step
budget runs out — the model is asked once to give its final answer (the forced submit); a
budget stop still ends with status ``limit``, with that answer as the best submission.

Calls ≤ max_steps × (1 + parse_retries) + 1 (the forced submit).
"""

from __future__ import annotations

import json
from typing import ClassVar, Literal

from pydantic import Field

from ptebench.models.base import GenerateRequest, GenerateResponse, Message, ToolCall, ToolSpec
from ptebench.models.meter import LimitReached
from ptebench.records import Action
from ptebench.registry import register
from ptebench.scaffolds.base import (
    EpisodeContext,
    ParseError,
    ScaffoldParams,
    extract_answer,
    parse_action,
)
from ptebench.tasks.base import TaskView

TOOL_HELP = {
    "bash": "bash: <command> — run a shell command in your sandbox and see its output",
    "python": "python: <program> — run a Python 3 program (it may span several lines)",
    "submit": "submit: <answer> — submit your final answer and end the task",
}

OBSERVATION_STOP = "\nObservation:"
"""Act calls stop here: the observation is the environment's to write, not the model's."""

FORCE_SUBMIT = "You are out of steps. Reply with 'Answer: <your final answer>'."


class ReactParams(ScaffoldParams):
    """Parameters of ReAct. Defaults follow the ReAct paper's HotpotQA setting."""

    max_steps: int = Field(default=7, ge=1)
    """Thought/Action/Observation turns before a forced submit (ReAct HotpotQA: 7; sandbox
    tasks usually want more, e.g. 30, and set it per experiment)."""
    temperature: float = 0.0
    """Sampling temperature (ReAct: greedy)."""
    parse_retries: int = Field(default=1, ge=0)
    """Extra calls allowed per step when the output holds no valid action (ReAct: 1)."""
    max_tokens: int | None = 1024
    """Cap on each reply."""
    tool_calling: Literal["text", "native"] = "text"
    """text: actions written as 'Action: tool: input' (works with every model, the paper's
    format). native: tools offered through the provider's tool-calling API; a reply without
    a tool call is still parsed as text."""


def tool_list(task: TaskView) -> list[str]:
    """The task's tools plus submit, in a stable order."""
    return sorted({*task.tools, "submit"})


def system_prompt(task: TaskView) -> str:
    tools = "\n".join(f"- {TOOL_HELP.get(t, t)}" for t in tool_list(task))
    return (
        "You solve tasks by interleaving Thought, Action and Observation steps.\n"
        "Each reply must contain exactly one step, in this form:\n"
        "Thought: <your reasoning>\nAction: <tool>: <input>\n\n"
        f"Tools:\n{tools}\n"
        "When you know the answer, use the submit tool."
    )


def task_prompt(task: TaskView) -> str:
    if task.kind == "code" and task.code is not None:
        return (
            f"{task.instructions}\n\nComplete this function and submit the whole program:\n"
            f"```python\n{task.code.prompt}```"
        )
    return task.instructions


def tool_specs(task: TaskView) -> list[ToolSpec]:
    """Native tool definitions: every tool takes one string argument, ``input``."""
    return [
        ToolSpec(
            name=t,
            description=TOOL_HELP.get(t, t).split("— ", 1)[-1],
            parameters={
                "type": "object",
                "properties": {"input": {"type": "string"}},
                "required": ["input"],
            },
        )
        for t in tool_list(task)
    ]


def parse_tool_call(call: ToolCall, tools: list[str]) -> Action:
    """A native tool call as an Action.

    Raises:
        ParseError: unknown tool or arguments that are not a JSON object with ``input``.
    """
    if call.name not in tools:
        raise ParseError(
            f"could not parse action: unknown tool {call.name!r}; available: {', '.join(tools)}"
        )
    try:
        args = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as e:
        raise ParseError(f"could not parse action: tool arguments are not JSON ({e.msg})") from e
    if not isinstance(args, dict) or "input" not in args:
        raise ParseError('could not parse action: tool arguments need {"input": "..."}')
    value = args["input"]
    return Action(tool=call.name, input=value if isinstance(value, str) else json.dumps(value))


@register("scaffold", "react")
class React:
    """Thought/Action/Observation loop over the task's tools."""

    name: ClassVar[str] = "react"
    Params: ClassVar[type[ScaffoldParams]] = ReactParams

    def __init__(self, params: ReactParams) -> None:
        self.params = params

    async def _call(self, ctx: EpisodeContext, messages: list[Message]) -> GenerateResponse:
        p = self.params
        req = GenerateRequest(
            messages=messages,
            role="act",
            temperature=p.temperature,
            max_tokens=p.max_tokens,
            tools=tool_specs(ctx.task) if p.tool_calling == "native" else [],
            stop=[OBSERVATION_STOP],
            cue=None if p.tool_calling == "native" else "Thought:",
        )
        return await ctx.model.generate(req)

    def _parse(
        self, resp: GenerateResponse, tools: list[str]
    ) -> tuple[str | None, Action, Message]:
        """(thought, action, the assistant message to keep). Raises ParseError."""
        choice = resp.choices[0] if resp.choices else None
        text = choice.text if choice else ""
        if choice is not None and choice.tool_calls:
            call = choice.tool_calls[0]
            action = parse_tool_call(call, tools)
            msg = Message(role="assistant", content=text, tool_calls=[call])
            return (text.strip() or None), action, msg
        thought, action = parse_action(text, tools)
        return thought, action, Message(role="assistant", content=text)

    def _observe(self, messages: list[Message], kept: Message, observation: str) -> None:
        messages.append(kept)
        if kept.tool_calls:
            tid = kept.tool_calls[0].id
            messages.append(Message(role="tool", content=observation, tool_call_id=tid))
        else:
            messages.append(Message(role="user", content=f"Observation: {observation}"))

    async def run(self, ctx: EpisodeContext) -> str | None:
        task = ctx.task
        tools = tool_list(task)
        messages = [
            Message(role="system", content=system_prompt(task)),
            Message(role="user", content=task_prompt(task)),
        ]
        try:
            for _ in range(self.params.max_steps):
                ctx.check_time()
                parsed = await self._step(ctx, messages, tools)
                if parsed is None:
                    continue
                thought, action, kept = parsed
                if action.tool == "submit":
                    answer = action.input.strip()
                    ctx.candidate(answer or None)
                    return answer or None
                step = await ctx.env.run(action, thought)
                self._observe(messages, kept, step.observation)
        except LimitReached as e:
            if e.which != "steps":
                raise
            # The episode's step budget is spent: ask for the answer, keep it, stop as `limit`.
            ctx.candidate(await self._force_submit(ctx, messages, tools))
            raise
        answer = await self._force_submit(ctx, messages, tools)
        ctx.candidate(answer)
        return answer

    async def _step(
        self, ctx: EpisodeContext, messages: list[Message], tools: list[str]
    ) -> tuple[str | None, Action, Message] | None:
        """One step's call(s): a parsed action, or None after the retries failed (recorded)."""
        for attempt in range(self.params.parse_retries + 1):
            resp = await self._call(ctx, messages)
            try:
                return self._parse(resp, tools)
            except ParseError as e:
                if attempt == self.params.parse_retries:
                    ctx.env.note(str(e))
                messages += [
                    Message(role="assistant", content=resp.text),
                    Message(role="user", content=f"Observation: {e}"),
                ]
        return None

    async def _force_submit(
        self, ctx: EpisodeContext, messages: list[Message], tools: list[str]
    ) -> str | None:
        messages.append(Message(role="user", content=FORCE_SUBMIT))
        resp = await ctx.model.generate(
            GenerateRequest(
                messages=messages, role="act", temperature=self.params.temperature,
                max_tokens=self.params.max_tokens, cue="Answer:",
            )
        )
        try:
            _, action, _ = self._parse(resp, tools)
            answer = action.input.strip() if action.tool == "submit" else extract_answer(resp.text)
        except ParseError:
            answer = extract_answer(resp.text)
        return answer or None
