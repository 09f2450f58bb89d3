"""The OpenAI provider against a local server speaking the real wire format, over both
transports: plain httpx (the default with a base_url) and the openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ptebench.errors import ConfigError, ModelError
from ptebench.models.base import (
    GenerateRequest,
    Message,
    ModelConfig,
    ToolCall,
    ToolSpec,
)
from ptebench.models.openai import OpenAIModel
from tests.models.wire import WireServer, openai_chat, openai_completion

FAST = {"retry_initial_s": 0.01, "retry_max_wait_s": 2.0}
TRANSPORT = ["httpx"]


@pytest.fixture(autouse=True, params=["httpx", "sdk"])
def transport(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs over both transports: same wire format, same error semantics."""
    TRANSPORT[0] = request.param
    yield request.param


def make(srv: WireServer, **kw: Any) -> OpenAIModel:
    cfg: dict[str, Any] = {
        "id": "stub", "provider": "openai", "model": "stub-model",
        "base_url": srv.url + "/v1", "timeout_s": 1.0,
        "options": {**FAST, "transport": TRANSPORT[0]},
    }
    cfg.update(kw)
    model = OpenAIModel(ModelConfig.model_validate(cfg))
    assert model.transport == TRANSPORT[0]
    return model


def ask(text: str = "hi", **kw: Any) -> GenerateRequest:
    return GenerateRequest(messages=[Message(role="user", content=text)], **kw)


async def test_chat_with_tools_round_trip(transport: str) -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "bash", "arguments": '{"cmd": "ls"}'}}
    with WireServer(reply=lambda p, b: openai_chat(tool_calls=[call])) as srv:
        m = make(srv)
        req = GenerateRequest(
            messages=[
                Message(role="system", content="be brief"),
                Message(role="user", content="list files"),
                Message(role="assistant", tool_calls=[ToolCall(id="c0", name="bash", arguments="{}")]),
                Message(role="tool", tool_call_id="c0", content="a.txt"),
            ],
            tools=[ToolSpec(name="bash", description="run", parameters={"type": "object"})],
            max_tokens=50, stop=["END"], seed=3, temperature=0.5,
        )
        resp = await m.generate(req)
        await m.aclose()
    body = srv.requests[0]["body"]
    assert srv.requests[0]["path"] == "/v1/chat/completions"
    assert body["model"] == "stub-model" and body["max_tokens"] == 50 and body["seed"] == 3
    assert body["stop"] == ["END"] and body["temperature"] == 0.5
    assert body["tools"][0]["function"]["name"] == "bash"
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["messages"][2]["tool_calls"][0]["function"]["name"] == "bash"
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "c0", "content": "a.txt"}
    headers = {k.lower(): v for k, v in srv.requests[0]["headers"].items()}
    assert headers["authorization"].startswith("Bearer ")
    assert headers["content-type"] == "application/json"
    if transport == "sdk":  # the SDK's own retries are off: ours count
        assert headers.get("x-stainless-retry-count") == "0"
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.tool_calls[0].name == "bash" and json.loads(choice.tool_calls[0].arguments) == {"cmd": "ls"}
    assert resp.usage.prompt_tokens == 11 and resp.retries == 0


async def test_usage_cached_and_reasoning_tokens() -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140,
             "prompt_tokens_details": {"cached_tokens": 64},
             "completion_tokens_details": {"reasoning_tokens": 30}}
    with WireServer(reply=lambda p, b: openai_chat(n=int(b.get("n", 1)), usage=usage)) as srv:
        m = make(srv)
        resp = await m.generate(ask(n=3))
        await m.aclose()
    assert srv.requests[0]["body"]["n"] == 3 and len(resp.choices) == 3
    u = resp.usage
    assert (u.prompt_tokens, u.completion_tokens, u.cached_prompt_tokens, u.reasoning_tokens) == (100, 40, 64, 30)


async def test_text_completion_for_base_models() -> None:
    with WireServer() as srv:
        m = make(srv, completion=True)
        resp = await m.generate(GenerateRequest(prompt="def f():\n", stop=["\ndef"], max_tokens=20))
        await m.aclose()
    req = srv.requests[0]
    assert req["path"] == "/v1/completions"
    assert req["body"]["prompt"] == "def f():\n" and req["body"]["stop"] == ["\ndef"]
    assert resp.text == " return 1" and resp.usage.completion_tokens == 2


