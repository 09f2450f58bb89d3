"""lats (Language Agent Tree Search, Zhou et al. 2024): Monte Carlo tree search over
episode states, with the model as policy, value function and critic.

Each iteration: **select** a leaf by UCT (an unvisited node scores its value); **expand**
n children (one request with n samples at temperature 0.8); **evaluate** each child; on
QA/agentic tasks **simulate** a rollout from the best child to a terminal state or the
rollout depth; **backpropagate** the reward; **reflect** on failed terminals and feed up
to 3 reflections into later expansions.

Code (the HumanEval setting): nodes are programs. Tests are written once (role
``test_gen``; visible examples added); the root program is role ``answer``; children are n
samples of role ``answer`` that see the parent's program, its test feedback and the
reflections. A child's value is λ·(fraction of self-generated tests passed) + (1 − λ)·(the
model's own score, role ``value``, 1–10 scaled) — the paper's self-consistency term the
reference code dropped. Each failing child gets one reflection (role ``reflect``), once:
the reference code's quadratic re-reflection is not reproduced.
Calls ≈ 3 + K(1 + 2n) (= 91 at K = 8, n = 5); fewer when a child passes every self-test
(the search then stops) or children pass.

QA / agentic: nodes are trajectories of Thought/Action/Observation; children are n
samples of role ``act``; each acts in its own sandbox fork (ptebench.scaffolds.branching).
Per iteration: 1 expansion + n values + ≤ rollout_depth acts + 1 terminal value + ≤ 1
reflection.

Without ``oracle_feedback`` rewards are the model's own evaluations and self-tests. With
it, terminal rewards come from the hidden scorer and the search stops at the first pass
(the published HumanEval/HotpotQA behaviour).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import Field

from ptebench.models.base import GenerateRequest, Message
from ptebench.registry import register
from ptebench.scaffolds import parsing, prompts
from ptebench.scaffolds.base import EpisodeContext, ScaffoldParams
from ptebench.scaffolds.best_of_n import generate_tests
from ptebench.scaffolds.branching import Brancher, BranchMode, NodeState
from ptebench.scaffolds.codeexec import TestReport, run_tests
from ptebench.scaffolds.parsing import ParseError, parse_action
from ptebench.scaffolds.react import system_prompt


class LatsParams(ScaffoldParams):
    """Parameters of LATS. Defaults: the paper's HumanEval and HotpotQA settings."""

    iterations: int | None = Field(default=None, ge=1)
    """MCTS iterations K. None: 8 on code (HumanEval), 30 otherwise (HotpotQA)."""
    n_children: int = Field(default=5, ge=1)
    """Children per expansion n (paper: 5)."""
    temperature: float = 0.8
    """Expansion and rollout temperature (paper: 0.8)."""
    exploration: float | None = None
    """UCT constant c. None: 1 on code, √2 otherwise (the reference settings)."""
    self_test_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    """λ: weight of the self-generated-test pass rate in a code child's value (paper's
    self-consistency term; the remainder is the model's own score)."""
    num_internal_tests: int = Field(default=2, ge=0)
    """Self-generated tests on code (the LATS HumanEval setting: 2)."""
    max_depth: int = Field(default=7, ge=1)
    """Deepest trajectory on QA/agentic tasks (HotpotQA: 7)."""
    rollout_depth: int = Field(default=4, ge=0)
    """Most actions in one simulation (HotpotQA: 4)."""
    max_reflections: int = Field(default=3, ge=0)
    """Most recent reflections shown to expansions (paper: 3)."""
    stop_value: float = 1.0
    """Stop when a terminal's reward (self-evaluation in [0, 1], or the oracle) reaches this."""
    branching: BranchMode = "snapshot"
    """How a node gets its sandbox state: snapshot/restore forks, or replay of its actions."""
    max_tokens: int | None = 1024
    """Cap on each reply."""


