"""lats (Language Agent Tree Search, Zhou et al. 2024): Monte Carlo tree search over
episode states, with the model as policy, value function and critic.

Each iteration: **select** a leaf by UCT, backtracking out of exhausted subtrees;
**expand** it into n children (one request with n samples at temperature 0.8);
**evaluate** each child; on QA/agentic tasks **simulate** from the best child;
**backpropagate** the reward along the whole path to the root; **reflect** on failed
terminals and feed up to 3 reflections into later expansions and values.

Code (the HumanEval setting): nodes are programs. Tests are written once (role
``test_gen``; visible examples added); the root program is role ``answer``; children are n
samples of role ``answer`` that see the parent's program, its test feedback and the
reflections. A child's value is λ·(fraction of self-generated tests passed) + (1 − λ)·(the
model's own score, role ``value``, 1–10 scaled) — the paper's self-consistency term the
reference code dropped. Each failing child gets one reflection (role ``reflect``), once:
the reference code's quadratic re-reflection is not reproduced.
Calls ≈ 3 + K(1 + 2n) (= 91 at K = 8, n = 5); fewer when a child passes every self-test
(the search then stops) or children pass.

QA / agentic (the HotpotQA setting of the reference, LanguageAgentTreeSearch
``hotpot/lats.py``): nodes are trajectories of Thought/Action/Observation; children are the
distinct actions among n samples of role ``act``, each acted in its own sandbox fork
(ptebench.scaffolds.branching) and valued (role ``value``, ``n_evaluate`` samples; a final
answer's value is its self-evaluated reward). The simulation is valued too: each of its
steps samples ``rollout_samples`` next steps, values them, and follows the best, until a
final answer (its reward is backpropagated) or ``rollout_depth`` steps (reward 0: no answer
reached — the reference's −1 on the same [0, 1] scale of our rewards is 0); simulated nodes
stay out of the tree, so the node simulated from is expanded for real later. The search
stops after K iterations, when a final answer's reward reaches ``stop_value``, or when
every path from the root is exhausted — not when one subtree is.
Per iteration, at most: 1 expansion + n values + rollout_depth × (1 + rollout_samples)
+ 1 reflection calls (with ``n_evaluate`` samples per value request).

Without ``oracle_feedback`` rewards are the model's own evaluations and self-tests. With
it, terminal rewards come from the hidden scorer and the search stops at the first pass
(the published HumanEval/HotpotQA behaviour).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pydantic import Field

from ptebench.models.base import GenerateRequest, Message
from ptebench.records import Action
from ptebench.registry import register
from ptebench.scaffolds import parsing, prompts
from ptebench.scaffolds.base import EpisodeContext, ScaffoldParams
from ptebench.scaffolds.best_of_n import generate_tests
from ptebench.scaffolds.branching import Brancher, BranchMode, NodeState
from ptebench.scaffolds.codeexec import TestReport, run_tests
from ptebench.scaffolds.parsing import ParseError
from ptebench.scaffolds.react import (
    choice_actions,
    native_system_prompt,
    system_prompt,
    tool_specs,
    uses_native,
)


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
    """Most steps in one simulation (HotpotQA: 4; the reference caps the simulation at
    absolute depth 4, ptebench counts from the node simulated, within ``max_depth``)."""
    rollout_samples: int | None = Field(default=None, ge=1)
    """Samples per simulation step, each valued, the best followed. None: 5 (the reference)
    when the episode has no sandbox; 1 when it has one — there every sample acts in its own
    sandbox fork (a snapshot and a container each) and spends a step of the episode's
    budget, where the reference's Wikipedia API made samples nearly free."""
    n_evaluate: int = Field(default=1, ge=1)
    """Value samples per QA/agentic node, averaged (HotpotQA run: 1)."""
    max_reflections: int = Field(default=3, ge=0)
    """Most recent reflections shown to expansions (paper: 3)."""
    stop_value: float = 1.0
    """Stop when a terminal's reward (self-evaluation in [0, 1], or the oracle) reaches this."""
    branching: BranchMode = "snapshot"
    """How a node gets its sandbox state: snapshot/restore forks, or replay of its actions."""
    max_tokens: int | None = 1024
    """Cap on each reply."""
    tool_calling: Literal["auto", "text", "native"] = "auto"
    """QA/agentic expansions: actions as text, or as native tool calls (one per child; a
    reply's further parallel calls are refused, a node being one step). auto: native when
    the model takes native tools. The trajectory is shown as text either way, so every
    request is a plain chat history valid for every API."""


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
    exhausted: bool = False
    """Every child is terminal or exhausted: nothing left to try below this node."""
    report: TestReport | None = None
    state: NodeState = field(default_factory=NodeState)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def uct(self, c: float) -> float:
        """UCT(s) = V(s) + c·√(ln N(parent) / N(s)) (the LATS paper, eq. 1), with V the mean
        backpropagated reward. An unvisited node (N = 0, where the formula is undefined)
        counts as visited once: it gets the exploration bonus of a once-visited sibling on
        top of the value its expansion measured, so siblings left behind by a rollout are
        still explored (the reference code scores an unvisited node by its value alone)."""
        if self.parent is None:
            return self.value
        n_parent = max(self.parent.visits, 1)
        return self.value + c * math.sqrt(math.log(n_parent) / max(self.visits, 1))

    @property
    def open(self) -> bool:
        """Can still be selected: neither a final state nor a fully explored subtree."""
        return not (self.terminal or self.exhausted)


