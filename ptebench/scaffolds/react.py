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

from typing import ClassVar, Literal

from pydantic import Field

from ptebench.models.base import (
    Choice,
    GenerateRequest,
    GenerateResponse,
    Message,
    ToolCall,
    ToolSpec,
)
from ptebench.models.meter import LimitReached
from ptebench.records import Action
from ptebench.registry import register
from ptebench.scaffolds.base import EpisodeContext, ScaffoldParams
from ptebench.scaffolds.parsing import (
    ACT_STOP,
    ParseError,
    extract_answer,
    parse_action,
    tool_call_input,
)
from ptebench.tasks.base import TaskView

TOOL_HELP = {
    "bash": "bash: <command> — run a shell command in your sandbox and see its output",
    "python": "python: <program> — run a Python 3 program (it may span several lines)",
    "submit": "submit: <answer> — submit your final answer and end the task",
}

FORCE_SUBMIT = "You are out of steps. Reply with 'Answer: <your final answer>'."
FORCE_SUBMIT_NATIVE = (
    "You are out of steps. Call submit with your final answer now (or reply with "
    "'Answer: <your final answer>')."
)
EMPTY_REPLY = "(empty reply)"
"""Content kept for an assistant turn that said nothing (APIs reject empty assistant turns)."""


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
    tool_calling: Literal["auto", "text", "native"] = "auto"
    """text: actions written as 'Action: tool: input' (works with every model, the paper's
    format). native: tools offered through the provider's tool-calling API; a reply without
    a tool call is still parsed as text. auto: native when the model's card or config says
    it takes native tools (``native_tools``), text otherwise."""


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


def native_system_prompt(task: TaskView) -> str:
    """The system prompt when tools go through the provider's tool-calling API."""
    tools = "\n".join(f"- {TOOL_HELP.get(t, t).split(' — ', 1)[-1]} ({t})" for t in tool_list(task))
    return (
        "You solve tasks step by step with the tools provided. In each reply, reason briefly, "
        "then call one tool; you will see its result before your next step.\n"
        f"Tools:\n{tools}\n"
        "When you know the answer, call submit with it."
    )


def uses_native(ctx_native: bool, setting: str) -> bool:
    """Whether a scaffold with ``tool_calling: setting`` offers tools natively."""
    return setting == "native" or (setting == "auto" and ctx_native)


def has_tool_turns(messages: list[Message]) -> bool:
    """The history holds tool calls or results: the APIs then require the tools again."""
    return any(m.role == "tool" or m.tool_calls for m in messages)


def choice_actions(
    choice: Choice, tools: list[str]
) -> tuple[str | None, list[tuple[ToolCall | None, Action | ParseError]]]:
    """A reply's thought and its actions in order: every native tool call (a call that
    does not parse carries its ParseError, to be answered with it), else the text action.

    Raises:
        ParseError: a reply without tool calls whose text holds no valid action.
    """
    if choice.tool_calls:
        out: list[tuple[ToolCall | None, Action | ParseError]] = []
        for call in choice.tool_calls:
            try:
                out.append((call, parse_tool_call(call, tools)))
            except ParseError as e:
                out.append((call, e))
        return (choice.text.strip() or None), out
    thought, action = parse_action(choice.text, tools)
    return thought, [(None, action)]


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
    """A native tool call as an Action; its input is read by ``parsing.tool_call_input``
    (``input``, a usual alias such as ``command``/``code``/``answer``, or the only argument).

    Raises:
        ParseError: unknown tool or arguments that are not JSON.
    """
    if call.name not in tools:
        raise ParseError(
            f"could not parse action: unknown tool {call.name!r}; available: {', '.join(tools)}"
        )
    return Action(tool=call.name, input=tool_call_input(call.arguments))


