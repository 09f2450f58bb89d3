"""Scaffolds inside scaffolds: reflexion takes any actor (lats, best_of_n, ...), an inner
answer survives a budget stop, and best_of_n/majority bring the chosen sample's sandbox
state back to the episode's sandbox (state- and file-scored tasks)."""

from __future__ import annotations

import pytest

from ptebench.errors import ConfigError, UserError
from ptebench.records import Limits
from ptebench.sandbox.base import SandboxSpec
from ptebench.sandbox.local import LocalSandbox
from ptebench.scaffolds.reflexion import ReflexionParams
from tests.scaffolds.kit import play


async def test_reflexion_wraps_lats() -> None:
    outs = [
        # trial 1: LATS expands the root into one distinct final answer, values it, reflects
        "Thought: a\nAction: submit: 41", "Thought: a\nAction: submit: 41", "2", "lats lesson",
        "impossible", "REFLEXION-LESSON: recompute the product.",  # reflexion judges, reflects
        # trial 2
        "Thought: b\nAction: submit: 42", "Thought: b\nAction: submit: 42", "9", "lats lesson 2",
        "sure",
    ]
    actor = {"name": "lats", "params": {"n_children": 2, "iterations": 5}}
    played = await play("reflexion", {"actor": actor}, outs, "qa")
    assert played.submission == "42"
    reqs = played.model.requests
    assert sum(r.n for r in reqs) == len(outs)
    m = played.ctx.metrics
    assert m["actor"] == "lats" and m["trials"] == 2 and m["self_passed"] is True
    assert isinstance(m["actor_metrics"], dict) and m["actor_metrics"]["exhausted"] is True
    second_expansion = [r for r in reqs if r.role == "act"][1]
    assert second_expansion.n == 2 and "REFLEXION-LESSON" in second_expansion.text()


async def test_reflexion_wraps_best_of_n() -> None:
    outs = [
        "Answer: 41", "Answer: 41", "impossible", "LESSON: 6 * 7 is not 41.",
        "Answer: 42", "Answer: 43", "Candidate 1 is right. Answer: 1", "sure",
    ]
    actor = {"name": "best_of_n", "params": {"n": 2, "inner": {"name": "cot"}}}
    played = await play("reflexion", {"actor": actor}, outs, "qa")
    assert played.submission == "42"
    reqs = played.model.requests
    assert [r.role for r in reqs] == ["answer", "value", "reflect", "answer", "vote", "value"]
    assert reqs[0].n == reqs[3].n == 2 and "LESSON" in reqs[3].text()
    assert played.ctx.metrics["actor"] == "best_of_n"


async def test_reflexion_react_keeps_the_forced_answer_at_a_step_budget() -> None:
    outs = [
        "Thought: read\nAction: bash: cat word.txt",
        "Thought: check\nAction: bash: ls",  # the budget is spent: react asks for the answer
        "Answer: banana",
    ]
    played = await play("reflexion", {}, outs, "agent", limits=Limits(steps=1))
    assert played.limit is not None and played.limit.which == "steps"
    assert played.submission == "banana"


def test_reflexion_actor_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="actor.params"):
        ReflexionParams.model_validate({"actor": {"name": "lats"}, "actor_params": {"n": 1}})
    with pytest.raises(UserError, match="unknown scaffold 'nope'"):
        ReflexionParams.model_validate({"actor": "nope"})
    with pytest.raises(ConfigError, match="oracle_feedback"):
        ReflexionParams.model_validate({"actor": {"name": "lats", "params": {"oracle_feedback": True}}})


@pytest.mark.parametrize("scaffold", ["best_of_n", "majority"])
async def test_the_chosen_samples_sandbox_state_is_replayed_into_the_episode(scaffold: str) -> None:
    def sample(word: str) -> list[str]:
        return [f"Thought: w\nAction: bash: echo {word} > out.txt", f"Thought: d\nAction: submit: {word}"]

    outs = [*sample("one"), *sample("two"), *sample("two")]
    params: dict[str, object] = {"n": 3, "inner": {"name": "react"}}
    if scaffold == "best_of_n":
        outs.append("The second is best. Answer: 2")
    box = LocalSandbox.create(SandboxSpec())
    try:
        played = await play(scaffold, params, outs, "agent", sandbox=box)
        out = (await box.read_file("out.txt")).decode()
    finally:
        await box.close()
    assert played.submission == "two" and out == "two\n"
    assert played.ctx.metrics["adopted_actions"] == 1
    # each sample acted in its own fork, never in the episode's sandbox
    assert all(s.branch for s in played.ctx.trace.steps)
