"""The simulated family follows its documented law, deterministically, through a hidden channel."""

from __future__ import annotations

import math

import pytest

from ptebench.models.base import EpisodeBinding, GenerateRequest, Message, ModelConfig
from ptebench.models.catalog import default_catalog
from ptebench.models.sim import ALPHA, C0, SIZES, SimModel, competence
from ptebench.records import Action
from ptebench.tasks.base import Reference


def _model(size: str = "1e22") -> SimModel:
    return SimModel(ModelConfig(id=f"sim/{size}", provider="sim", model=size))


def _bind(m: SimModel, ref: Reference, seed: int) -> object:
    return m.bind(EpisodeBinding(episode_id=f"e{seed}", seed=seed, task_family="f", task_id="t",
                                 hidden=ref.model_dump(mode="json")))


def _ask(role: str = "answer", text: str = "What is 2+2?", temperature: float = 0.0, n: int = 1) -> GenerateRequest:
    return GenerateRequest(messages=[Message(role="user", content=text)], role=role,
                           temperature=temperature, n=n)


def test_law_is_monotone_and_documented() -> None:
    assert competence(10**C0, 0.0) == pytest.approx(0.5)
    ps = [competence(c, 0.0) for c in SIZES]
    assert ps == sorted(ps) and ps[0] < 0.2 and ps[-1] > 0.8
    assert competence(1e23, 1.0) == pytest.approx(1 / (1 + math.exp(-(ALPHA * 1 - 1))))


def test_catalog_has_five_sizes_spaced_in_compute() -> None:
    cards = [c for c in default_catalog().cards() if c.family == "sim"]
    assert [c.train_flop for c in cards] == list(SIZES)
    assert all(c.simulated and c.params_active for c in cards)


@pytest.mark.parametrize("size", ["1e20", "1e22", "1e24"])
async def test_direct_answers_match_the_law(size: str) -> None:
    m = _model(size)
    ref = Reference(answer="4", difficulty=0.5)
    hits = 0
    n = 800
    for seed in range(n):
        resp = await _bind(m, ref, seed).generate(_ask())  # type: ignore[attr-defined]
        hits += resp.text.strip().endswith("Answer: 4")
    p = competence(float(size), 0.5)
    assert abs(hits / n - p) < 4 * math.sqrt(p * (1 - p) / n) + 0.01


async def test_deterministic_given_seed_and_varied_by_temperature() -> None:
    m = _model()
    ref = Reference(answer="4")
    a = await _bind(m, ref, 7).generate(_ask(temperature=0.0))  # type: ignore[attr-defined]
    b = await _bind(m, ref, 7).generate(_ask(temperature=0.0))  # type: ignore[attr-defined]
    assert a.text == b.text
    bound = _bind(m, ref, 3)
    samples = [(await bound.generate(_ask(temperature=1.0, n=8))).choices for _ in range(3)]  # type: ignore[attr-defined]
    texts = {c.text for batch in samples for c in batch}
    assert len(texts) > 1, "samples at temperature > 0 must vary"


async def test_unbound_model_knows_nothing() -> None:
    m = _model("1e24")
    resp = await m.generate(_ask())
    assert "Answer: 4" not in resp.text


async def test_act_follows_reference_actions_then_submits() -> None:
    m = _model("1e24")
    ref = Reference(answer="42", actions=[Action(tool="python", input="print(6*7)")],
                    difficulty=5.0, action_difficulty=-5.0)
    bound = _bind(m, ref, 1)
    first = (await bound.generate(_ask("act", "Solve it.")))  # type: ignore[attr-defined]
    assert "Action: python: print(6*7)" in first.text
    transcript = "Solve it.\n" + first.text + "\nObservation: 42"
    second = await bound.generate(_ask("act", transcript))  # type: ignore[attr-defined]
    assert second.text.endswith("Action: submit: 42"), "with the work visible the answer is easy"


async def test_secret_answer_is_read_from_last_observation() -> None:
    m = _model("1e24")
    ref = Reference(answer=None, actions=[Action(tool="bash", input="cat /flag")], action_difficulty=-6.0)
    bound = _bind(m, ref, 1)
    msgs = [Message(role="user", content="find the flag"),
            Message(role="assistant", content="Thought: t\nAction: bash: cat /flag"),
            Message(role="user", content="Observation: FLAG{abc}")]
    resp = await bound.generate(GenerateRequest(messages=msgs, role="act"))  # type: ignore[attr-defined]
    assert resp.text.endswith("Action: submit: FLAG{abc}")


async def test_every_role_answers_sensibly() -> None:
    m = _model("1e24")
    ref = Reference(answer="24", steps=["4 + 8 = 12 (left: 2 12)"], tests=["assert f(1) == 2"],
                    action_difficulty=-6.0)
    b = _bind(m, ref, 5)
    prop = await b.generate(_ask("propose", "Propose 3 candidates for 4 8 2"))  # type: ignore[attr-defined]
    assert "4 + 8 = 12 (left: 2 12)" in prop.text.splitlines()
    val = await b.generate(_ask("value", "Evaluate: sure/likely/impossible\n4 + 8 = 12 (left: 2 12)"))  # type: ignore[attr-defined]
    assert val.text == "sure"
    num = await b.generate(_ask("value", "Rate 1-10:\n24"))  # type: ignore[attr-defined]
    assert 7 <= int(num.text) <= 10
    tests = await b.generate(_ask("test_gen", "write tests"))  # type: ignore[attr-defined]
    assert tests.text == "assert f(1) == 2"
    vote = await b.generate(_ask("vote", "Candidate 1: 23\nCandidate 2: 24\nCandidate 3: 25"))  # type: ignore[attr-defined]
    assert vote.text == "Answer: 2"
    refl = await b.generate(_ask("reflect", "it failed"))  # type: ignore[attr-defined]
    assert refl.text.startswith("Reflection:")
    assert refl.usage.prompt_tokens > 0 and refl.usage.completion_tokens > 0


async def test_propose_and_value_follow_game24_states() -> None:
    """The sim reads the current (left: ...) state from ToT's prompt pack and knows the path."""
    from ptebench import registry
    from ptebench.tasks.base import TaskOptions

    inst = registry.get("task", "game24")().instances(TaskOptions(limit=1))[0]
    ref = inst.reference.model_copy(update={"action_difficulty": -20.0})
    b = _bind(_model("1e24"), ref, 1)
    pack = inst.prompts
    start = " ".join(str(x) for x in inst.metadata.get("numbers", [])) or inst.instructions
    s0, s1 = ref.steps[0], ref.steps[1]
    left0 = s0.split("left:")[1].rstrip(")").strip()
    prop = await b.generate(_ask("propose", pack["propose"].replace("{input}", left0)))  # type: ignore[attr-defined]
    assert s1 in prop.text.splitlines(), "from the state after step 1 it proposes step 2"
    on = await b.generate(_ask("value", pack["value"].replace("{input}", left0)))  # type: ignore[attr-defined]
    off = await b.generate(_ask("value", pack["value"].replace("{input}", "1 1 1")))  # type: ignore[attr-defined]
    assert on.text == "sure"
    assert off.text in ("impossible", "likely"), "a state off the reference path is judged unpromising"
    steps = "\n".join(ref.steps)
    final = await b.generate(_ask("propose", pack["cot"].replace("{input}", start) + "Steps:\n" + steps))  # type: ignore[attr-defined]
    assert f"Answer: {ref.answer}" in final.text.splitlines()
