"""OpenAI chat completions (with tools) and text completions, via the async ``openai`` SDK.

``base_url`` makes this provider serve any OpenAI-compatible server (vLLM, llama.cpp,
SGLang, TGI, LM Studio, ...): there is no class per server. ``completion: true`` uses the
text-completion endpoint, for base models; chat messages then become a labelled transcript
ending with the scaffold's cue (``prompt_text``), and the exact prompt string sent is returned
in ``GenerateResponse.prompt_sent`` for the episode's transcript.

Per-model request options (``options`` of the model config): ``reasoning_effort`` (OpenAI
reasoning models; the reply cap is then sent as ``max_completion_tokens``),
``send_temperature: false`` (models that reject it), ``extra_body`` (provider-specific fields
merged into the request body, e.g. vLLM's ``chat_template_kwargs``). Thinking text an
OpenAI-compatible server returns is kept as ``Choice.reasoning``.

Usage is normalised: ``prompt_tokens_details.cached_tokens`` → cached prompt tokens,
``completion_tokens_details.reasoning_tokens`` → reasoning tokens. A server that returns
fewer than n choices (llama.cpp ignores n) is asked again until n samples are in, and the
usage of every request is summed. Tool-call arguments are passed on as the raw text the
model wrote, even when it is not valid JSON: the scaffold turns that into an observation.
"""

from __future__ import annotations

import json
from typing import Any

from ptebench.errors import ModelError
from ptebench.models.base import (
    Choice,
    GenerateRequest,
    GenerateResponse,
    Message,
    ModelConfig,
    ToolCall,
)
from ptebench.models.remote import RemoteModel, log
from ptebench.records import Usage
from ptebench.registry import register

MAX_REFILLS = 8
"""Extra requests made to collect n samples from a server that ignores n."""


def chat_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """ptebench messages → OpenAI chat wire format."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content})
            continue
        msg: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            msg["tool_calls"] = [
                {
                    "id": tc.id,
                    "type": "function",
                    "function": {"name": tc.name, "arguments": tc.arguments},
                }
                for tc in m.tool_calls
            ]
        out.append(msg)
    return out


ROLE_LABELS: dict[str, str] = {"user": "User", "assistant": "Assistant", "tool": "Tool"}
"""Speaker labels of the completion-mode transcript (the system prompt goes unlabelled on top)."""

TURN_STOPS = ["\nUser:", "\nAssistant:"]
"""Stop sequences added to completion-mode calls built from messages, so a base model ends
its turn instead of writing the user's next one."""


def prompt_text(request: GenerateRequest) -> str:
    """The text-completion prompt for a base model.

    A raw ``prompt`` is sent as it is (followed by the cue, if any). Chat messages become a
    transcript with speaker labels — the system prompt on top, then ``User: ...``,
    ``Assistant: ...`` and ``Tool: ...`` turns (an assistant's tool calls written as
    ``Tool call: name(arguments)``) separated by blank lines — ending with ``Assistant:`` and
    the request's ``cue`` (react: ``Assistant: Thought:``), so the model writes its own turn
    in the scaffold's format rather than continuing the last observation.
    """
    cue = request.cue or ""
    if request.prompt is not None:
        return request.prompt + cue
    parts: list[str] = []
    for m in request.messages:
        if m.role == "system":
            parts.append(m.content)
            continue
        text = m.content
        for tc in m.tool_calls:
            text += ("\n" if text else "") + f"Tool call: {tc.name}({tc.arguments})"
        parts.append(f"{ROLE_LABELS[m.role]}: {text}")
    parts.append("Assistant:" + (f" {cue}" if cue else ""))
    return "\n\n".join(parts)


def completion_stops(request: GenerateRequest) -> list[str]:
    """The request's stop sequences plus, for a prompt built from messages, the turn stops."""
    if request.prompt is not None:
        return list(request.stop)
    return list(request.stop) + [s for s in TURN_STOPS if s not in request.stop]


