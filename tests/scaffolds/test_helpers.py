"""Parsers and the sandboxed test runner shared by the scaffolds."""

from __future__ import annotations

from ptebench.models.meter import Trace
from ptebench.records import Limits
from ptebench.sandbox.base import SandboxSpec
from ptebench.sandbox.local import LocalSandbox
from ptebench.scaffolds import parsing
from ptebench.scaffolds.base import Environment
from ptebench.scaffolds.codeexec import run_tests
from tests.scaffolds import kit


def test_score_and_verdict_parsers() -> None:
    assert parsing.parse_score("I'd rate it 7.") == 0.7
    assert parsing.parse_score("Score: 8/10") == 0.8
    assert parsing.parse_score("10") == 1.0
    assert parsing.parse_score("Likely correct.") == 0.5
    assert parsing.parse_score("no idea") is None
    assert parsing.parse_tot_value("... so it is sure") == 20.0
    assert parsing.parse_tot_value("impossible") == 0.001
    assert parsing.parse_tot_value("3") == 0.001 and parsing.parse_tot_value("garbage") == 0.0


def test_answer_code_and_list_parsers() -> None:
    assert parsing.find_answer("x\nAnswer: 1\nFinal answer: 2") == "2"
    assert parsing.find_answer("no answer line") is None
    view = next(i for i in kit.instances() if i.id == "code").view()
    body = parsing.extract_submission("```python\n    return a + b\n```", view)
    assert body is not None and body.startswith(kit.ADD_PROMPT) and body.endswith("return a + b\n")
    assert parsing.extract_submission("no code at all", view) is None
    assert parsing.parse_lines("1. a\n- b\n\n```\nc") == ["a", "b", "c"]
    assert parsing.parse_tests("x\nassert f(1) == 2\nassert f(1) == 2\n  assert g()") == [
        "assert f(1) == 2", "assert g()",
    ]
    assert parsing.parse_index("Answer: 2", 3) == 1 and parsing.parse_index("Answer: 9", 3) is None
    assert parsing.normalise(" 42.0. ") == "42" and parsing.normalise("") is None


async def test_run_tests_reports_outputs_timeouts_and_load_errors() -> None:
    box = LocalSandbox.create(SandboxSpec())
    limits, trace = Limits(tool_output_bytes=2000), Trace()
    env = Environment(box, ["submit"], limits, trace)
    try:
        noisy = "print('x' * 100000)\n" + kit.ADD_BAD
        r = await run_tests(env, noisy, ["assert add(1, 2) == 3", "assert add(2, 0) == 2"])
        assert r.ran and r.passed == [False, True] and r.messages[0] == "output: -1"
        assert "assert add(1, 2) == 3  # output: -1" in r.feedback()
        hang = "def add(a, b):\n    while True:\n        pass\n"
        r = await run_tests(env, hang, ["assert add(1, 2) == 3"], per_test_timeout=1)
        assert r.ran and r.passed == [False] and "timed out" in r.messages[0]
        r = await run_tests(env, "def add(a, b)\n", ["assert add(1, 2) == 3"])
        assert r.passed == [False] and "failed to load: SyntaxError" in r.messages[0]
        assert len(trace.steps) == 3  # each run is a recorded step
    finally:
        await box.close()
    r = await run_tests(Environment(None, [], limits, trace), kit.ADD_OK, ["assert True"])
    assert not r.ran and r.fraction == 0.0 and "no sandbox" in r.feedback()
