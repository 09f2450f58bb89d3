"""Native tool calling for every agent scaffold, through the real OpenAI and Anthropic
SDKs against wire-format servers that check each request's history the way the APIs do
(tools sent whenever the history holds tool turns, no empty assistant turn, every tool
call answered at once, user/assistant alternation for Anthropic)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from ptebench.models.anthropic import AnthropicModel
from ptebench.models.base import ModelConfig
from ptebench.models.openai import OpenAIModel
from tests.models.wire import WireServer, anthropic_message, openai_chat
from tests.scaffolds.kit import play_with

FAST = {"retry_initial_s": 0.01, "retry_max_wait_s": 0.5}


def openai_history_errors(body: dict[str, Any]) -> list[str]:
    """What the Chat Completions API would reject in this request's messages."""
    errs: list[str] = []
    msgs = body["messages"]
    if any(m["role"] == "tool" or m.get("tool_calls") for m in msgs) and not body.get("tools"):
        errs.append("tool turns in the history but no tools sent")
    open_ids: list[str] = []
    for i, m in enumerate(msgs):
        if m["role"] == "tool":
            if m.get("tool_call_id") not in open_ids:
                errs.append(f"message {i}: tool result for an unknown or answered call")
            else:
                open_ids.remove(m["tool_call_id"])
            continue
        if open_ids:
            errs.append(f"message {i}: tool calls {open_ids} not answered before it")
            open_ids = []
        if m["role"] == "assistant":
            if not m.get("content") and not m.get("tool_calls"):
                errs.append(f"message {i}: empty assistant turn")
            open_ids = [c["id"] for c in m.get("tool_calls") or []]
    if open_ids:
        errs.append(f"tool calls {open_ids} not answered")
    return errs


def anthropic_history_errors(body: dict[str, Any]) -> list[str]:
    """What the Messages API would reject in this request's messages."""
    errs: list[str] = []
    msgs = body["messages"]
    blocks = [b for m in msgs for b in m["content"]]
    if any(b["type"] in ("tool_use", "tool_result") for b in blocks) and not body.get("tools"):
        errs.append("tool blocks in the history but no tools sent")
    if not msgs or msgs[0]["role"] != "user":
        errs.append("the first message must be a user turn")
    for i, m in enumerate(msgs):
        if i and msgs[i - 1]["role"] == m["role"]:
            errs.append(f"message {i}: two {m['role']} turns in a row")
        if not m["content"]:
            errs.append(f"message {i}: empty content")
        if any(b["type"] == "text" and not b["text"] for b in m["content"]):
            errs.append(f"message {i}: empty text block")
        uses = [b["id"] for b in m["content"] if b["type"] == "tool_use"]
        if uses:
            nxt = msgs[i + 1]["content"] if i + 1 < len(msgs) else []
            lead = list(itertools.takewhile(lambda b: b["type"] == "tool_result", nxt))
            if sorted(b["tool_use_id"] for b in lead) != sorted(uses):
                errs.append(f"message {i}: tool_use {uses} not answered first in the next turn")
    return errs


class Agent:
    """Answers like a tool-calling model: with tools offered, it first makes three parallel
    calls (cat word.txt, an unknown tool, ls), then submits what it read; without tools it
    judges (10 on a 1–10 scale, else "sure")."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.ids = itertools.count(1)

    def calls(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        if "banana" in json.dumps(body["messages"]):
            return [("submit", "banana")]
        return [("bash", "cat word.txt"), ("browser", "open word.txt"), ("bash", "ls")]

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        anthropic = path.endswith("/messages")
        check = anthropic_history_errors if anthropic else openai_history_errors
        self.errors += check(body)
        text = json.dumps(body["messages"])
        judged = "10" if "1 (hopeless) to 10" in (text + str(body.get("system", ""))) else "sure"
        if not body.get("tools"):
            if anthropic:
                return anthropic_message([{"type": "text", "text": judged}])
            return openai_chat(judged, n=int(body.get("n", 1)))
        calls = self.calls(body)
        if anthropic:
            content = [
                {"type": "tool_use", "id": f"toolu_{next(self.ids)}", "name": name,
                 "input": {"input": arg}}
                for name, arg in calls
            ]
            return anthropic_message(content, stop_reason="tool_use")
        tool_calls = [
            {"id": f"call_{next(self.ids)}", "type": "function",
             "function": {"name": name, "arguments": json.dumps({"input": arg})}}
            for name, arg in calls
        ]
        return openai_chat(tool_calls=tool_calls, n=int(body.get("n", 1)))


PARAMS: list[tuple[str, dict[str, Any]]] = [
    ("react", {}),
    ("react", {"max_steps": 1}),  # the forced submit after tool turns
    ("reflexion", {}),
    ("tot", {"steps": 2, "n_select": 5}),
    ("lats", {"iterations": 3, "n_children": 2}),
]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(("scaffold", "params"), PARAMS, ids=[f"{s}{p}" for s, p in PARAMS])
async def test_native_tool_calling_keeps_histories_valid(
    scaffold: str, params: dict[str, Any], provider: str
) -> None:
    agent = Agent()
    with WireServer(reply=agent) as srv:
        cfg = ModelConfig(
            id="m", provider=provider, model="stub", options=FAST,
            base_url=srv.url + ("/v1" if provider == "openai" else ""),
        )
        model = OpenAIModel(cfg) if provider == "openai" else AnthropicModel(cfg)
        played = await play_with(model, scaffold, params, "agent", native_tools=True)
        await model.aclose()
    assert agent.errors == []
    assert played.limit is None and played.submission == "banana"
    tooled = [r for r in srv.requests if r["body"].get("tools")]
    assert tooled, "tools were offered natively"
    names = {t.get("name") or t["function"]["name"] for t in tooled[0]["body"]["tools"]}
    assert names == {"bash", "submit"}
    steps = played.ctx.trace.steps
    assert any(s.action is not None and s.action.input == "cat word.txt" for s in steps)
    sent = json.dumps([r["body"]["messages"] for r in srv.requests])
    if scaffold in ("react", "reflexion"):
        # parallel calls run in order, each answered by its own tool result; the unknown
        # tool is answered with an error the model sees, never run
        ran = [s.action.input for s in steps if s.action is not None]
        assert ran[:2] == ["cat word.txt", "ls"]
        assert any("unknown tool 'browser'" in s.observation for s in steps)
        assert "unknown tool 'browser'" in sent
    elif scaffold == "lats":
        # a node is one step: the further calls are refused in the trajectory shown next
        assert "not run: 2 more tool call(s)" in sent
    else:
        # tot: parallel calls are alternative proposals; the unknown tool is not one
        assert int(str(played.ctx.metrics["unparsed_proposals"])) >= 1
