"""The parsing rules one by one, on the forms the corpus showed (docs/scaffolds.md, "Parsing")."""

from __future__ import annotations

import pytest

from ptebench.scaffolds import parsing
from ptebench.scaffolds.parsing import ParseError, parse_action

TOOLS = ["bash", "python", "submit"]


def _act(text: str) -> tuple[str, str]:
    _, a = parse_action(text, TOOLS)
    return a.tool, a.input


def test_labels_with_markdown_numbers_and_headers() -> None:
    assert _act("**Thought:** look\n**Action:** bash: ls") == ("bash", "ls")
    assert _act("**Thought**: look\n**Action**: `bash`: `ls -la`") == ("bash", "ls -la")
    assert _act("### Thought 2: look\n### Action 2: bash: ls") == ("bash", "ls")
    thought, _ = parse_action("**Thought:** list files\n**Action:** bash: ls", TOOLS)
    assert thought == "list files"


def test_invented_observation_is_cut_but_a_quoted_earlier_one_is_kept() -> None:
    assert _act("Thought: t\nAction: bash: ls\nObservation: a.txt\nThought: next\nAction: bash: cat a.txt") == ("bash", "ls")
    assert _act("Observation: the last run failed.\nThought: retry\nAction: bash: ls") == ("bash", "ls")


def test_multiline_inputs_end_at_a_sentence_of_prose_not_inside_a_program() -> None:
    prog = 'def add(a, b):\n    """Add.\n\n    Returns the sum of both.\n    """\n    return a + b'
    assert _act(f"Thought: done\nAction: submit: {prog}") == ("submit", prog)
    script = "set -e\ncd /tmp\n\n# second part\nls"
    assert _act(f"Action: bash: {script}") == ("bash", script)
    assert _act("Action: bash: ls /tmp\n\nThis lists the temporary files first.") == ("bash", "ls /tmp")


def test_fences_with_prose_after_and_without_a_label() -> None:
    assert _act("Action: python:\n```python\nprint(1)\n```\nThat prints one.") == ("python", "print(1)")
    assert _act("Let me look.\n\n```bash\nls -la\n```\n\nThis shows the files.") == ("bash", "ls -la")
    assert _act("Let me look.\n```\nfind_file \"x.py\"\n```") == ("bash", 'find_file "x.py"')
    assert _act("Action: python\n```python\nprint(2)\n```") == ("python", "print(2)")


def test_json_whole_fenced_or_after_the_label_but_never_inside_a_program() -> None:
    assert _act('{"tool": "bash", "input": "ls"}') == ("bash", "ls")
    assert _act('I will list.\n```json\n{"name": "bash", "arguments": {"command": "ls -l"}}\n```') == ("bash", "ls -l")
    assert _act('Thought: t\nAction: {"tool": "submit", "input": "42"}') == ("submit", "42")
    prog = 'data = [\n{"name": "x", "input": 3}\n]\nprint(data)'
    assert _act(f"Action: python:\n```python\n{prog}\n```") == ("python", prog)
    with pytest.raises(ParseError, match="invalid JSON"):
        parse_action('{"tool": ', TOOLS)


def test_call_forms_quotes_and_several_actions_on_one_line() -> None:
    assert _act('Action: submit("42")') == ("submit", "42")
    assert _act("Action: submit['Paris']") == ("submit", "Paris")
    assert _act("Action: bash\nAction Input: ls -la") == ("bash", "ls -la")
    _, a = parse_action("Action 2: Search[A (film)], Search[B]", ["search"])
    assert (a.tool, a.input) == ("search", "A (film)")


def test_an_answer_with_no_action_is_a_submit() -> None:
    assert _act("The sum is 42.\n\n**Final Answer:** 42") == ("submit", "42")
    assert _act("```\n6 * 7 = 42\n```\nAnswer: 42") == ("submit", "42")
    with pytest.raises(ParseError, match="unknown tool 'rm'"):
        parse_action("Action: rm: -rf /", TOOLS)


def test_answers() -> None:
    assert parsing.find_answer("**Answer:** 42") == "42"
    assert parsing.find_answer("### Final Answer:\n`x = 3`") == "x = 3"
    assert parsing.find_answer("Action: Finish[\"Creature Comforts\"]") == "Creature Comforts"
    assert parsing.find_answer("Answer: 2 * 12 = 24 (this is not valid, it uses 2 twice)") == "2 * 12 = 24"
    assert parsing.find_answer("Answer: 42.") == "42"
    assert parsing.find_answer("no label here") is None
    assert parsing.extract_answer("reasoning\n(6 - 4) * (9 - 6) = 24") == "(6 - 4) * (9 - 6) = 24"


def test_code_is_the_block_defining_the_entry_point() -> None:
    sol = "def add(a, b):\n    return a + b\n"
    text = f"Here:\n```python\n{sol}```\nExample usage:\n```python\nprint(add(1, 2))\n```"
    assert parsing.extract_code(text, "add") == sol
    rewrite = f"```python\ndef add(a, b):\n    return 0\n```\nFixed:\n```python\n{sol}```"
    assert parsing.extract_code(rewrite, "add") == sol
    assert parsing.extract_code(f"```python\n{sol}", "add") == sol  # unterminated
    assert parsing.extract_code("Sure, here it is:\n" + sol, "add") == sol
    assert parsing.extract_code("no code", "add") is None


def test_scores_explicit_forms_win_and_equations_are_not_scores() -> None:
    assert parsing.parse_score("8 out of 10") == 0.8
    assert parsing.parse_score("7/10 - but step 3 is off") == 0.7
    assert parsing.parse_score("A scale of 1 to 10 applies. Rating: [[3]]") == 0.3
    assert parsing.parse_score("Thus the correctness score is 9") == 0.9
    assert parsing.parse_score("This is likely right, I'd give it 8.") == 0.8
    assert parsing.parse_score("Sure. (4+4)*3 = 24") == 1.0
    assert parsing.parse_score("4 + 4 = 8") is None
    assert parsing.parse_score("Reasoning.\n6") == 0.6
    assert parsing.parse_score("no idea") is None


def test_verdicts() -> None:
    assert parsing.parse_verdict("Sure. (4+4)*3 = 24") == "sure"
    assert parsing.parse_verdict("10 + 14 = 24\nsure") == "sure"
    assert parsing.parse_verdict("I am not sure it works") is None
    assert parsing.parse_verdict("Verdict: **impossible**") == "impossible"
    assert parsing.parse_tot_value("Sure. (4+4)*3 = 24") == 20.0
    assert parsing.parse_tot_value("9 out of 10") == 1.0 and parsing.parse_tot_value("10/10") == 20.0


def test_votes_lists_and_tests() -> None:
    assert parsing.parse_index("The best choice is 2.", 3) == 1
    assert parsing.parse_index("**Answer:** Candidate 3", 3) == 2
    assert parsing.parse_lines("Possible next steps:\n1. 4 + 8 = 12 (left: 2 12)\n- Answer: 24") == [
        "4 + 8 = 12 (left: 2 12)", "Answer: 24",
    ]
    assert parsing.parse_tests("Here:\n```python\nassert f(1) == 2\n```") == ["assert f(1) == 2"]