def backpropagate(node: Node | None, reward: float) -> None:
    """Add one visit with ``reward`` to ``node`` and every ancestor up to the root (running
    means): the whole path from the simulation's end, as the reference does."""
    while node is not None:
        node.visits += 1
        node.value += (reward - node.value) / node.visits
        node = node.parent


def select(root: Node, c: float) -> Node | None:
    """Descend by UCT to a leaf to expand, backtracking out of exhausted subtrees.

    A node whose children are all terminal or exhausted is marked exhausted and the descent
    resumes from its parent (the reference removes such a node from its parent; marking
    keeps the tree for the record). Returns None when the root itself is exhausted: every
    path has been tried and the search is over.
    """
    node = root
    while node.children:
        open_ = [ch for ch in node.children if ch.open]
        if not open_:
            node.exhausted = True
            if node.parent is None:
                return None
            node = node.parent
            continue
        node = max(open_, key=lambda ch: ch.uct(c))
    return None if node.terminal else node


@register("scaffold", "lats")
class Lats:
    """Monte Carlo tree search with model values, self-tests and reflections."""

    name: ClassVar[str] = "lats"
    Params: ClassVar[type[ScaffoldParams]] = LatsParams

    def __init__(self, params: LatsParams) -> None:
        self.params = params
        self.reflections: list[str] = []
        self._terminals: list[Node] = []

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

    async def _model_score(
        self, ctx: EpisodeContext, what: str, body: str, n: int = 1
    ) -> float:
        """The model's 1–10 rating of ``body``, scaled to [0, 1] and averaged over ``n``
        samples (one request). Failed attempts and their reflections are shown, as the
        reference's value prompt does, so the value function learns from them too."""
        system = (
            f"Task:\n{prompts.task_text(ctx.task)}{self._lessons()}\n\nRate how likely the "
            f"{what} below is to be correct and complete, from 1 (hopeless) to 10 (certainly "
            "right). Reason briefly, then end with the number."
        )
        out = await self._gen(
            ctx,
            [Message(role="system", content=system), Message(role="user", content=body)],
            "value",
            n=n,
            temperature=0.0 if n == 1 else self.params.temperature,
        )
        scores = [parsing.parse_score(o) or 0.0 for o in out]
        return sum(scores) / len(scores) if scores else 0.0

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
            if leaf is None:
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
    def _act_messages(self, ctx: EpisodeContext, node: Node, native: bool) -> list[Message]:
        user = prompts.task_text(ctx.task) + self._lessons()
        if node.lines:
            # one user turn: chat templates such as Gemma's require strict alternation
            user += "\n\nTrajectory so far:\n" + node.text
        system = native_system_prompt(ctx.task) if native else system_prompt(ctx.task)
        return [Message(role="system", content=system), Message(role="user", content=user)]

    async def _value_of(self, ctx: EpisodeContext, node: Node) -> float:
        """A node's evaluation: the self-evaluated (or oracle) reward of a final answer, the
        model's score of a partial trajectory otherwise (``n_evaluate`` samples, averaged)."""
        if node.terminal:
            if node.answer is None:
                return 0.0
            if ctx.oracle is not None:
                return await ctx.oracle.score(node.answer) or 0.0
            body = f"{node.text}\n\nFinal answer: {node.answer}"
            return await self._model_score(ctx, "final answer", body, self.params.n_evaluate)
        return await self._model_score(ctx, "trajectory", node.text, self.params.n_evaluate)

    async def _children(
        self, ctx: EpisodeContext, parent: Node, n: int, br: Brancher
    ) -> list[Node]:
        """``n`` sampled next steps from ``parent`` (one request), one child per distinct
        action, each acted in its own copy of the parent's sandbox, each evaluated."""
        native = uses_native(ctx.model.native_tools, self.params.tool_calling)
        resp = await ctx.model.generate(
            GenerateRequest(
                messages=self._act_messages(ctx, parent, native),
                role="act",
                n=n,
                max_tokens=self.params.max_tokens,
                temperature=self.params.temperature,
                tools=tool_specs(ctx.task) if native else [],
            )
        )
        tools = sorted({*ctx.task.tools, "submit"})
        seen: set[str] = set()
        children: list[Node] = []
        for choice in resp.choices:
            thought: str | None
            action: Action | ParseError
            dropped = 0
            try:
                thought, actions = choice_actions(choice, tools)
                _, action = actions[0]  # a node is one step: further parallel calls are refused
                dropped = len(actions) - 1
                key = (
                    f"{action.tool}\0{action.input.strip()}"
                    if isinstance(action, Action)
                    else str(action)
                )
            except ParseError as e:
                thought, action, key = None, e, choice.text.strip()
            if key in seen:
                continue  # the reference keeps one child per distinct (thought, action)
            seen.add(key)
            child = await self._child(ctx, parent, thought, action, br)
            if dropped:  # the refusal is part of the trajectory the model sees next
                child.lines.append(f"(not run: {dropped} more tool call(s); one action per step)")
            children.append(child)
        for child in children:
            child.reward = child.value = await self._value_of(ctx, child)
            if child.terminal and child.answer is not None:
                self._note(ctx, child)
        return children

    async def _child(
        self,
        ctx: EpisodeContext,
        parent: Node,
        thought: str | None,
        action: Action | ParseError,
        br: Brancher,
    ) -> Node:
        child = Node(parent=parent, depth=parent.depth + 1, state=NodeState(parent.state.actions))
        if isinstance(action, ParseError):
            child.lines = [*parent.lines, f"Observation: {action}"]
            child.terminal = child.depth >= self.params.max_depth
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
        child.terminal = child.depth >= self.params.max_depth
        return child

    def _note(self, ctx: EpisodeContext, node: Node) -> None:
        """Keep a final answer; the best-rewarded one so far is what a limit scores."""
        self._terminals.append(node)
        top = max(self._terminals, key=lambda t: t.reward)
        ctx.candidate(top.answer)

    async def _run_agent(self, ctx: EpisodeContext, br: Brancher) -> str | None:
        p = self.params
        k_iters = p.iterations or 30
        c = math.sqrt(2) if p.exploration is None else p.exploration
        root = Node()
        self._terminals = []
        ctx.metrics["expansions"] = 0
        for k in range(k_iters):
            ctx.check_time()
            leaf = select(root, c)
            if leaf is None:
                ctx.metrics["exhausted"] = True  # every path from the root has been tried
                break
            ctx.metrics["iterations"] = k + 1
            leaf.children = await self._children(ctx, leaf, p.n_children, br)
            ctx.metrics["expansions"] = int(ctx.metrics["expansions"] or 0) + 1
            # An expanded node is never expanded again: its sandbox copy can go.
            await br.discard(leaf.state.env)
            leaf.state.env = None
            if not leaf.children:  # the provider returned no sample: nothing to follow
                leaf.exhausted = True
                continue
            best = max(leaf.children, key=lambda ch: ch.value)
            end, reward = await self._rollout(ctx, best, br)
            backpropagate(end, reward)
            if end.terminal and end.answer is not None:
                if reward >= p.stop_value:
                    break
                await self._reflect(ctx, end.text, "The final answer was judged wrong.")
        if not self._terminals:
            return ctx.best
        top = max(self._terminals, key=lambda t: t.reward)
        ctx.candidate(top.answer)
        await br.adopt(top.state)
        return top.answer

    def _rollout_samples(self, ctx: EpisodeContext) -> int:
        if self.params.rollout_samples is not None:
            return self.params.rollout_samples
        return 1 if ctx.env.sandbox is not None else 5

    async def _rollout(self, ctx: EpisodeContext, node: Node, br: Brancher) -> tuple[Node, float]:
        """Simulate from ``node``: at each step sample ``rollout_samples`` next steps, value
        them and follow the best, until a final answer or ``rollout_depth`` steps.

        Returns the node the simulation ended on and the reward to backpropagate: a final
        answer's reward, else 0 (no answer reached: the worst reward). The simulated nodes
        are not added to the tree (as in the reference); their sandbox copies are closed.
        """
        if node.terminal:
            return node, node.reward if node.answer is not None else 0.0
        start = node
        opened: list[Node] = []
        try:
            for _ in range(self.params.rollout_depth):
                ctx.check_time()
                kids = await self._children(ctx, node, self._rollout_samples(ctx), br)
                opened += kids
                done = next((ch for ch in kids if ch.terminal and ch.answer is not None), None)
                if done is not None:
                    return done, done.reward
                node = max(kids, key=lambda ch: ch.value)
                if node.terminal:  # the depth limit: no answer within the trajectory budget
                    break
            return node, 0.0 if node is not start else node.value
        finally:
            for n in opened:
                await br.discard(n.state.env)
                n.state.env = None
