"""Every form the sim writes (varied style) reads back to what it meant through the parsers."""

from __future__ import annotations

import pytest

from ptebench.models import sim_styles as S
from ptebench.scaffolds import parsing

TOOLS = ["bash", "python", "submit"]
DRAWS = 300
"""Replies drawn per case: with at most 13 forms, P(some form never drawn) < 13·(12/13)^300 ≈ 5e-10."""

ACTIONS = [
    ("bash", "ls -la"),
    ("python", "print(6 * 7)"),
    ("submit", "42"),
    ("submit", "FLAG{a_b}"),
    ("bash", "set -euo pipefail\ncat /etc/passwd | grep root\n\n# step two\nps aux"),
    ("python", "x = [1, 2]\n\nprint(x[0])"),
    ("submit", 'def add(a, b):\n    """Return a + b.\n\n    Adds two numbers together now.\n    """\n    return a + b'),
]


@pytest.mark.parametrize(("tool", "inp"), ACTIONS)
def test_actions_read_back_in_every_form_with_or_without_the_stop(tool: str, inp: str) -> None:
    texts = set()
    for k in range(DRAWS):
        style = S.Style("varied", f"{tool}{k}")
        text = S.action_reply("I will do it.", tool, inp, style)
        texts.add(text)
        for t in (text, style.apply_stop(text, parsing.ACT_STOP)):
            _, action = parsing.parse_action(t, TOOLS)
            assert (action.tool, action.input.strip()) == (tool, inp.strip()), t
    assert len(texts) >= 5


@pytest.mark.parametrize("answer", ["42", "-7", "(6 - 4) * (4 + 8) = 24", "FLAG{x}"])
def test_answers_read_back(answer: str) -> None:
    for k in range(DRAWS):
        text = S.answer_reply(["step one", "step two"] if k % 2 else [], answer, S.Style("varied", str(k)))
        assert parsing.find_answer(text) == answer and parsing.extract_answer(text) == answer, text


def test_code_reads_back_as_the_defining_block() -> None:
    prog = "def add(a, b):\n    return a + b\n"
    forms = set()
    for k in range(DRAWS):
        text = S.code_reply([], prog, S.Style("varied", str(k)))
        forms.add(text)
        assert parsing.extract_code(text, "add") == prog, text
    assert any("Example usage" in f for f in forms)


def test_verdicts_scores_votes_tests_and_proposals_read_back() -> None:
    for k in range(DRAWS):
        st = S.Style("varied", str(k))
        for w, score in [("sure", 1.0), ("likely", 0.5), ("impossible", 0.0)]:
            t = S.verdict_reply(w, st)
            assert parsing.parse_verdict(t) == w and parsing.parse_score(t) == score, t
        for n in range(1, 11):
            t = S.score_reply(n, st)
            assert parsing.parse_score(t) == n / 10, t
        assert parsing.parse_index(S.vote_reply(3, st), 5) == 2
        tests = ["assert f(1) == 2", "assert f(2) == 3"]
        assert parsing.parse_tests(S.tests_reply(tests, st)) == tests
        lines = ["4 + 8 = 12 (left: 2 12)", "Answer: (4 + 8) * 2 = 24", "bash: ls -la"]
        assert parsing.parse_lines(S.proposal_reply(lines, st)) == lines


def test_plain_style_is_canonical_and_honours_stop() -> None:
    st = S.Style("plain", "k")
    assert S.action_reply("t", "bash", "ls", st) == "Thought: t\nAction: bash: ls"
    assert S.answer_reply([], "4", st) == "Answer: 4"
    assert S.verdict_reply("sure", st) == "sure" and S.score_reply(7, st) == "7"
    assert st.apply_stop("Action: bash: ls\nObservation: x", parsing.ACT_STOP) == "Action: bash: ls"
