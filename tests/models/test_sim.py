"""The simulated family follows its documented law, deterministically, through a hidden channel."""

from __future__ import annotations

import math

import pytest

from ptebench.errors import ConfigError
from ptebench.models.base import EpisodeBinding, GenerateRequest, Message, ModelConfig
from ptebench.models.catalog import default_catalog
from ptebench.models.sim import ALPHA, C0, SIZES, SimModel, asked_for, competence
from ptebench.records import Action
from ptebench.scaffolds import parsing
from ptebench.tasks.base import Reference


def _model(size: str = "1e22") -> SimModel:
    return SimModel(ModelConfig(id=f"sim/{size}", provider="sim", model=size))


def _bind(m: SimModel, ref: Reference, seed: int) -> object:
    return m.bind(EpisodeBinding(episode_id=f"e{seed}", seed=seed, task_family="f", task_id="t",
                                 hidden=ref.model_dump(mode="json")))


ACT_SYSTEM = (
    "You solve tasks by interleaving Thought, Action and Observation steps.\n"
    "Thought: <your reasoning>\nAction: <tool>: <input>\nTools: bash, python, submit"
)


def _ask(text: str = "What is 2+2?", temperature: float = 0.0, n: int = 1, system: str | None = None,
         role: str = "answer") -> GenerateRequest:
    msgs = ([Message(role="system", content=system)] if system else []) + [Message(role="user", content=text)]
    return GenerateRequest(messages=msgs, role=role, temperature=temperature, n=n)


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
        hits += parsing.extract_answer(resp.text) == "4"
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
    assert parsing.extract_answer(resp.text) != "4"


async def test_act_follows_reference_actions_then_submits() -> None:
    m = _model("1e24")
    ref = Reference(answer="42", actions=[Action(tool="python", input="print(6*7)")],
                    difficulty=5.0, action_difficulty=-5.0)
    tools = ["bash", "python", "submit"]
    for seed in range(12):  # whatever form it writes its action in, it knows it acted
        bound = _bind(m, ref, seed)
        first = await bound.generate(_ask("Solve it.", system=ACT_SYSTEM))  # type: ignore[attr-defined]
        _, action = parsing.parse_action(first.text, tools)
        assert (action.tool, action.input) == ("python", "print(6*7)")
        msgs = [Message(role="system", content=ACT_SYSTEM), Message(role="user", content="Solve it."),
                Message(role="assistant", content=first.text), Message(role="user", content="Observation: 42")]
        second = await bound.generate(GenerateRequest(messages=msgs))  # type: ignore[attr-defined]
        _, action = parsing.parse_action(second.text, tools)
        assert (action.tool, action.input) == ("submit", "42"), "with the work visible the answer is easy"


async def test_secret_answer_is_read_from_last_observation() -> None:
    m = _model("1e24")
    ref = Reference(answer=None, actions=[Action(tool="bash", input="cat /flag")], action_difficulty=-6.0)
    bound = _bind(m, ref, 1)
    msgs = [Message(role="system", content=ACT_SYSTEM), Message(role="user", content="find the flag"),
            Message(role="assistant", content="Thought: t\nAction: bash: cat /flag"),
            Message(role="user", content="Observation: FLAG{abc}")]
    resp = await bound.generate(GenerateRequest(messages=msgs))  # type: ignore[attr-defined]
    _, action = parsing.parse_action(resp.text, ["bash", "submit"])
    assert (action.tool, action.input) == ("submit", "FLAG{abc}")


async def test_every_kind_of_request_is_recognised_and_answered() -> None:
    m = _model("1e24")
    ref = Reference(answer="24", steps=["4 + 8 = 12 (left: 2 12)"], tests=["assert f(1) == 2"],
                    action_difficulty=-6.0)
    b = _bind(m, ref, 5)
    prop = await b.generate(_ask("Propose 3 candidates for the next step from 4 8 2, one per line."))  # type: ignore[attr-defined]
    assert "4 + 8 = 12 (left: 2 12)" in parsing.parse_lines(prop.text)
    val = await b.generate(_ask("Evaluate: sure/likely/impossible\n4 + 8 = 12 (left: 2 12)"))  # type: ignore[attr-defined]
    assert parsing.parse_verdict(val.text) == "sure"
    num = await b.generate(_ask("24", system="Rate the answer below from 1 (hopeless) to 10 (certainly right)."))  # type: ignore[attr-defined]
    score = parsing.parse_score(num.text)
    assert score is not None and 0.7 <= score <= 1.0
    tests = await b.generate(_ask("Write 1 unit tests for `f` as Python `assert` statements."))  # type: ignore[attr-defined]
    assert parsing.parse_tests(tests.text) == ["assert f(1) == 2"]
    vote = await b.generate(_ask("Candidate 1: 23\nCandidate 2: 24\nCandidate 3: 25\nName the best one."))  # type: ignore[attr-defined]
    assert parsing.parse_index(vote.text, 3) == 1
    refl = await b.generate(_ask("Your attempt failed. Diagnose why and write a plan."))  # type: ignore[attr-defined]
    assert refl.text.startswith("Reflection:")
    assert refl.usage.prompt_tokens > 0 and refl.usage.completion_tokens > 0
    assert [asked_for(_ask(t, system=sy)) for t, sy in [
        ("Solve it.", ACT_SYSTEM), ("What is 2+2?", None), ("Observation: 3", ACT_SYSTEM),
    ]] == ["act", "answer", "act"]


