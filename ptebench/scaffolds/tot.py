"""tot (Tree of Thoughts, Yao et al. 2023): search over partial solutions, BFS or DFS.

A *thought* is one step of a partial solution: a line of reasoning (qa), a whole program
(code: each step proposes programs or refinements of one), or a tool action and its
observation (agentic tasks — each child acts in its own fork of the sandbox, see
ptebench.scaffolds.branching). Each step proposes children for every frontier state
(one ``propose`` call per state, one child per output line; code proposals are n samples
of role ``answer``), values every unique child with ``n_evaluate`` samples of one ``value``
request (sure = 20, likely = 1, impossible = 0.001, summed; cached per prompt), and keeps
the best ``n_select`` (greedy). A state whose last line is ``Answer: X`` is complete and
carried forward without further proposals.

Calls (BFS) = 1 + b(T − 1) proposal requests (fewer when states complete early) + one value
request per unique child prompt. DFS: at most ``dfs_max_nodes`` proposal requests.

The submission is the highest-valued complete solution of the final frontier, chosen
without ground truth; the ranked final answers are recorded as ``final_candidates`` (for
any-of-b). Under ``oracle_feedback`` the first final candidate the hidden scorer accepts is
submitted instead — the published Game of 24 behaviour.

Task prompt packs (``TaskView.prompts``), all optional: ``propose`` ({input}: the numbers
left, read from a trailing "(left: ...)" of the state's last line, else the task input),
``value`` ({input} likewise), ``value_last`` ({input}, {answer}) and ``cot`` ({input}, used
for the last step's proposal with the steps so far appended), as in ToT's Game of 24.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pydantic import Field

from ptebench.models.base import Choice, GenerateRequest, Message
from ptebench.records import Action
from ptebench.registry import register
from ptebench.scaffolds import parsing, prompts
from ptebench.scaffolds.base import EpisodeContext, ScaffoldParams
from ptebench.scaffolds.branching import Brancher, BranchMode, NodeState
from ptebench.scaffolds.parsing import ParseError, parse_action
from ptebench.scaffolds.react import parse_tool_call, tool_specs, uses_native


class TotParams(ScaffoldParams):
    """Parameters of Tree of Thoughts. Defaults: the paper's Game of 24 setting."""

    search: Literal["bfs", "dfs"] = "bfs"
    """Breadth-first with a beam (Game of 24, creative writing) or depth-first with pruning
    and backtracking (mini crosswords)."""
    steps: int = Field(default=4, ge=1)
    """Thought steps T (Game of 24: 3 operations + the final answer = 4)."""
    n_select: int = Field(default=5, ge=1)
    """Beam width b: states kept per step (Game of 24: 5)."""
    n_propose: int = Field(default=5, ge=1)
    """Candidates asked for per proposal ("N candidates" in the generic prompt; code: samples
    per proposal request). The Game of 24 pack asks for "several" instead."""
    n_evaluate: int = Field(default=3, ge=1)
    """Value samples per candidate, summed (Game of 24: 3)."""
    temperature: float = 0.7
    """Temperature of proposal and value calls (ToT: 0.7)."""
    dfs_prune: float = 1.0
    """DFS: children whose summed value is below this are pruned (1.0 drops states every
    sample judged impossible, as the crosswords DFS did)."""
    dfs_max_nodes: int = Field(default=100, ge=1)
    """DFS: most states expanded (crosswords: 100 steps)."""
    branching: BranchMode = "snapshot"
    """How agentic children get their sandbox state: snapshot/restore forks, or replay."""
    max_tokens: int | None = 1024
    """Cap on each reply."""
    tool_calling: Literal["auto", "text", "native"] = "auto"
    """Agentic proposals: candidate actions as text lines, or as native tool calls (several
    parallel calls = several candidates; none is run as a sequence). auto: native when the
    model takes native tools."""


