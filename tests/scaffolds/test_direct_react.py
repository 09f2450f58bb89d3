"""direct and react on the scripted model, through the runner, with the local sandbox."""

from __future__ import annotations

from pathlib import Path

from ptebench.results.store import RunStore
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment
from ptebench.scaffolds.parsing import (
    ParseError,
    extract_answer,
    extract_code,
    extract_submission,
    parse_action,
)
from tests.scaffolds import formulas, kit


def _one(tmp_path: Path, scaffold: object, outputs: list[str], task: str = "arith", **kw: object):
    exp = parse_experiment({
        "name": "t", "models": [{"id": "s", "provider": "scripted", "outputs": outputs}],
        "scaffolds": [scaffold], "tasks": [{"name": task, "ids": ["arith-001"]}],
        "sandbox": "local", "baseline": scaffold if isinstance(scaffold, str) else scaffold["name"],  # type: ignore[index]
        **kw,
    })
    run_experiment(exp, tmp_path / "r")
    (ep,) = list(RunStore(tmp_path / "r").iter_episodes())
    return ep


def test_parse_action_forms() -> None:
    tools = ["bash", "python", "submit"]
    t, a = parse_action("Thought: list\nAction: bash: ls -la", tools)
    assert (t, a.tool, a.input) == ("list", "bash", "ls -la")
    _, a = parse_action("Action: python: ```python\nprint(1)\nprint(2)\n```", tools)
    assert a.input == "print(1)\nprint(2)"
    _, a = parse_action("Action 3: submit[42]", tools)
    assert (a.tool, a.input) == ("submit", "42")
    _, a = parse_action('{"tool": "submit", "input": "7"}', tools)
    assert a.input == "7"
    for bad, msg in [("no action here", "could not parse action"),
                     ("Action: rm: -rf /", "unknown tool 'rm'"),
                     ('{"tool": ', "invalid JSON")]:
        try:
            parse_action(bad, tools)
        except ParseError as e:
            assert msg in str(e)
        else:
            raise AssertionError(f"{bad!r} parsed")


def test_extractors() -> None:
    assert extract_answer("thinking...\nAnswer: 12\n") == "12"
    assert extract_answer("") == ""
    assert extract_code("x\n```python\ndef f():\n    return 1\n```") == "def f():\n    return 1\n"
    assert extract_code("    return 1") is None
    # direct's completion mode: a bare body continues the task's prompt
    view = next(i for i in kit.instances() if i.id == "code").view()
    assert extract_submission("    return a + b", view, raw_fallback=True) == kit.ADD_PROMPT + "    return a + b\n"


def test_direct_one_call(tmp_path: Path) -> None:
    from ptebench.tasks.arith import _instance

    answer = _instance(1).reference.answer
    ep = _one(tmp_path, "direct", [f"Answer: {answer}"])
    assert len(ep.calls) == 1 and ep.calls[0].role == "answer"
    assert ep.submission == answer and ep.score is not None and ep.score.value == 1.0


def test_react_runs_tool_then_submits(tmp_path: Path) -> None:
    from ptebench.tasks.arith import _instance

    inst = _instance(1)
    code = inst.reference.actions[0].input
    outputs = [
        "I am confused",  # unparseable: retried once
        f"Thought: compute it\nAction: python: {code}",
        f"Thought: done\nAction: submit: {inst.reference.answer}",
    ]
    ep = _one(tmp_path, "react", outputs)
    assert [c.role for c in ep.calls] == formulas.react(turns=3)  # the unparseable reply is a turn
    assert len(ep.steps) == 1 and ep.steps[0].observation.strip() == inst.reference.answer
    assert ep.score is not None and ep.score.value == 1.0


def test_react_forced_submit_at_step_limit(tmp_path: Path) -> None:
    outputs = ["Thought: a\nAction: bash: echo 1"] * 2 + ["Answer: 5"]
    ep = _one(tmp_path, {"name": "react", "params": {"max_steps": 2}}, outputs)
    assert len(ep.calls) == 3 and ep.submission == "5" and ep.status == "ok"