@register("scaffold", "react")
class React:
    """Thought/Action/Observation loop over the task's tools."""

    name: ClassVar[str] = "react"
    Params: ClassVar[type[ScaffoldParams]] = ReactParams

    def __init__(self, params: ReactParams) -> None:
        self.params = params
        self.native = False

    async def _call(self, ctx: EpisodeContext, messages: list[Message]) -> GenerateResponse:
        p = self.params
        native = self.native or has_tool_turns(messages)
        req = GenerateRequest(
            messages=messages,
            role="act",
            temperature=p.temperature,
            max_tokens=p.max_tokens,
            tools=tool_specs(ctx.task) if native else [],
            stop=ACT_STOP,
            cue=None if native else "Thought:",
        )
        return await ctx.model.generate(req)

    async def run(self, ctx: EpisodeContext) -> str | None:
        task = ctx.task
        tools = tool_list(task)
        self.native = uses_native(ctx.model.native_tools, self.params.tool_calling)
        ctx.metrics["tool_calling"] = "native" if self.native else "text"
        system = native_system_prompt(task) if self.native else system_prompt(task)
        messages = [
            Message(role="system", content=system),
            Message(role="user", content=task_prompt(task)),
        ]
        try:
            for _ in range(self.params.max_steps):
                ctx.check_time()
                parsed = await self._step(ctx, messages, tools)
                if parsed is None:
                    continue
                answer = await self._act(ctx, messages, *parsed)
                if answer is not None:
                    ctx.candidate(answer or None)
                    return answer or None
        except LimitReached as e:
            if e.which != "steps":
                raise
            # The episode's step budget is spent: ask for the answer, keep it, stop as `limit`.
            ctx.candidate(await self._force_submit(ctx, messages, tools))
            raise
        answer = await self._force_submit(ctx, messages, tools)
        ctx.candidate(answer)
        return answer

    async def _act(
        self,
        ctx: EpisodeContext,
        messages: list[Message],
        thought: str | None,
        actions: list[tuple[ToolCall | None, Action | ParseError]],
        kept: Message,
    ) -> str | None:
        """Run a reply's actions in order; returns the submitted answer ('' for an empty
        one), or None to go on. Every tool call gets its answer in the history, in order:
        calls after a submit are answered as not run."""
        messages.append(kept)
        pending = len(messages)
        try:
            for call, action in actions:
                if isinstance(action, ParseError):
                    obs = ctx.env.note(str(action), thought).observation
                elif action.tool == "submit":
                    return action.input.strip()
                else:
                    obs = (await ctx.env.run(action, thought)).observation
                if call is not None:
                    messages.append(Message(role="tool", content=obs, tool_call_id=call.id))
                else:
                    messages.append(Message(role="user", content=f"Observation: {obs}"))
        finally:
            # a budget stop between parallel calls still leaves every call answered
            answered = {m.tool_call_id for m in messages[pending:]}
            for call, _ in actions:
                if call is not None and call.id not in answered:
                    note = "not run: the step budget ran out or the task was submitted"
                    messages.append(Message(role="tool", content=note, tool_call_id=call.id))
        return None

    async def _step(
        self, ctx: EpisodeContext, messages: list[Message], tools: list[str]
    ) -> tuple[str | None, list[tuple[ToolCall | None, Action | ParseError]], Message] | None:
        """One step's call(s): the parsed actions and the assistant turn to keep, or None
        after the retries failed (recorded)."""
        for attempt in range(self.params.parse_retries + 1):
            resp = await self._call(ctx, messages)
            choice = resp.choices[0] if resp.choices else Choice()
            kept = Message(
                role="assistant",
                content=choice.text if (choice.text.strip() or choice.tool_calls) else EMPTY_REPLY,
                tool_calls=choice.tool_calls,
            )
            try:
                thought, actions = choice_actions(choice, tools)
                return thought, actions, kept
            except ParseError as e:
                if attempt == self.params.parse_retries:
                    ctx.env.note(str(e))
                messages += [kept, Message(role="user", content=f"Observation: {e}")]
        return None

    async def _force_submit(
        self, ctx: EpisodeContext, messages: list[Message], tools: list[str]
    ) -> str | None:
        native = self.native or has_tool_turns(messages)
        ask = FORCE_SUBMIT_NATIVE if native else FORCE_SUBMIT
        if messages[-1].role == "user":
            # one user turn: chat templates such as Gemma's require strict alternation
            last = messages[-1]
            messages[-1] = last.model_copy(update={"content": f"{last.content}\n\n{ask}"})
        else:
            messages.append(Message(role="user", content=ask))
        resp = await ctx.model.generate(
            GenerateRequest(
                messages=messages,
                role="act",
                temperature=self.params.temperature,
                max_tokens=self.params.max_tokens,
                tools=tool_specs(ctx.task) if native else [],
                stop=ACT_STOP,
                cue=None if native else "Answer:",
            )
        )
        choice = resp.choices[0] if resp.choices else Choice()
        try:
            _, actions = choice_actions(choice, tools)
        except ParseError:
            actions = []
        submitted = [a for _, a in actions if isinstance(a, Action) and a.tool == "submit"]
        answer = submitted[0].input.strip() if submitted else extract_answer(choice.text)
        return answer or None