def usage_of(raw: Any) -> Usage:
    """OpenAI usage block → Usage (missing details count as 0)."""
    if raw is None:
        return Usage()
    prompt_details = getattr(raw, "prompt_tokens_details", None)
    completion_details = getattr(raw, "completion_tokens_details", None)
    return Usage(
        prompt_tokens=int(getattr(raw, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(raw, "completion_tokens", 0) or 0),
        cached_prompt_tokens=int(getattr(prompt_details, "cached_tokens", 0) or 0),
        reasoning_tokens=int(getattr(completion_details, "reasoning_tokens", 0) or 0),
    )


def _reasoning_text(msg: Any) -> str | None:
    """OpenAI-compatible servers' thinking text: ``reasoning_content`` (vLLM, DeepSeek) or
    ``reasoning`` (OpenRouter, llama.cpp); OpenAI's own API returns none."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(msg, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def _chat_choice(raw: Any) -> Choice:
    msg = raw.message
    calls = [
        ToolCall(
            id=str(tc.id or ""),
            name=str(tc.function.name or ""),
            arguments=tc.function.arguments if isinstance(tc.function.arguments, str)
            else json.dumps(tc.function.arguments),
        )
        for tc in (msg.tool_calls or [])
    ]
    return Choice(
        text=msg.content or "",
        tool_calls=calls,
        finish_reason=raw.finish_reason,
        reasoning=_reasoning_text(msg),
    )


@register("model", "openai")
class OpenAIModel(RemoteModel):
    """Chat (default) or text completions (``completion: true``) against an OpenAI API."""

    sdk_module = "openai"
    extra = "openai"
    default_key_env = "OPENAI_API_KEY"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.model_name = config.model or config.id
        self._warned_no_usage = False

    def _make_client(self) -> Any:
        return self.sdk.AsyncOpenAI(
            api_key=self._api_key(),
            base_url=self.config.base_url,
            timeout=self.config.timeout_s,
            max_retries=0,  # the retry policy is ours (ptebench.models.retry)
        )

    def _params(self, request: GenerateRequest, n: int) -> dict[str, Any]:
        opts = self.config.options
        params: dict[str, Any] = {"model": self.model_name}
        if opts.get("send_temperature", True):
            params["temperature"] = request.temperature
        if n != 1:
            params["n"] = n
        effort = opts.get("reasoning_effort")
        if effort is not None:
            # reasoning models take reasoning_effort and count the reply cap, thinking
            # included, as max_completion_tokens (they reject max_tokens)
            params["reasoning_effort"] = effort
        if request.max_tokens is not None:
            key = "max_completion_tokens" if effort is not None else "max_tokens"
            params[key] = request.max_tokens
        extra = opts.get("extra_body")
        if isinstance(extra, dict) and extra:
            params["extra_body"] = dict(extra)
        if request.stop:
            params["stop"] = request.stop
        if request.seed is not None:
            params["seed"] = request.seed
        return params

    async def _once(self, client: Any, request: GenerateRequest, n: int) -> GenerateResponse:
        params = self._params(request, n)
        if self.config.completion:
            prompt = prompt_text(request)
            stops = completion_stops(request)
            if stops:
                params["stop"] = stops
            raw = await client.completions.create(prompt=prompt, **params)
            resp = self._parse(raw)
            if request.cue:  # the reply reads as in chat mode: the cue, then what was generated
                resp = resp.model_copy(update={"choices": [
                    c.model_copy(update={"text": request.cue + c.text}) for c in resp.choices]})
            return resp.model_copy(update={"prompt_sent": prompt})
        else:
            messages = (
                [{"role": "user", "content": request.prompt}]
                if request.prompt is not None
                else chat_messages(request.messages)
            )
            if request.tools:
                params["tools"] = [
                    {
                        "type": "function",
                        "function": {
                            "name": t.name,
                            "description": t.description,
                            "parameters": t.parameters or {"type": "object", "properties": {}},
                        },
                    }
                    for t in request.tools
                ]
            raw = await client.chat.completions.create(messages=messages, **params)
        return self._parse(raw)

    def _parse(self, raw: Any) -> GenerateResponse:
        if isinstance(raw, str | bytes):
            raise ModelError(f"{self.where}: response is not a JSON object: {raw[:200]!r}")
        try:
            raw_choices = list(raw.choices or [])
            if not raw_choices:
                raise ModelError(f"{self.where}: response has no choices")
            if self.config.completion:
                choices = [
                    Choice(text=c.text or "", finish_reason=c.finish_reason) for c in raw_choices
                ]
            else:
                choices = [_chat_choice(c) for c in raw_choices]
            if raw.usage is None and not self._warned_no_usage:
                # zero tokens would mean zero FLOPs: say so once rather than stay silent
                self._warned_no_usage = True
                log.warning("%s: the server reports no usage; token counts are 0", self.where)
            return GenerateResponse(
                choices=choices, usage=usage_of(raw.usage), model=str(raw.model or "")
            )
        except (AttributeError, TypeError, KeyError, ValueError) as e:
            raise ModelError(
                f"{self.where}: malformed response ({type(e).__name__}: {e})"
            ) from e

    async def _attempt(self, client: Any, request: GenerateRequest) -> GenerateResponse:
        resp = await self._once(client, request, request.n)
        refills = 0
        while len(resp.choices) < request.n and refills < MAX_REFILLS:
            refills += 1
            more = await self._once(client, request, request.n - len(resp.choices))
            resp = GenerateResponse(
                choices=resp.choices + more.choices, usage=resp.usage + more.usage, model=resp.model,
                prompt_sent=resp.prompt_sent,
            )
        return resp