@dataclass
class Thought:
    """A state of the search: the thoughts so far and, once complete, its answer."""

    lines: list[str] = field(default_factory=list)
    answer: str | None = None
    final: bool = False
    """No further proposals from this state."""
    value: float = 0.0
    state: NodeState = field(default_factory=NodeState)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def task_input(ctx: EpisodeContext) -> str:
    """The ``{input}`` of a task's prompt pack: metadata['input'] if the task gives one."""
    v = ctx.task.metadata.get("input")
    return str(v) if v is not None else ctx.task.instructions


def _left(ctx: EpisodeContext, s: Thought) -> str:
    m = re.search(r"left:\s*([^)]*)\)?\s*$", s.lines[-1]) if s.lines else None
    return m.group(1).strip() if m else task_input(ctx)


@register("scaffold", "tot")
class Tot:
    """Tree of Thoughts with BFS or DFS over proposed thoughts."""

    name: ClassVar[str] = "tot"
    Params: ClassVar[type[ScaffoldParams]] = TotParams

    def __init__(self, params: TotParams) -> None:
        self.params = params
        self._cache: dict[str, float] = {}
        self._nodes = 0

    # -- modes -----------------------------------------------------------------------------
    def _mode(self, ctx: EpisodeContext) -> Literal["text", "code", "act"]:
        if ctx.task.kind == "code" and ctx.task.code is not None:
            return "code"
        acting = any(t != "submit" for t in ctx.task.tools)
        return "act" if ctx.task.kind == "agentic" and acting else "text"

    async def _generate(
        self, ctx: EpisodeContext, messages: list[Message], role: str, n: int
    ) -> list[str]:
        resp = await ctx.model.generate(
            GenerateRequest(
                messages=messages,
                role=role,
                n=n,
                temperature=self.params.temperature,
                max_tokens=self.params.max_tokens,
                stop=parsing.ACT_STOP if role == "act" else [],
            )
        )
        return [c.text for c in resp.choices]

    # -- proposals -------------------------------------------------------------------------
    async def _propose(
        self, ctx: EpisodeContext, s: Thought, t: int, br: Brancher
    ) -> list[Thought]:
        mode, p, pack = self._mode(ctx), self.params, ctx.task.prompts
        if mode == "code":
            if s.answer is None:
                text = f"{prompts.task_text(ctx.task)}\n\n{prompts.answer_format(ctx.task)}"
            else:
                text = (
                    f"{prompts.task_text(ctx.task)}\n\nA candidate program:\n```python\n"
                    f"{s.answer.rstrip()}\n```\nCheck it against the specification and write a "
                    f"corrected, complete version.\n{prompts.answer_format(ctx.task)}"
                )
            outs = await self._generate(ctx, prompts.user(text), "answer", p.n_propose)
            progs = [parsing.extract_submission(o, ctx.task) for o in outs]
            return [Thought(lines=[g], answer=g) for g in progs if g is not None]
        last = t == p.steps - 1
        if mode == "text" and last and "cot" in pack:
            text = prompts.fill(pack["cot"], input=task_input(ctx)) + "Steps:\n" + s.text
        elif mode == "text" and "propose" in pack:
            text = prompts.fill(pack["propose"], input=_left(ctx, s))
        else:
            text = self._generic_propose(ctx, s, last, mode)
        if mode == "act":
            return await self._act_children(ctx, s, await self._propose_actions(ctx, text), br)
        lines = parsing.parse_lines(
            (await self._generate(ctx, prompts.user(text), "propose", 1))[0]
        )
        return self._text_children(s, lines)

    async def _propose_actions(self, ctx: EpisodeContext, text: str) -> list[str | Action]:
        """Proposed next actions: each native tool call of the reply (several parallel calls
        are several candidates), then each text line."""
        native = uses_native(ctx.model.native_tools, self.params.tool_calling)
        resp = await ctx.model.generate(
            GenerateRequest(
                messages=prompts.user(text),
                role="propose",
                temperature=self.params.temperature,
                max_tokens=self.params.max_tokens,
                tools=tool_specs(ctx.task) if native else [],
            )
        )
        choice = resp.choices[0] if resp.choices else Choice()
        tools = sorted({*ctx.task.tools, "submit"})
        items: list[str | Action] = []
        for call in choice.tool_calls:
            try:
                items.append(parse_tool_call(call, tools))
            except ParseError:
                ctx.metrics["unparsed_proposals"] = (
                    int(str(ctx.metrics.get("unparsed_proposals", 0))) + 1
                )
        return items + list(parsing.parse_lines(choice.text))

    def _generic_propose(self, ctx: EpisodeContext, s: Thought, last: bool, mode: str) -> str:
        k = self.params.n_propose
        so_far = s.text or "(none yet)"
        if mode == "act" and uses_native(ctx.model.native_tools, self.params.tool_calling):
            return (
                f"{prompts.task_text(ctx.task)}\n\nActions so far and what they showed:\n{so_far}"
                f"\n\nPropose {k} candidates for the next action: make one tool call per "
                "candidate, all in this reply (they are alternatives, not a sequence); call "
                "submit with the answer when done."
            )
        if mode == "act":
            tools = ", ".join(sorted({*ctx.task.tools, "submit"}))
            return (
                f"{prompts.task_text(ctx.task)}\n\nActions so far and what they showed:\n{so_far}\n\n"
                f"Propose {k} candidates for the next action, one per line, each written as "
                f"'<tool>: <input>' with a tool among {tools}; use 'submit: <answer>' when done."
            )
        finish = (
            "give the final answer as 'Answer: <answer>'"
            if last
            else (
                "or, if the steps so far already solve it, the final answer as 'Answer: <answer>'"
            )
        )
        return (
            f"{prompts.task_text(ctx.task)}\n\nSteps so far:\n{so_far}\n\n"
            f"Propose {k} candidates for the next step, one per line; {finish}."
        )

    def _text_children(self, s: Thought, lines: list[str]) -> list[Thought]:
        out: list[Thought] = []
        for ln in lines:
            ans = parsing.find_answer(ln)
            out.append(Thought(lines=[*s.lines, ln], answer=ans, final=ans is not None))
        return out

    async def _act_children(
        self, ctx: EpisodeContext, s: Thought, items: list[str | Action], br: Brancher
    ) -> list[Thought]:
        tools = sorted({*ctx.task.tools, "submit"})
        out: list[Thought] = []
        seen: set[str] = set()
        for item in items:
            key = item if isinstance(item, str) else f"{item.tool}: {item.input}"
            if key in seen:
                continue
            seen.add(key)
            ln = key
            thought: str | None = None
            if isinstance(item, Action):
                action = item
            else:
                ans = parsing.find_answer(ln)
                if ans is not None:
                    out.append(Thought([*s.lines, ln], ans, True, state=NodeState(s.state.actions)))
                    continue
                try:
                    thought, action = parse_action(
                        ln if ln.lower().startswith("action") else f"Action: {ln}", tools
                    )
                except ParseError:
                    ctx.metrics["unparsed_proposals"] = (
                        int(str(ctx.metrics.get("unparsed_proposals", 0))) + 1
                    )
                    continue
            if action.tool == "submit":
                out.append(
                    Thought(
                        [*s.lines, ln],
                        action.input.strip() or None,
                        True,
                        state=NodeState(s.state.actions),
                    )
                )
                continue
            env = await br.child(s.state)
            step = await env.run(action, thought)
            obs = step.observation[:1000]
            state = NodeState([*s.state.actions, action], await br.keep(env))
            out.append(
                Thought(
                    [*s.lines, f"Action: {action.tool}: {action.input}", f"Observation: {obs}"],
                    state=state,
                )
            )
        return out

    # -- values ----------------------------------------------------------------------------
    async def _value(self, ctx: EpisodeContext, s: Thought) -> float:
        pack, mode = ctx.task.prompts, self._mode(ctx)
        if mode == "text" and s.final and "value_last" in pack:
            msgs = prompts.user(
                prompts.fill(pack["value_last"], input=task_input(ctx), answer=s.answer or "")
            )
        elif mode == "text" and not s.final and "value" in pack:
            msgs = prompts.user(prompts.fill(pack["value"], input=_left(ctx, s)))
        else:
            what = {"code": "program", "act": "progress", "text": "partial solution"}[mode]
            system = (
                f"Task:\n{prompts.task_text(ctx.task)}\n\nEvaluate whether the {what} below is "
                "on track to solve the task. Reason briefly, then end with one word: sure, "
                "likely or impossible."
            )
            body = f"```python\n{s.answer}\n```" if mode == "code" else s.text
            msgs = [Message(role="system", content=system), Message(role="user", content=body)]
        key = "\n".join(m.content for m in msgs)
        if key not in self._cache:
            outs = await self._generate(ctx, msgs, "value", self.params.n_evaluate)
            self._cache[key] = sum(parsing.parse_tot_value(o) for o in outs)
        return self._cache[key]

    async def _valued(self, ctx: EpisodeContext, children: list[Thought]) -> list[Thought]:
        unique: dict[str, Thought] = {}
        for c in children:
            unique.setdefault(c.text, c)
        for c in unique.values():
            ctx.check_time()
            c.value = await self._value(ctx, c)
        return sorted(unique.values(), key=lambda c: -c.value)

    def _note_best(self, ctx: EpisodeContext, states: list[Thought]) -> None:
        done = [s for s in states if s.answer is not None]
        if done:
            best = max(done, key=lambda s: s.value)
            if best.value >= self._best_value:
                self._best_value = best.value
                ctx.candidate(best.answer)

    _best_value: float = float("-inf")

    # -- search ----------------------------------------------------------------------------
    async def run(self, ctx: EpisodeContext) -> str | None:
        self._cache, self._nodes, self._best_value = {}, 0, float("-inf")
        br = Brancher(ctx, self.params.branching)
        try:
            final = await (
                self._bfs(ctx, br) if self.params.search == "bfs" else self._dfs(ctx, br)
            )
            return await self._choose(ctx, br, final)
        finally:
            await br.close_all()

    async def _bfs(self, ctx: EpisodeContext, br: Brancher) -> list[Thought]:
        frontier = [Thought()]
        for t in range(self.params.steps):
            ctx.check_time()
            children: list[Thought] = []
            for s in frontier:
                children += [s] if s.final else await self._propose(ctx, s, t, br)
            ranked = await self._valued(ctx, children)
            keep = ranked[: self.params.n_select]
            for s in [*frontier, *ranked[self.params.n_select :]]:
                if s not in keep:
                    await br.discard(s.state.env)
            frontier = keep
            self._note_best(ctx, frontier)
            if not frontier:
                break
        return frontier

    async def _dfs(self, ctx: EpisodeContext, br: Brancher) -> list[Thought]:
        found: list[Thought] = []

        async def visit(s: Thought, t: int) -> bool:
            if s.final or t == self.params.steps:
                if s.answer is not None:
                    found.append(s)
                    self._note_best(ctx, [s])
                    return True
                return False
            if self._nodes >= self.params.dfs_max_nodes:
                return False
            self._nodes += 1
            ctx.check_time()
            for c in await self._valued(ctx, await self._propose(ctx, s, t, br)):
                if c.value >= self.params.dfs_prune and await visit(c, t + 1):
                    return True
                await br.discard(c.state.env)
            return False

        await visit(Thought(), 0)
        ctx.metrics["dfs_nodes"] = self._nodes
        return found

    async def _choose(self, ctx: EpisodeContext, br: Brancher, final: list[Thought]) -> str | None:
        done = sorted((s for s in final if s.answer is not None), key=lambda s: -s.value)
        ctx.metrics["final_candidates"] = [s.answer for s in done]
        if not done:
            return ctx.best
        choice = done[0]
        if ctx.oracle is not None:
            for s in done:
                if (await ctx.oracle.score(s.answer) or 0.0) >= 1.0:
                    choice = s
                    break
        ctx.candidate(choice.answer)
        await br.adopt(choice.state)
        return choice.answer
