"""The context budget: keep a chat request inside the model's context window.

An agent loop resends its whole history on every call, and observations (up to
``Limits.tool_output_bytes`` each) dominate it. When a request's estimated size passes the
budget, the oldest observations — ``tool`` messages and user turns that begin with
``Observation`` — are replaced by a short marker, oldest first, until it fits. The system
prompt, the task, every assistant turn and the most recent observations are kept, so the
history stays valid for both chat APIs (every tool call keeps its answer).

Sizes are estimated without the model's tokenizer: ``CHARS_PER_TOKEN`` characters per
token, a conservative figure for English and code (BPE tokenizers average ~4 on English).
What the estimate misses, the provider reports: a context-length error ends the episode as
``limit`` (see MeteredModel), keeping the best submission so far.
"""

from __future__ import annotations

from ptebench.models.base import GenerateRequest, Message

CHARS_PER_TOKEN = 3.0
"""Characters per token assumed when estimating a request's size."""

KEEP_RECENT = 2
"""Observations at the end of the history that are never elided."""

MARKER = "[observation elided to fit the context window: {n} characters]"


def estimate_tokens(messages: list[Message]) -> int:
    """A conservative token count of ``messages`` (content, tool calls, per-message overhead)."""
    chars = 0
    for m in messages:
        chars += len(m.content) + 16
        chars += sum(len(tc.name) + len(tc.arguments) + 16 for tc in m.tool_calls)
    return int(chars / CHARS_PER_TOKEN) + 1


def _is_observation(m: Message) -> bool:
    return m.role == "tool" or (m.role == "user" and m.content.lstrip().startswith("Observation"))


def fit_context(request: GenerateRequest, window: int) -> tuple[GenerateRequest, int]:
    """``request`` with its oldest observations elided until the prompt plus the reply cap
    fit ``window`` tokens; returns (request, number of observations elided).

    The request is returned unchanged when it fits, has no messages, or nothing may be elided.
    """
    if request.prompt is not None or not request.messages:
        return request, 0
    budget = window - (request.max_tokens or 0)
    messages = list(request.messages)
    if estimate_tokens(messages) <= budget:
        return request, 0
    candidates = [i for i, m in enumerate(messages) if _is_observation(m)]
    candidates = candidates[: max(len(candidates) - KEEP_RECENT, 0)]
    elided = 0
    for i in candidates:
        m = messages[i]
        marker = MARKER.format(n=len(m.content))
        if len(m.content) <= len(marker):
            continue
        prefix = "Observation: " if m.role == "user" else ""
        messages[i] = m.model_copy(update={"content": prefix + marker})
        elided += 1
        if estimate_tokens(messages) <= budget:
            break
    if not elided:
        return request, 0
    return request.model_copy(update={"messages": messages}), elided
