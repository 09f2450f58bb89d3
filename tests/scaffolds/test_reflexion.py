"""reflexion: trial → self-evaluation → reflection, call bound 2·max_iters, roles in order."""

from __future__ import annotations

from pathlib import Path

from ptebench.records import Limits
from tests.scaffolds import formulas, kit
from tests.scaffolds.kit import ADD_BAD, ADD_OK, play, roles, run_one

CODE = "```python\n{}```"


def test_reflexion_code_fixes_after_reflection(tmp_path: Path) -> None:
    outs = ["assert add(2, 2) == 4", CODE.format(ADD_BAD), "I subtracted; add instead.", CODE.format(ADD_OK)]
    ep = run_one(tmp_path, "reflexion", outs, "code")
    assert roles(ep) == formulas.reflexion(trials=2, code=True)
    assert ep.metrics["internal_tests"] == 2 and ep.metrics["self_passed"] is True
    assert len(ep.steps) == 2  # each implementation ran the tests in the sandbox
    assert "Tests failed" in ep.steps[0].observation or "output" in ep.steps[0].observation
    assert ep.submission is not None and "a + b" in ep.submission


async def test_reflexion_code_next_trial_sees_feedback_and_lessons() -> None:
    outs = ["assert add(2, 2) == 4", CODE.format(ADD_BAD), "LESSON-1", CODE.format(ADD_OK)]
    played = await play("reflexion", {}, outs, "code")
    second = played.model.requests[3].text()
    assert "LESSON-1" in second and "return a - b" in second and "output: 0" in second


def test_reflexion_code_call_bound(tmp_path: Path) -> None:
    bad = [CODE.format(ADD_BAD), "lesson"]
    outs = ["assert add(2, 2) == 4", *bad, *bad, CODE.format(ADD_BAD)]
    ep = run_one(tmp_path, {"name": "reflexion", "params": {"max_iters": 3}}, outs, "code")
    assert len(ep.calls) == 2 * 3  # 1 test_gen + 3 implementations + 2 reflections
    assert roles(ep) == formulas.reflexion(trials=3, code=True)
    assert ep.metrics["self_passed"] is False and ep.submission is not None


def test_reflexion_qa_uses_self_verdict(tmp_path: Path) -> None:
    outs = ["Answer: 41", "impossible", "I multiplied wrong.", "Answer: 42", "sure"]
    ep = run_one(tmp_path, "reflexion", outs, "qa")
    assert roles(ep) == formulas.reflexion(trials=2, code=False)
    assert ep.metrics["actor"] == "cot" and ep.submission == "42"


async def test_reflexion_agentic_react_actor_gets_lessons() -> None:
    outs = [
        "Thought: guess\nAction: submit: apple", "impossible", "LESSON-2: read the file first.",
        "Thought: read\nAction: bash: cat word.txt", "Thought: ok\nAction: submit: banana", "sure",
    ]
    played = await play("reflexion", {}, outs, "agent")
    assert played.submission == "banana" and played.ctx.metrics["actor"] == "react"
    assert [r.role for r in played.model.requests] == ["act", "value", "reflect", "act", "act", "value"]
    assert "LESSON-2" in played.model.requests[3].text()


async def test_reflexion_oracle_replaces_self_evaluation() -> None:
    kit.SCORER_CALLS.clear()
    outs = ["Answer: 41", "lesson", "Answer: 42"]
    played = await play("reflexion", {"oracle_feedback": True}, outs, "qa")
    assert played.submission == "42"
    assert [r.role for r in played.model.requests] == ["answer", "reflect", "answer"]
    assert played.ctx.oracle is not None and played.ctx.oracle.calls == 2 == len(kit.SCORER_CALLS)


async def test_reflexion_token_budget_keeps_best() -> None:
    outs = ["assert add(2, 2) == 4", CODE.format(ADD_OK.replace("a + b", "a + b  # " + "pad " * 40))] + ["x"] * 5
    played = await play("reflexion", {}, outs, "code", limits=Limits(tokens=150))
    # the first implementation passed its tests before the budget ran out
    assert played.submission is not None and "a + b" in played.submission
    outs = ["assert add(2, 2) == 4", CODE.format(ADD_BAD), "lesson " * 80, CODE.format(ADD_OK)]
    played = await play("reflexion", {}, outs, "code", limits=Limits(tokens=200))
    assert played.limit is not None and played.limit.which == "tokens"
    assert played.submission is not None and "a - b" in played.submission  # best so far kept
