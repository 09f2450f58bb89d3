"""Reasoning models: per-model request options reach the wire (OpenAI reasoning_effort and
extra_body, Anthropic extended thinking), thinking text comes back as Choice.reasoning, and
thinking tokens are counted and priced."""

from __future__ import annotations

from typing import Any

import pytest

from ptebench.errors import ModelError
from ptebench.models.anthropic import AnthropicModel
from ptebench.models.base import GenerateRequest, Message, ModelConfig
from ptebench.models.catalog import ModelCard
from ptebench.models.meter import MeteredModel, Trace
from ptebench.models.openai import OpenAIModel
from ptebench.records import Limits
from tests.models.wire import WireServer, anthropic_message, openai_chat

FAST = {"retry_initial_s": 0.01, "retry_max_wait_s": 0.5}
ASK = GenerateRequest(messages=[Message(role="user", content="6*7?")], max_tokens=2000, temperature=0.3)
CARD = ModelCard(name="r", price_input_per_mtok=1.0, price_output_per_mtok=4.0)


def openai_reasoning(path: str, body: dict[str, Any]) -> dict[str, Any]:
    out = openai_chat("42", usage={
        "prompt_tokens": 10, "completion_tokens": 250, "total_tokens": 260,
        "completion_tokens_details": {"reasoning_tokens": 240},
    })
    out["choices"][0]["message"]["reasoning_content"] = "6 times 7 is 42."
    return out


async def test_openai_reasoning_options_and_thinking_tokens() -> None:
    with WireServer(reply=openai_reasoning) as srv:
        opts = {**FAST, "reasoning_effort": "high", "send_temperature": False,
                "extra_body": {"chat_template_kwargs": {"enable_thinking": True}}}
        model = OpenAIModel(ModelConfig(id="o", provider="openai", model="o-stub",
                                        base_url=srv.url + "/v1", options=opts))
        trace = Trace()
        resp = await MeteredModel("o", model, CARD, trace, Limits()).generate(ASK)
        await model.aclose()
    body = srv.requests[0]["body"]
    assert body["reasoning_effort"] == "high" and body["max_completion_tokens"] == 2000
    assert "max_tokens" not in body and "temperature" not in body
    assert body["chat_template_kwargs"] == {"enable_thinking": True}
    assert resp.text == "42" and resp.choices[0].reasoning == "6 times 7 is 42."
    call = trace.calls[0]
    assert call.usage.reasoning_tokens == 240
    # thinking is billed as output: 10 input + 250 output tokens at the card's prices
    assert call.cost_usd == pytest.approx((10 * 1.0 + 250 * 4.0) / 1e6)


def anthropic_thinking(path: str, body: dict[str, Any]) -> dict[str, Any]:
    return anthropic_message(
        [{"type": "thinking", "thinking": "Multiply: 42.", "signature": "sig"},
         {"type": "text", "text": "42"}],
        usage={"input_tokens": 12, "output_tokens": 300},
    )


async def test_anthropic_extended_thinking() -> None:
    with WireServer(reply=anthropic_thinking) as srv:
        opts = {**FAST, "thinking_budget": 1024, "extra_body": {"metadata": {"user_id": "u1"}}}
        model = AnthropicModel(ModelConfig(id="c", provider="anthropic", model="claude-stub",
                                           base_url=srv.url, options=opts))
        trace = Trace()
        resp = await MeteredModel("c", model, CARD, trace, Limits()).generate(ASK)
        await model.aclose()
    body = srv.requests[0]["body"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "temperature" not in body and body["metadata"] == {"user_id": "u1"}
    assert resp.text == "42" and resp.choices[0].reasoning == "Multiply: 42."
    assert trace.calls[0].cost_usd == pytest.approx((12 * 1.0 + 300 * 4.0) / 1e6)


def test_anthropic_thinking_budget_must_be_a_positive_integer() -> None:
    with pytest.raises(ModelError, match="thinking_budget"):
        AnthropicModel(ModelConfig(id="c", provider="anthropic", base_url="http://127.0.0.1:9",
                                   options={"thinking_budget": "lots"}))


async def test_thinking_text_is_kept_in_the_transcript_and_shown() -> None:
    from ptebench.models.transcript import Transcript
    from ptebench.records import Episode, EpisodeSpec
    from ptebench.results.show import render_markdown

    with WireServer(reply=openai_reasoning) as srv:
        model = OpenAIModel(ModelConfig(id="o", provider="openai", model="o-stub",
                                        base_url=srv.url + "/v1", options=FAST))
        trace = Trace()
        await MeteredModel("o", model, CARD, trace, Limits()).generate(ASK)
        await model.aclose()
    stored = trace.transcript.finish("e1", "42", None, None, None)
    back = Transcript.model_validate_json(stored.model_dump_json())  # as the store keeps it
    assert back.calls[0].choices[0].reasoning == "6 times 7 is 42."
    spec = EpisodeSpec(episode_id="e1", model="o", scaffold="direct", scaffold_label="direct",
                       task_family="t", task_id="1", epoch=0, seed=0)
    page = render_markdown(Episode(run_id="r", spec=spec, calls=trace.calls), back, full=True)
    assert "thinking" in page and "6 times 7 is 42." in page
