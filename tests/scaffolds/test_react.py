"""react beyond the foundation slice: retries, forced submit, budgets, native tool calls."""

from __future__ import annotations

from pathlib import Path

from ptebench.models.base import Choice, GenerateRequest, GenerateResponse, ToolCall
from ptebench.models.meter import MeteredModel, Trace
from ptebench.records import Limits
from ptebench.sandbox.base import SandboxSpec
from ptebench.sandbox.local import LocalSandbox
from ptebench.scaffolds.base import Environment, EpisodeContext
from ptebench.scaffolds.react import React, ReactParams
from tests.scaffolds import formulas, kit
from tests.scaffolds.kit import roles, run_one


def test_react_reads_file_and_submits(tmp_path: Path) -> None:
    outs = ["Thought: look\nAction: bash: cat word.txt", "Thought: got it\nAction: submit: banana"]
    ep = run_one(tmp_path, "react", outs, "agent")
    assert roles(ep) == formulas.react(turns=2) and ep.steps[0].observation.strip() == "banana"
    assert ep.score is not None and ep.score.value == 1.0


def test_react_call_bound_with_parse_failures(tmp_path: Path) -> None:
    # every reply unparseable: max_steps × (1 + parse_retries) calls, then the forced submit
    outs = ["gibberish"] * 6 + ["Answer: 3"]
    ep = run_one(tmp_path, {"name": "react", "params": {"max_steps": 3}}, outs, "agent")
    assert len(ep.calls) == 3 * (1 + 1) + 1
    assert len(ep.steps) == 3 and all("could not parse action" in s.observation for s in ep.steps)
    assert ep.submission == "3" and ep.status == "ok"


def test_react_episode_step_limit_forces_submit_and_reports_limit(tmp_path: Path) -> None:
    outs = ["Thought: a\nAction: bash: echo hi"] * 2 + ["Thought: b\nAction: bash: cat word.txt", "Answer: banana"]
    ep = run_one(tmp_path, {"name": "react", "params": {"max_steps": 30}}, outs, "agent", limits={"steps": 2})
    assert ep.status == "limit" and "steps" in (ep.reason or "")
    assert len(ep.steps) == 2 and len(ep.calls) == 4
    assert ep.submission == "banana" and ep.score is not None and ep.score.value == 1.0


def test_react_token_budget_stops_cleanly(tmp_path: Path) -> None:
    outs = ["Thought: " + "word " * 50 + "\nAction: bash: echo hi"] * 5
    ep = run_one(tmp_path, "react", outs, "agent", limits={"tokens": 60})
    assert ep.status == "limit" and "tokens" in (ep.reason or "") and len(ep.calls) == 1


class ToolCallingModel:
    """A model that answers through native tool calls (as an OpenAI-style provider would)."""

    def __init__(self, calls: list[ToolCall | str]) -> None:
        self.calls = calls
        self.requests: list[GenerateRequest] = []

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        self.requests.append(request)
        nxt = self.calls[len(self.requests) - 1]
        if isinstance(nxt, str):
            return GenerateResponse(choices=[Choice(text=nxt)])
        return GenerateResponse(choices=[Choice(text="", tool_calls=[nxt], finish_reason="tool_calls")])


async def test_react_native_tool_calling() -> None:
    inst = next(i for i in kit.instances() if i.id == "agent")
    box = LocalSandbox.create(SandboxSpec())
    await box.write_file("word.txt", "banana\n")
    model = ToolCallingModel([
        ToolCall(id="c1", name="bash", arguments='{"input": "cat word.txt"}'),
        ToolCall(id="c2", name="bash", arguments="{not json"),
        ToolCall(id="c3", name="submit", arguments='{"input": "banana"}'),
    ])
    trace, limits = Trace(), Limits()
    ctx = EpisodeContext(
        task=inst.view(), model=MeteredModel("m", model, None, trace, limits),
        env=Environment(box, inst.tools, limits, trace), limits=limits, trace=trace, seed=0,
    )
    try:
        sub = await React(ReactParams(tool_calling="native", parse_retries=0)).run(ctx)
    finally:
        await box.close()
    assert sub == "banana"
    assert [t.name for t in model.requests[0].tools] == ["bash", "submit"]
    # the observation goes back as a tool message answering the call
    tool_msgs = [m for m in model.requests[1].messages if m.role == "tool"]
    assert tool_msgs[0].tool_call_id == "c1" and "banana" in tool_msgs[0].content
    # malformed arguments became an observation, not a crash
    assert "not JSON" in trace.steps[1].observation
