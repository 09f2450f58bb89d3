"""Completion mode on the real Gemma 3 270M (a base model): react's replies start with the
cued field and keep the Thought/Action format, because the prompt is a labelled transcript
ending with ``Assistant: Thought:`` and the turn stops end the reply."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from ptebench import registry
from ptebench.models.meter import LimitReached, MeteredModel, Trace
from ptebench.records import Limits
from ptebench.scaffolds.base import Environment, EpisodeContext
from ptebench.tasks.arith import Arith
from ptebench.tasks.base import TaskOptions
from tests.models.test_llama_e2e import gguf_path, llama_config


@pytest.mark.llama
@pytest.mark.slow
async def test_react_replies_of_a_base_model_start_with_the_cue(tmp_path: Path) -> None:
    model = registry.get("model", "vllm")(llama_config(tmp_path / "llama.log", gguf_path()))
    react = registry.get("scaffold", "react")
    params = react.Params.model_validate({"max_steps": 2, "parse_retries": 0, "max_tokens": 48})
    traces: list[Trace] = []
    try:
        for inst in Arith().instances(TaskOptions(limit=3)):
            trace = Trace()
            limits = Limits(steps=2)
            metered = MeteredModel("gemma-local", model, None, trace, limits)
            # no sandbox: an action the model writes is recorded, never run
            ctx = EpisodeContext(task=inst.view(), model=metered,
                                 env=Environment(None, list(inst.tools), limits, trace),
                                 limits=limits, trace=trace, seed=0)
            with contextlib.suppress(LimitReached):  # the step budget ends the episode
                await react(params).run(ctx)
            traces.append(trace)
    finally:
        await model.aclose()
    acts = [(t.transcript.transcript, c.index) for t in traces for c in t.transcript.transcript.calls
            if c.cue == "Thought:"]
    assert len(acts) >= 3
    for t, i in acts:
        sent = t.prompt_sent(i)
        assert sent is not None and sent.endswith("\n\nAssistant: Thought:")
        assert "\n\nUser: " in sent  # role labels, not bare contents
        resp = t.response(i)
        assert resp is not None
        reply = resp.choices[0].text
        generated = reply[len("Thought:"):]
        print(f"\ncall {i}: {reply!r}")
        assert reply.startswith("Thought:") and generated.strip()
        # the model keeps the scaffold's format (its own Action line) and ends its turn
        assert "Action:" in generated, reply
        assert "\nUser:" not in generated and "\nObservation:" not in generated