@dataclass
class Node:
    """A state of the search tree."""

    parent: Node | None = None
    depth: int = 0
    lines: list[str] = field(default_factory=list)
    """Code: [program]. QA/agentic: the transcript."""
    program: str | None = None
    answer: str | None = None
    terminal: bool = False
    reward: float = 0.0
    """Evaluation of this node (a child's value, or a terminal's reward)."""
    value: float = 0.0
    """Mean backpropagated reward (the evaluation until first visited)."""
    visits: int = 0
    children: list[Node] = field(default_factory=list)
    report: TestReport | None = None
    state: NodeState = field(default_factory=NodeState)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def uct(self, c: float) -> float:
        if self.visits == 0 or self.parent is None:
            return self.value
        return self.value + c * math.sqrt(math.log(max(self.parent.visits, 1)) / self.visits)


def backpropagate(node: Node | None, reward: float) -> None:
    """Add one visit with ``reward`` to ``node`` and every ancestor (running means)."""
    while node is not None:
        node.visits += 1
        node.value += (reward - node.value) / node.visits
        node = node.parent


def select(root: Node, c: float) -> Node:
    """Descend by UCT to a leaf, avoiding terminal and exhausted subtrees."""
    node = root
    while node.children:
        open_ = [ch for ch in node.children if not ch.terminal]
        if not open_:
            node.terminal = True  # every child is finished: treat this subtree as done
            return node
        node = max(open_, key=lambda ch: ch.uct(c))
    return node


