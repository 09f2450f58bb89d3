"""lats on QA/agentic tasks, against the paper's algorithm: UCT with an exploration bonus
for unvisited children, backtracking out of exhausted subtrees, K iterations, valued
n-sample simulations, whole-path backpropagation."""

from __future__ import annotations

import math
import re

from ptebench.models.base import Choice, GenerateRequest, GenerateResponse
from ptebench.models.meter import MeteredModel, Trace
from ptebench.records import Limits, Usage
from ptebench.sandbox.base import SandboxSpec
from ptebench.sandbox.local import LocalSandbox
from ptebench.scaffolds.base import Environment, EpisodeContext
from ptebench.scaffolds.lats import Lats, LatsParams, Node, backpropagate, select
from tests.scaffolds import kit
from tests.scaffolds.kit import play


def test_uct_is_the_papers_formula_with_a_bonus_for_unvisited_children() -> None:
    c = math.sqrt(2)
    root = Node(visits=4)
    a = Node(parent=root, value=0.5, visits=3)
    b = Node(parent=root, value=0.3)  # valued by its expansion, never simulated
    root.children = [a, b]
    assert a.uct(c) == 0.5 + c * math.sqrt(math.log(4) / 3)
    assert b.uct(c) == 0.3 + c * math.sqrt(math.log(4) / 1)
    # the lower-valued but unvisited sibling is explored (by value alone, a would win)
    assert select(root, c) is b


def test_select_backtracks_out_of_an_exhausted_subtree() -> None:
    root = Node(visits=3)
    a = Node(parent=root, value=0.9, visits=2)
    b = Node(parent=root, value=0.1, visits=1)
    root.children = [a, b]
    a.children = [Node(parent=a, terminal=True, value=0.2), Node(parent=a, terminal=True)]
    b1 = Node(parent=b, value=0.4)
    b.children = [b1]
    assert select(root, 1.0) is b1  # a's children are all final: try elsewhere, do not stop
    assert a.exhausted and not root.exhausted
    b1.terminal = True
    assert select(root, 1.0) is None and root.exhausted


def test_backpropagation_reaches_the_root_from_the_simulation_end() -> None:
    root = Node()
    child = Node(parent=root, value=0.8)
    sim = Node(parent=Node(parent=child))  # simulated nodes: not in the tree, on the path
    root.children = [child]
    backpropagate(sim, 0.5)
    backpropagate(child, 0.0)
    assert (root.visits, child.visits) == (2, 2)
    assert root.value == child.value == 0.25


class Explorer:
    """A model that never answers: every sample is a new shell command ``echo <k>``; it
    rates a trajectory (k mod 10) + 1 out of 10 by the last command it shows."""

    def __init__(self) -> None:
        self.k = 0
        self.requests: list[GenerateRequest] = []
        self.scores: dict[str, int] = {}

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        self.requests.append(request)
        texts: list[str] = []
        for _ in range(request.n):
            if "Rate how likely" in request.messages[0].content:
                k = last_echo(request.messages[-1].content)
                texts.append(f"I would say {k % 10 + 1}")
            else:
                self.k += 1
                texts.append(f"Thought: try {self.k}\nAction: bash: echo {self.k}")
        return GenerateResponse(
            choices=[Choice(text=t) for t in texts], usage=Usage(prompt_tokens=1, completion_tokens=1)
        )


def last_echo(text: str) -> int:
    found = re.findall(r"Action: bash: echo (\d+)", text)
    return int(found[-1]) if found else -1


async def explore(params: dict[str, object]) -> tuple[EpisodeContext, Explorer]:
    inst = next(i for i in kit.instances() if i.id == "agent")
    limits, trace = Limits(), Trace()
    model = Explorer()
    box = LocalSandbox.create(SandboxSpec())
    try:
        await kit.TinyTask().setup(box, inst)
        ctx = EpisodeContext(
            task=inst.view(), model=MeteredModel("x", model, None, trace, limits),
            env=Environment(box, list(inst.tools), limits, trace), limits=limits, trace=trace,
            seed=0,
        )
        await Lats(LatsParams.model_validate(params)).run(ctx)
    finally:
        await box.close()
    return ctx, model


def _depth(req: GenerateRequest) -> int:
    """Actions in the trajectory an act request continues (0 at the root)."""
    _, _, trajectory = req.messages[-1].content.partition("Trajectory so far:")
    return len(re.findall(r"^Action:", trajectory, re.M))


async def test_agentic_search_runs_k_iterations_and_expands_siblings() -> None:
    k, n, d, r = 5, 3, 2, 2
    params = {"iterations": k, "n_children": n, "rollout_depth": d, "rollout_samples": r,
              "max_depth": 20}
    ctx, model = await explore(params)
    assert ctx.metrics["iterations"] == k and ctx.metrics["expansions"] == k
    assert "exhausted" not in ctx.metrics
    # calls an iteration when no answer is ever given, as the reference implementation
    # (lapisrocks/LanguageAgentTreeSearch, hotpot/lats.py) makes them: expand_node samples the
    # n children in one call; evaluate_node values each child with its own call (get_values);
    # each rollout step samples r states in one call and values each in its own call.
    # Its rollout runs to max_depth; ours runs d steps (rollout_depth). So 1 + n + d(1 + r).
    assert len(ctx.trace.calls) == k * (1 + n + d * (1 + r))
    expansions = [q for q in model.requests if q.role == "act" and q.n == n]
    assert len(expansions) == k
    # the root is expanded once, then more than one of its children: siblings are explored
    assert sum(1 for q in expansions if _depth(q) == 1) >= 2
    assert ctx.trace.steps and {s.branch for s in ctx.trace.steps} - {""}


async def test_simulation_values_its_samples_and_follows_the_best() -> None:
    params = {"iterations": 2, "n_children": 2, "rollout_depth": 2, "rollout_samples": 3,
              "max_depth": 20}
    _, model = await explore(params)
    reqs = model.requests
    acts = [i for i, q in enumerate(reqs) if q.role == "act"]
    for a, b in zip(acts, acts[1:], strict=False):
        if reqs[a].n != 3 or reqs[b].n != 3:
            continue  # only consecutive simulation steps
        values = reqs[a + 1 : b]
        assert len(values) == 3 and all(q.role == "value" for q in values)
        # the next step continues the sample the model rated highest
        best = max(values, key=lambda q: last_echo(q.messages[-1].content) % 10)
        assert last_echo(reqs[b].messages[-1].content) == last_echo(best.messages[-1].content)


async def test_qa_search_stops_when_every_path_is_tried() -> None:
    # tiny/qa has no tool but submit: the root's children are all final answers
    outs = ["Thought: a\nAction: submit: 41", "Thought: b\nAction: submit: 42", "3", "6", "lesson"]
    played = await play("lats", {"n_children": 2, "iterations": 30}, outs, "qa")
    m = played.ctx.metrics
    assert m["exhausted"] is True and m["iterations"] == 1
    assert played.submission == "42"  # the better self-evaluated answer
    assert sum(r.n for r in played.model.requests) == len(outs)  # every output used, no more
