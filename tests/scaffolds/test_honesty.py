"""No scaffold peeks: without oracle_feedback the hidden scorer is never consulted before
submission and nothing hidden reaches a prompt; every scaffold stops cleanly on a budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptebench.records import Limits
from ptebench.registry import get
from tests.scaffolds import kit
from tests.scaffolds.kit import SECRET, play, run_one

# One reply every role can parse: an action, an answer, a program, a verdict, a test.
UNIVERSAL = (
    "Thought: I will answer.\nAction: submit: 42\n"
    "```python\ndef add(a, b):\n    return a + b\n```\n"
    "assert add(1, 2) == 3\nsure\nAnswer: 1"
)
SMALL = {  # keep tree searches and big samples small: the point is honesty, not cost
    "majority": {"n": 3},
    "best_of_n": {"n": 2},
    "tot": {"steps": 2, "n_select": 2},
    "lats": {"iterations": 2, "n_children": 2},
    "reflexion": {"max_iters": 2},
}
SCAFFOLDS = ["direct", "cot", "majority", "best_of_n", "react", "reflexion", "tot", "lats"]
TASKS = ["qa", "code", "agent", "pack"]


def test_every_shipped_scaffold_is_covered() -> None:
    from ptebench.registry import names

    assert set(names("scaffold")) >= set(SCAFFOLDS)


@pytest.mark.parametrize("task_id", TASKS)
@pytest.mark.parametrize("scaffold", SCAFFOLDS)
async def test_no_oracle_and_no_hidden_text_in_prompts(scaffold: str, task_id: str) -> None:
    kit.SCORER_CALLS.clear()
    played = await play(scaffold, SMALL.get(scaffold, {}), [UNIVERSAL] * 400, task_id)
    assert played.limit is None
    assert kit.SCORER_CALLS == [] and played.ctx.oracle is None
    assert played.model.requests, "the scaffold made no model call"
    for r in played.model.requests:
        assert r.role in {"answer", "act", "propose", "value", "reflect", "test_gen", "vote"}
        assert SECRET not in r.text()
        assert "add(5, 5)" not in r.text()  # a hidden test
    for s in played.ctx.trace.steps:
        assert SECRET not in (s.action.input if s.action else "")


@pytest.mark.parametrize("scaffold", ["cot", "majority", "best_of_n", "react", "reflexion", "tot", "lats"])
def test_runner_scores_once_after_submission(tmp_path: Path, scaffold: str) -> None:
    kit.SCORER_CALLS.clear()
    ep = run_one(tmp_path, {"name": scaffold, "params": SMALL.get(scaffold, {})}, [UNIVERSAL] * 400, "code")
    assert ep.status == "ok" and not ep.oracle_feedback and ep.oracle_calls == 0
    assert [("code", ep.submission)] == kit.SCORER_CALLS


# A reply that acts (a shell command) and still parses for every role.
ACT = "Thought: look at the file.\nAction: bash: cat word.txt\n```python\nprint(1)\n```\nsure\n"
ACTING = ["react", "reflexion", "tot", "lats"]
"""Scaffolds that take environment steps; the others answer in text and take none."""


async def _unlimited(scaffold: str):
    played = await play(scaffold, SMALL.get(scaffold, {}), [ACT] * 400, "agent")
    assert played.limit is None
    return played.ctx.trace


@pytest.mark.parametrize("scaffold", SCAFFOLDS)
async def test_token_budgets_stop_cleanly(scaffold: str) -> None:
    """The budget is what the unlimited episode spent before its last call, so that call is
    refused (a one-call scaffold gets 0: its only call is refused): every case hits it."""
    full = await _unlimited(scaffold)
    tokens = [c.usage.total_tokens for c in full.calls]
    budget = sum(tokens[:-1])
    played = await play(scaffold, SMALL.get(scaffold, {}), [ACT] * 400, "agent",
                        limits=Limits(tokens=budget))
    assert played.limit is not None and played.limit.which == "tokens"
    spent = played.ctx.trace.calls
    assert [c.usage.total_tokens for c in spent] == tokens[:-1], "every call until the budget"
    assert sum(c.usage.total_tokens for c in spent) >= budget


@pytest.mark.parametrize("scaffold", ACTING)
async def test_step_budgets_stop_cleanly(scaffold: str) -> None:
    full = await _unlimited(scaffold)
    assert len(full.steps) >= 2, "the acting script must make the scaffold act"
    budget = len(full.steps) - 1
    played = await play(scaffold, SMALL.get(scaffold, {}), [ACT] * 400, "agent",
                        limits=Limits(steps=budget))
    assert played.limit is not None and played.limit.which == "steps"
    assert len(played.ctx.trace.steps) == budget


@pytest.mark.parametrize("scaffold", sorted(set(SCAFFOLDS) - set(ACTING)))
async def test_text_scaffolds_take_no_steps(scaffold: str) -> None:
    """Why they have no step-budget case: even a reply that asks to act runs nothing."""
    assert (await _unlimited(scaffold)).steps == []


def test_oracle_flag_is_a_param_of_every_scaffold() -> None:
    for name in SCAFFOLDS:
        assert "oracle_feedback" in get("scaffold", name).Params.model_fields