@register("scaffold", "lats")
class Lats:
    """Monte Carlo tree search with model values, self-tests and reflections."""

    name: ClassVar[str] = "lats"
    Params: ClassVar[type[ScaffoldParams]] = LatsParams

    def __init__(self, params: LatsParams) -> None:
        self.params = params
        self.reflections: list[str] = []

    async def _gen(
        self,
        ctx: EpisodeContext,
        msgs: list[Message],
        role: str,
        n: int = 1,
        temperature: float | None = None,
    ) -> list[str]:
        resp = await ctx.model.generate(
            GenerateRequest(
                messages=msgs,
                role=role,
                n=n,
                max_tokens=self.params.max_tokens,
                temperature=self.params.temperature if temperature is None else temperature,
                stop=parsing.ACT_STOP if role == "act" else [],
            )
        )
        return [ch.text for ch in resp.choices]

    async def _model_score(self, ctx: EpisodeContext, what: str, body: str) -> float:
        system = (
            f"Task:\n{prompts.task_text(ctx.task)}\n\nRate how likely the {what} below is to be "
            "correct and complete, from 1 (hopeless) to 10 (certainly right). Reason briefly, "
            "then end with the number."
        )
        out = await self._gen(
            ctx,
            [Message(role="system", content=system), Message(role="user", content=body)],
            "value",
            temperature=0.0,
        )
        return parsing.parse_score(out[0]) or 0.0

    async def _reflect(self, ctx: EpisodeContext, attempt: str, feedback: str) -> None:
        text = (
            f"{prompts.task_text(ctx.task)}\n\nAn attempt that failed:\n{attempt}\n\n{feedback}\n\n"
            "In a few sentences, say why it failed and what to do differently."
        )
        out = await self._gen(ctx, prompts.user(text), "reflect", temperature=0.0)
        self.reflections.append(out[0].strip() or "(empty reflection)")
        ctx.metrics["reflections"] = len(self.reflections)

    def _lessons(self) -> str:
        recent = (
            self.reflections[-self.params.max_reflections :] if self.params.max_reflections else []
        )
        return (
            "\n".join(["", "Reflections on earlier failed attempts:", *(f"- {r}" for r in recent)])
            if recent
            else ""
        )

    async def run(self, ctx: EpisodeContext) -> str | None:
        self.reflections = []
        ctx.metrics["iterations"] = 0
        if ctx.task.kind == "code" and ctx.task.code is not None:
            return await self._run_code(ctx)
        br = Brancher(ctx, self.params.branching)
        try:
            return await self._run_agent(ctx, br)
        finally:
            await br.close_all()

    # -- code ------------------------------------------------------------------------------
    async def _evaluate_program(
        self, ctx: EpisodeContext, node: Node, tests: list[str], with_model: bool
    ) -> None:
        assert node.program is not None
        node.report = await run_tests(ctx.env, node.program, tests)
        frac = node.report.fraction
        if with_model:
            lam = self.params.self_test_weight
            score = await self._model_score(ctx, "program", f"```python\n{node.program}\n```")
            node.reward = lam * frac + (1 - lam) * score
        else:
            node.reward = frac
        node.value = node.reward

    async def _run_code(self, ctx: EpisodeContext) -> str | None:
        p = self.params
        assert ctx.task.code is not None
        k_iters = p.iterations or 8
        c = 1.0 if p.exploration is None else p.exploration
        visible = list(ctx.task.code.visible_tests)
        generated = await generate_tests(ctx, p.num_internal_tests) if p.num_internal_tests else []
        tests = visible + [t for t in generated if t not in visible]
        ctx.metrics["internal_tests"] = len(tests)
        nodes: list[Node] = []

        def best() -> Node | None:
            done = [n for n in nodes if n.program is not None and n.report is not None]
            return max(
                done, key=lambda n: (n.report.fraction if n.report else 0.0, n.reward), default=None
            )

        async def accept(node: Node) -> bool:
            nodes.append(node)
            b = best()
            ctx.candidate(b.program if b else None)
            if ctx.oracle is not None:
                return (await ctx.oracle.score(node.program) or 0.0) >= p.stop_value
            return node.report is not None and node.report.all_passed and bool(tests)

        first = await self._gen(
            ctx,
            prompts.user(f"{prompts.task_text(ctx.task)}\n\n{prompts.answer_format(ctx.task)}"),
            "answer",
            temperature=0.0,
        )
        root = Node(program=parsing.extract_submission(first[0], ctx.task))
        if root.program is not None:
            await self._evaluate_program(ctx, root, tests, with_model=False)
            if await accept(root):
                return root.program
            await self._reflect(
                ctx,
                f"```python\n{root.program}\n```",
                root.report.feedback() if root.report else "",
            )
        backpropagate(root, root.reward)
        for k in range(k_iters):
            ctx.check_time()
            ctx.metrics["iterations"] = k + 1
            leaf = select(root, c)
            if leaf.terminal:
                break
            outs = await self._gen(
                ctx, prompts.user(self._code_prompt(ctx, leaf)), "answer", n=p.n_children
            )
            for out in outs:
                prog = parsing.extract_submission(out, ctx.task)
                child = Node(parent=leaf, depth=leaf.depth + 1, program=prog)
                leaf.children.append(child)
                if prog is None:
                    child.terminal = True  # no code: a dead end, valued 0
                    backpropagate(child, 0.0)
                    continue
                await self._evaluate_program(ctx, child, tests, with_model=True)
                if await accept(child):
                    return prog
                if child.report is not None and not child.report.all_passed:
                    await self._reflect(ctx, f"```python\n{prog}\n```", child.report.feedback())
                backpropagate(child, child.reward)
        b = best()
        return b.program if b else None

    def _code_prompt(self, ctx: EpisodeContext, leaf: Node) -> str:
        parts = [prompts.task_text(ctx.task)]
        if leaf.program is not None:
            parts += ["", "A previous implementation:", f"```python\n{leaf.program.rstrip()}\n```"]
            if leaf.report is not None:
                parts += ["", leaf.report.feedback()]
        return "\n".join([*parts, self._lessons(), "", prompts.answer_format(ctx.task)])

    # -- QA and agentic --------------------------------------------------------------------
    def _act_messages(self, ctx: EpisodeContext, node: Node) -> list[Message]:
        user = prompts.task_text(ctx.task) + self._lessons()
        msgs = [
            Message(role="system", content=system_prompt(ctx.task)),
            Message(role="user", content=user),
        ]
        if node.lines:
            msgs.append(Message(role="user", content="Trajectory so far:\n" + node.text))
        return msgs

    async def _child(self, ctx: EpisodeContext, parent: Node, text: str, br: Brancher) -> Node:
        tools = sorted({*ctx.task.tools, "submit"})
        child = Node(parent=parent, depth=parent.depth + 1, state=NodeState(parent.state.actions))
        try:
            thought, action = parse_action(text, tools)
        except ParseError as e:
            child.lines = [*parent.lines, f"Observation: {e}"]
            return child
        head = [f"Thought: {thought}"] if thought else []
        if action.tool == "submit":
            child.answer = action.input.strip() or None
            child.terminal = True
            child.lines = [*parent.lines, *head, f"Action: submit: {action.input}"]
            return child
        env = await br.child(parent.state)
        step = await env.run(action, thought)
        child.state = NodeState([*parent.state.actions, action], await br.keep(env))
        child.lines = [
            *parent.lines,
            *head,
            f"Action: {action.tool}: {action.input}",
            f"Observation: {step.observation[:1000]}",
        ]
        if child.depth >= self.params.max_depth:
            child.terminal = True
        return child

    async def _terminal_reward(self, ctx: EpisodeContext, node: Node) -> float:
        if node.answer is None:
            return 0.0
        if ctx.oracle is not None:
            return await ctx.oracle.score(node.answer) or 0.0
        return await self._model_score(
            ctx, "final answer", f"{node.text}\n\nFinal answer: {node.answer}"
        )

    async def _run_agent(self, ctx: EpisodeContext, br: Brancher) -> str | None:
        p = self.params
        k_iters = p.iterations or 30
        c = math.sqrt(2) if p.exploration is None else p.exploration
        root = Node()
        terminals: list[Node] = []

        def note(node: Node) -> None:
            terminals.append(node)
            top = max(
                (t for t in terminals if t.answer is not None), key=lambda t: t.reward, default=None
            )
            if top is not None:
                ctx.candidate(top.answer)

        for k in range(k_iters):
            ctx.check_time()
            ctx.metrics["iterations"] = k + 1
            leaf = select(root, c)
            if leaf.terminal:
                break
            outs = await self._gen(ctx, self._act_messages(ctx, leaf), "act", n=p.n_children)
            for out in dict.fromkeys(outs):
                leaf.children.append(await self._child(ctx, leaf, out, br))
            for child in leaf.children:
                if child.terminal and child.answer is not None:
                    child.reward = await self._terminal_reward(ctx, child)
                    note(child)
                else:
                    child.reward = await self._model_score(ctx, "trajectory", child.text)
                child.value = child.reward
            # An expanded leaf is never expanded again: its sandbox copy can go.
            await br.discard(leaf.state.env)
            leaf.state.env = None
            best = max(leaf.children, key=lambda ch: ch.reward)
            end, reward = await self._rollout(ctx, best, br, note)
            backpropagate(end, reward)
            if end.terminal and end.answer is not None:
                if reward >= p.stop_value:
                    break
                await self._reflect(ctx, end.text, "The final answer was judged wrong.")
        done = [t for t in terminals if t.answer is not None]
        if not done:
            return ctx.best
        top = max(done, key=lambda t: t.reward)
        ctx.candidate(top.answer)
        await br.adopt(top.state)
        return top.answer

    async def _rollout(
        self, ctx: EpisodeContext, node: Node, br: Brancher, note: Callable[[Node], None]
    ) -> tuple[Node, float]:
        """Simulate from ``node`` with single samples; returns the last node and its reward."""
        reward = node.reward
        for _ in range(self.params.rollout_depth):
            if node.terminal:
                break
            ctx.check_time()
            out = await self._gen(ctx, self._act_messages(ctx, node), "act")
            child = await self._child(ctx, node, out[0], br)
            node.children.append(child)
            await br.discard(node.state.env)
            node.state.env = None
            node = child
            if node.terminal and node.answer is not None:
                node.reward = reward = await self._terminal_reward(ctx, node)
                node.value = reward
                note(node)
        return node, reward