async def test_server_ignoring_n_is_asked_again_and_usage_summed() -> None:
    # llama.cpp's server returns one choice whatever n is
    with WireServer(reply=lambda p, b: openai_completion(n=1)) as srv:
        m = make(srv, completion=True)
        resp = await m.generate(GenerateRequest(prompt="x", n=3))
        await m.aclose()
    assert len(resp.choices) == 3 and len(srv.requests) == 3
    assert [r["body"].get("n", 1) for r in srv.requests] == [3, 2, 1]
    assert resp.usage.prompt_tokens == 21 and resp.usage.completion_tokens == 6


@pytest.mark.parametrize("fault", ["429", "500", "hang", "drop"])
async def test_transient_faults_are_retried(fault: str) -> None:
    with WireServer(hang_s=2.0) as srv:
        srv.faults = [fault, fault]
        m = make(srv, timeout_s=0.5)
        resp = await m.generate(ask())
        await m.aclose()
    assert resp.retries == 2 and resp.text == "hello"
    assert len(srv.requests) == 3


async def test_retry_after_is_honoured() -> None:
    with WireServer(retry_after=0.6) as srv:
        srv.faults = ["429"]
        m = make(srv)
        resp = await m.generate(ask())
        await m.aclose()
    gap = srv.request_times[1] - srv.request_times[0]
    assert resp.retries == 1 and gap >= 0.55  # backoff alone would be ≤ 0.02 s


async def test_retries_run_out_into_model_error() -> None:
    with WireServer() as srv:
        srv.faults = ["500"] * 5
        m = make(srv, max_retries=2)
        with pytest.raises(ModelError, match=r"HTTP 500.*gave up after 2 retries"):
            await m.generate(ask())
        await m.aclose()
    assert len(srv.requests) == 3


async def test_other_4xx_fail_fast_with_provider_message() -> None:
    with WireServer() as srv:
        srv.faults = ["400"]
        m = make(srv)
        with pytest.raises(ModelError, match="max_tokens: too large for model"):
            await m.generate(ask())
        await m.aclose()
    assert len(srv.requests) == 1


async def test_malformed_json_body_is_a_clear_model_error() -> None:
    with WireServer() as srv:
        srv.faults = ["badjson"]
        m = make(srv)
        with pytest.raises(ModelError, match="not valid JSON"):
            await m.generate(ask())
        await m.aclose()


async def test_empty_choices_is_a_clear_model_error() -> None:
    def reply(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return {**openai_chat(), "choices": []}

    with WireServer(reply=reply) as srv:
        m = make(srv)
        with pytest.raises(ModelError, match="no choices"):
            await m.generate(ask())
        await m.aclose()


async def test_bad_tool_arguments_reach_the_scaffold_as_raw_text() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "bash", "arguments": '{"cmd": "ls'}}
    with WireServer(reply=lambda p, b: openai_chat(tool_calls=[call])) as srv:
        m = make(srv)
        resp = await m.generate(ask(tools=[ToolSpec(name="bash")]))
        await m.aclose()
    assert resp.choices[0].tool_calls[0].arguments == '{"cmd": "ls'


def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"\$OPENAI_API_KEY"):
        OpenAIModel(ModelConfig(id="gpt", provider="openai", model="gpt-4o-mini"))


def test_transport_defaults_and_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    hosted = OpenAIModel(ModelConfig(id="gpt", provider="openai", model="gpt-4o-mini"))
    local = OpenAIModel(ModelConfig(id="l", provider="openai", base_url="http://127.0.0.1:9/v1"))
    assert (hosted.transport, local.transport) == ("sdk", "httpx")
    with pytest.raises(ConfigError, match="options.transport must be one of auto, httpx, sdk"):
        OpenAIModel(ModelConfig(id="x", provider="openai", options={"transport": "curl"}))
    with pytest.raises(ConfigError, match="transport httpx needs a base_url"):
        OpenAIModel(ModelConfig(id="x", provider="openai", options={"transport": "httpx"}))


async def test_missing_usage_block_is_warned_not_silent(caplog: pytest.LogCaptureFixture) -> None:
    def reply(path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = openai_chat()
        del resp["usage"]
        return resp

    with WireServer(reply=reply) as srv, caplog.at_level("WARNING", logger="ptebench.models"):
        m = make(srv)
        resp = await m.generate(ask())
        await m.generate(ask())
        await m.aclose()
    assert resp.usage.total_tokens == 0 and resp.text == "hello"
    assert sum("reports no usage" in r.getMessage() for r in caplog.records) == 1
