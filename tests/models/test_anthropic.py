"""The Anthropic provider against a local server speaking the Messages wire format, via the SDK."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ptebench.errors import ModelError
from ptebench.models.anthropic import AnthropicModel
from ptebench.models.base import GenerateRequest, Message, ModelConfig, ToolCall, ToolSpec
from tests.models.wire import WireServer, anthropic_message


def make(srv: WireServer, **kw: Any) -> AnthropicModel:
    cfg: dict[str, Any] = {
        "id": "claude", "provider": "anthropic", "model": "claude-stub", "base_url": srv.url,
        "timeout_s": 1.0, "options": {"retry_initial_s": 0.01},
    }
    cfg.update(kw)
    return AnthropicModel(ModelConfig.model_validate(cfg))


async def test_system_prompt_tools_and_tool_use_blocks() -> None:
    content = [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"cmd": "ls -la"}},
    ]
    with WireServer(reply=lambda p, b: anthropic_message(content, stop_reason="tool_use")) as srv:
        m = make(srv)
        resp = await m.generate(
            GenerateRequest(
                messages=[
                    Message(role="system", content="You are terse."),
                    Message(role="user", content="list"),
                    Message(role="assistant", content="ok",
                            tool_calls=[ToolCall(id="t0", name="bash", arguments='{"cmd": "pwd"}')]),
                    Message(role="tool", tool_call_id="t0", content="/root"),
                    Message(role="user", content="and now?"),
                ],
                tools=[ToolSpec(name="bash", description="run a command")],
                stop=["STOP"], max_tokens=99,
            )
        )
        await m.aclose()
    req = srv.requests[0]
    body = req["body"]
    assert req["path"] == "/v1/messages"
    assert body["system"] == "You are terse." and body["max_tokens"] == 99
    assert body["stop_sequences"] == ["STOP"] and body["temperature"] == 0.0
    assert body["tools"][0] == {"name": "bash", "description": "run a command",
                                "input_schema": {"type": "object", "properties": {}}}
    roles = [msg["role"] for msg in body["messages"]]
    assert roles == ["user", "assistant", "user"]  # tool result + next user turn merged
    assert body["messages"][1]["content"][1] == {"type": "tool_use", "id": "t0", "name": "bash",
                                                 "input": {"cmd": "pwd"}}
    assert body["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": "t0",
                                                 "content": "/root"}
    choice = resp.choices[0]
    assert choice.text == "Let me look." and choice.finish_reason == "tool_calls"
    assert choice.tool_calls[0].id == "toolu_1"
    assert json.loads(choice.tool_calls[0].arguments) == {"cmd": "ls -la"}


@pytest.mark.parametrize(("wire", "common"), [("end_turn", "stop"), ("max_tokens", "length"),
                                             ("stop_sequence", "stop"), ("refusal", "refusal")])
async def test_stop_reasons_are_mapped(wire: str, common: str) -> None:
    with WireServer(reply=lambda p, b: anthropic_message(stop_reason=wire)) as srv:
        m = make(srv)
        resp = await m.generate(GenerateRequest(prompt="hi"))
        await m.aclose()
    assert resp.choices[0].finish_reason == common


async def test_cache_usage_is_normalised() -> None:
    usage = {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 300,
             "cache_creation_input_tokens": 50}
    with WireServer(reply=lambda p, b: anthropic_message(usage=usage)) as srv:
        m = make(srv)
        resp = await m.generate(GenerateRequest(prompt="hi"))
        await m.aclose()
    u = resp.usage
    assert (u.prompt_tokens, u.cached_prompt_tokens, u.completion_tokens) == (360, 300, 7)
    assert u.cache_write_prompt_tokens == 50


async def test_n_samples_are_sequential_calls_with_summed_usage() -> None:
    with WireServer() as srv:
        srv.faults = ["429"]  # the second call of three is retried on its own
        m = make(srv)
        resp = await m.generate(GenerateRequest(prompt="hi", n=3))
        await m.aclose()
    assert len(resp.choices) == 3 and len(srv.requests) == 4
    assert all("n" not in r["body"] for r in srv.requests)
    assert resp.usage.prompt_tokens == 60 and resp.usage.completion_tokens == 15
    assert resp.retries == 1


@pytest.mark.parametrize("fault", ["429", "500", "hang", "drop"])
async def test_transient_faults_are_retried(fault: str) -> None:
    with WireServer(hang_s=2.0) as srv:
        srv.faults = [fault]
        m = make(srv, timeout_s=0.5)
        resp = await m.generate(GenerateRequest(prompt="hi"))
        await m.aclose()
    assert resp.retries == 1 and resp.text == "hi there"


@pytest.mark.parametrize(("fault", "match"), [("400", "max_tokens: too large"),
                                              ("badjson", "not valid JSON")])
async def test_fatal_faults_fail_fast(fault: str, match: str) -> None:
    with WireServer() as srv:
        srv.faults = [fault]
        m = make(srv)
        with pytest.raises(ModelError, match=match):
            await m.generate(GenerateRequest(prompt="hi"))
        await m.aclose()
    assert len(srv.requests) == 1


async def test_tool_use_block_without_input_passes_through() -> None:
    def reply(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return anthropic_message(content=[{"type": "tool_use", "id": "x", "name": "bash"}])

    with WireServer(reply=reply) as srv:
        m = make(srv)
        # a tool_use block without input still becomes a call: input is null → "null"
        resp = await m.generate(GenerateRequest(prompt="hi"))
        await m.aclose()
    assert resp.choices[0].tool_calls[0].arguments == "null"
