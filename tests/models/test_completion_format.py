"""Completion mode (base models): a labelled transcript ending with the scaffold's cue, turn
stops, and the exact prompt string recorded in the episode's transcript."""

from __future__ import annotations

from ptebench.models.base import GenerateRequest, Message, ModelConfig
from ptebench.models.meter import MeteredModel, Trace
from ptebench.models.openai import OpenAIModel
from ptebench.records import Limits
from tests.models.wire import WireServer, openai_completion


def _model(srv: WireServer) -> OpenAIModel:
    return OpenAIModel(ModelConfig(id="base", provider="openai", model="base-model",
                                   base_url=srv.url + "/v1", completion=True, timeout_s=5.0))


async def test_messages_become_a_labelled_transcript_ending_with_the_cue() -> None:
    history = [
        Message(role="system", content="Solve it. Reply as Thought: ... then Action: tool: input."),
        Message(role="user", content="What is 2+2?"),
        Message(role="assistant", content="Thought: add.\nAction: python: print(2+2)"),
        Message(role="user", content="Observation: 4"),
    ]
    with WireServer(reply=lambda p, b: openai_completion(text=" I know it.\nAction: submit: 4")) as srv:
        m = _model(srv)
        trace = Trace()
        metered = MeteredModel("base", m, None, trace, Limits())
        resp = await metered.generate(GenerateRequest(messages=history, cue="Thought:",
                                                      stop=["\nObservation:"], max_tokens=20))
        await m.aclose()
    body = srv.requests[0]["body"]
    assert srv.requests[0]["path"] == "/v1/completions"
    assert body["prompt"] == (
        "Solve it. Reply as Thought: ... then Action: tool: input.\n\n"
        "User: What is 2+2?\n\n"
        "Assistant: Thought: add.\nAction: python: print(2+2)\n\n"
        "User: Observation: 4\n\n"
        "Assistant: Thought:"
    )
    assert body["stop"] == ["\nObservation:", "\nUser:", "\nAssistant:"]
    # the reply reads as a chat reply would: the cue, then what the model wrote
    assert resp.text == "Thought: I know it.\nAction: submit: 4"
    t = trace.transcript.transcript
    assert t.prompt_sent(0) == body["prompt"]  # the exact string the server received
    assert t.request(0).messages == history and t.request(0).cue == "Thought:"


async def test_a_raw_prompt_is_sent_as_it_is() -> None:
    with WireServer(reply=lambda p, b: openai_completion(text="    return 1")) as srv:
        m = _model(srv)
        trace = Trace()
        metered = MeteredModel("base", m, None, trace, Limits())
        await metered.generate(GenerateRequest(prompt="def f():\n", stop=["\ndef "]))
        await m.aclose()
    body = srv.requests[0]["body"]
    assert body["prompt"] == "def f():\n" and body["stop"] == ["\ndef "]
    assert trace.transcript.transcript.prompt_sent(0) == "def f():\n"
