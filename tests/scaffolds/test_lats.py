"""lats: code call formula 3 + K(1 + 2n), λ-mixed values, stop at self-pass, oracle only
when flagged, and sibling branches that never see each other's files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ptebench import registry
from ptebench.sandbox.base import Sandbox, SandboxSpec
from ptebench.sandbox.local import LocalSandbox
from ptebench.scaffolds.lats import Node, backpropagate, select
from tests.scaffolds import formulas, kit
from tests.scaffolds.kit import ADD_BAD, ADD_OK, play, roles, run_one

ZERO = "```python\ndef add(a, b):\n    return 0\n```"
BAD = f"```python\n{ADD_BAD}```"
OK = f"```python\n{ADD_OK}```"


def test_lats_code_call_formula(tmp_path: Path) -> None:
    k, n = 2, 2
    per_iter = [ZERO, BAD, "3", "lesson", "2", "lesson"]  # expansion (n samples), value+reflect per child
    outs = ["assert add(2, 2) == 4", BAD, "root lesson", *per_iter * k]
    ep = run_one(tmp_path, {"name": "lats", "params": {"iterations": k, "n_children": n}}, outs, "code")
    assert len(ep.calls) == 3 + k * (1 + 2 * n)
    assert roles(ep) == formulas.lats_code(k, n)
    expansions = [c for c in ep.calls if c.role == "answer"][1:]
    assert [c.n for c in expansions] == [n] * k
    assert ep.metrics["iterations"] == k and ep.metrics["reflections"] == 1 + k * n
    # every program ran the self-tests in the sandbox: root + K·n children
    assert len(ep.steps) == 1 + k * n


def test_lats_code_stops_when_a_child_passes_its_self_tests(tmp_path: Path) -> None:
    outs = ["assert add(2, 2) == 4", BAD, "lesson", BAD, OK, "2", "lesson", "9"]
    ep = run_one(tmp_path, {"name": "lats", "params": {"n_children": 2}}, outs, "code")
    # iteration 1: the first child fails (value, reflect), the second passes (value): stop
    assert roles(ep) == formulas.lats_code(1, 2, failing_children=[1])
    assert ep.submission is not None and "a + b" in ep.submission and ep.oracle_calls == 0


def test_lats_code_oracle_only_when_flagged(tmp_path: Path) -> None:
    kit.SCORER_CALLS.clear()
    outs = ["assert add(2, 2) == 4", BAD, "lesson", BAD, OK, "2", "lesson", "9"]
    params = {"n_children": 2, "oracle_feedback": True}
    ep = run_one(tmp_path, {"name": "lats", "params": params}, outs, "code")
    assert ep.oracle_feedback and ep.oracle_calls == 3  # root, child 1, child 2 (accepted)
    assert len(kit.SCORER_CALLS) == 3 + 1


def test_uct_selection_and_backpropagation() -> None:
    root = Node()
    a, b = Node(parent=root, value=0.2), Node(parent=root, value=0.6)
    root.children = [a, b]
    assert select(root, 1.0) is b  # unvisited nodes score their value
    backpropagate(b, 0.0)
    backpropagate(a, 1.0)
    assert (root.visits, a.value, b.value) == (2, 1.0, 0.0)
    assert select(root, 1.0) is a
    b.terminal = a.terminal = True
    assert select(root, 1.0) is None and root.exhausted  # every path tried: the search ends


@asynccontextmanager
async def root_sandbox(backend: str) -> AsyncIterator[Sandbox]:
    """The episode's sandbox: local, or a real hardened Docker container."""
    if backend == "local":
        box = LocalSandbox.create(SandboxSpec())
        try:
            yield box
        finally:
            await box.close()
        return
    from tests.sandbox.conftest import docker_gate

    docker_gate()
    provider = registry.get("sandbox", "docker")()
    try:
        async with provider.acquire(SandboxSpec(), {"ptebench.test": "lats-branching"}) as box:
            yield box
    finally:
        await provider.aclose()


BACKENDS = [pytest.param("local"), pytest.param("docker", marks=pytest.mark.docker)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("branching", ["snapshot", "replay"])
async def test_lats_siblings_see_only_their_own_files(branching: str, backend: str) -> None:
    outs = [
        # iteration 1: two siblings write different files
        "Thought: a\nAction: bash: echo a > a.txt && ls", "Thought: b\nAction: bash: echo b > b.txt && ls",
        "8", "6",  # values: A is rolled out first
        "Thought: done\nAction: submit: apple", "1", "WRONG-FRUIT",  # rollout, terminal value, reflection
        # iteration 2: UCT moves to B; both samples identical → one child
        "Thought: look\nAction: bash: ls", "Thought: look\nAction: bash: ls",
        "5", "Thought: done\nAction: submit: banana", "9", "lesson",
    ]
    async with root_sandbox(backend) as root:
        params = {
            "iterations": 2, "n_children": 2, "rollout_depth": 1, "rollout_samples": 1,
            "branching": branching,
        }
        played = await play("lats", params, outs, "agent", sandbox=root)
        listing = (await root.exec("ls")).stdout.split()
    steps = played.ctx.trace.steps
    a_obs, b_obs, b1_obs = (s.observation.split() for s in steps)
    assert "a.txt" in a_obs and "b.txt" not in a_obs
    assert "b.txt" in b_obs and "a.txt" not in b_obs
    assert "b.txt" in b1_obs and "a.txt" not in b1_obs  # B's child inherits B's state only
    assert len({s.branch for s in steps}) == 3 and "" not in {s.branch for s in steps}
    assert [r.role for r in played.model.requests] == [
        "act", "value", "value", "act", "value", "reflect", "act", "value", "act", "value", "reflect",
    ]
    assert "WRONG-FRUIT" in played.model.requests[6].text()  # reflections reach later expansions
    assert played.submission == "banana"
    m = played.ctx.metrics
    assert m["branching"] == branching and m["forks"] == 3
    assert m["replayed_actions"] == (1 if branching == "replay" else 0)  # B's action, for B's child
    assert m["adopted_actions"] == 2
    # the root sandbox never saw the search; the chosen branch's actions were replayed into it
    assert "b.txt" in listing and "a.txt" not in listing


def test_lats_budget_stops_with_best_kept(tmp_path: Path) -> None:
    outs = ["assert add(2, 2) == 4", OK.replace("a + b", "b + a"), "x"] + ["y"] * 50
    ep = run_one(tmp_path, {"name": "lats", "params": {"n_children": 2}}, outs, "code", limits={"steps": 1})
    # root program passes → accepted at once, within one step
    assert ep.status == "ok" and ep.submission is not None and "b + a" in ep.submission
    outs = ["assert add(2, 2) == 4", BAD, "lesson", BAD, ZERO, "1"] + ["y"] * 50
    ep = run_one(tmp_path, {"name": "lats", "params": {"n_children": 2}}, outs, "code", limits={"steps": 2})
    assert ep.status == "limit" and "steps" in (ep.reason or "")
    assert ep.submission is not None and "a - b" in ep.submission