async def test_role_label_is_never_read() -> None:
    """The accounting label a scaffold puts on a request changes nothing the sim writes."""
    ref = Reference(answer="42", actions=[Action(tool="python", input="print(6*7)")], action_difficulty=-1.0)
    for text, system in [("Solve it.", ACT_SYSTEM), ("What is 6*7?", None), ("Rate 1 to 10:\n42", None)]:
        outs = set()
        for role in ("act", "answer", "value", "propose", "vote", "reflect", "test_gen"):
            resp = await _bind(_model("1e22"), ref, 3).generate(_ask(text, system=system, role=role))  # type: ignore[attr-defined]
            outs.add(resp.text)
        assert len(outs) == 1, outs


async def test_varied_style_writes_many_forms_plain_style_one() -> None:
    ref = Reference(answer="42", actions=[Action(tool="python", input="print(6*7)")], action_difficulty=-9.0)
    plain = SimModel(ModelConfig(id="sim/1e24", provider="sim", model="1e24", options={"style": "plain"}))
    varied, plain_texts = set(), set()
    for seed in range(60):
        req = _ask("Solve it.", system=ACT_SYSTEM)
        varied.add((await _bind(_model("1e24"), ref, seed).generate(req)).text)  # type: ignore[attr-defined]
        plain_texts.add((await _bind(plain, ref, seed).generate(req)).text)  # type: ignore[attr-defined]
    assert plain_texts == {"Thought: Next I will use python for this step.\nAction: python: print(6*7)"}
    assert len(varied) >= 6, varied
    with pytest.raises(ConfigError, match="options.style"):
        SimModel(ModelConfig(id="sim/1e22", provider="sim", model="1e22", options={"style": "fancy"}))


async def test_stop_sequences_are_honoured_but_not_always() -> None:
    """As an API does, the sim cuts its reply at a stop sequence — except on a few replies,
    where an invented observation may follow the action (the parser must cut it)."""
    ref = Reference(answer="42", actions=[Action(tool="python", input="print(6*7)")], action_difficulty=-9.0)
    cut = kept = 0
    for seed in range(400):
        req = GenerateRequest(messages=[Message(role="system", content=ACT_SYSTEM), Message(role="user", content="Solve it.")],
                              stop=parsing.ACT_STOP)
        text = (await _bind(_model("1e24"), ref, seed).generate(req)).text  # type: ignore[attr-defined]
        if "Observation" in text:
            kept += 1
            _, action = parsing.parse_action(text, ["python", "submit"])
            assert action.input == "print(6*7)"
        else:
            cut += 1
    assert cut > kept > 0


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
    prop = await b.generate(_ask(pack["propose"].replace("{input}", left0)))  # type: ignore[attr-defined]
    assert s1 in parsing.parse_lines(prop.text), "from the state after step 1 it proposes step 2"
    on = await b.generate(_ask(pack["value"].replace("{input}", left0)))  # type: ignore[attr-defined]
    off = await b.generate(_ask(pack["value"].replace("{input}", "1 1 1")))  # type: ignore[attr-defined]
    assert parsing.parse_verdict(on.text) == "sure"
    assert parsing.parse_verdict(off.text) in ("impossible", "likely"), "a state off the reference path is judged unpromising"
    steps = "\n".join(ref.steps)
    final = await b.generate(_ask(pack["cot"].replace("{input}", start) + "Steps:\n" + steps))  # type: ignore[attr-defined]
    assert parsing.find_answer(final.text) == ref.answer
