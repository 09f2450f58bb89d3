"""Anthropic messages (with tools), via the async ``anthropic`` SDK.

Mapping onto the common shapes:

* system messages → the top-level ``system`` prompt; consecutive same-role turns are merged
  (the API wants user/assistant alternation); ``tool`` messages → ``tool_result`` blocks in a
  user turn; an assistant's tool calls → ``tool_use`` blocks.
* response ``text`` blocks are joined; ``tool_use`` blocks → ToolCall with the input as JSON.
* stop reasons: end_turn/stop_sequence → stop, max_tokens → length, tool_use → tool_calls;
  others (pause_turn, refusal, ...) pass through unchanged.
* usage: Anthropic's ``input_tokens`` excludes cached tokens, so prompt = input +
  cache_read + cache_creation; cached prompt = cache_read (cache creation is computed, and
  kept as cache_write_prompt_tokens for its 1.25× price).
* temperature is sent unless ``options.send_temperature: false`` (models that reject it) or
  extended thinking is on.
* ``options.thinking_budget: N`` turns on extended thinking with N budget tokens (the reply
  cap must exceed it); thinking blocks become ``Choice.reasoning``. Thinking tokens are part
  of ``output_tokens`` (the API reports no split), so they are counted and priced as
  output. ``options.extra_body`` is merged into the request body.
* n > 1: the API has no n, so n calls are made one after the other and usage is summed.
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
from ptebench.models.remote import RemoteModel
from ptebench.records import Usage
from ptebench.registry import register

DEFAULT_MAX_TOKENS = 4096
"""The API requires max_tokens; used when neither the request nor options.max_tokens sets it."""

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


def _tool_input(arguments: str) -> Any:
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"_raw": arguments}  # a malformed call we replay: keep the text, stay valid
    return value if isinstance(value, dict) else {"value": value}


def to_wire(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """ptebench messages → (system prompt, Anthropic messages)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        blocks: list[dict[str, Any]]
        if m.role == "tool":
            role = "user"
            blocks = [
                {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}
            ]
        else:
            role = m.role
            blocks = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [
                {"type": "tool_use", "id": tc.id, "name": tc.name, "input": _tool_input(tc.arguments)}
                for tc in m.tool_calls
            ]
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def usage_of(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    read = int(getattr(raw, "cache_read_input_tokens", 0) or 0)
    created = int(getattr(raw, "cache_creation_input_tokens", 0) or 0)
    return Usage(
        prompt_tokens=int(getattr(raw, "input_tokens", 0) or 0) + read + created,
        completion_tokens=int(getattr(raw, "output_tokens", 0) or 0),
        cached_prompt_tokens=read,
        cache_write_prompt_tokens=created,
    )


@register("model", "anthropic")
class AnthropicModel(RemoteModel):
    """Claude models through the Messages API."""

    sdk_module = "anthropic"
    extra = "anthropic"
    default_key_env = "ANTHROPIC_API_KEY"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.model_name = config.model or config.id
        mt = config.options.get("max_tokens", DEFAULT_MAX_TOKENS)
        if isinstance(mt, bool) or not isinstance(mt, int) or mt < 1:
            raise ModelError(f"model {config.id!r}: options.max_tokens must be a positive integer")
        self.default_max_tokens = mt
        self.send_temperature = bool(config.options.get("send_temperature", True))
        budget = config.options.get("thinking_budget")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ModelError(f"model {config.id!r}: options.thinking_budget must be a positive integer")
        self.thinking_budget: int | None = budget
        extra = config.options.get("extra_body", {})
        if not isinstance(extra, dict):
            raise ModelError(f"model {config.id!r}: options.extra_body must be a mapping")
        self.extra_body: dict[str, Any] = dict(extra)

    def _make_client(self) -> Any:
        return self.sdk.AsyncAnthropic(
            api_key=self._api_key(),
            base_url=self.config.base_url,
            timeout=self.config.timeout_s,
            max_retries=0,  # the retry policy is ours (ptebench.models.retry)
        )

    async def _attempt(self, client: Any, request: GenerateRequest) -> GenerateResponse:
        if request.prompt is not None:
            system, messages = "", [
                {"role": "user", "content": [{"type": "text", "text": request.prompt}]}
            ]
        else:
            system, messages = to_wire(request.messages)
        params: dict[str, Any] = {
            "model": self.model_name,
            "messages": messages,
            "max_tokens": request.max_tokens or self.default_max_tokens,
        }
        extra_body = dict(self.extra_body)
        if self.thinking_budget is not None:
            # the API rejects a changed temperature with thinking on
            params["thinking"] = {"type": "enabled", "budget_tokens": self.thinking_budget}
        elif self.send_temperature:
            # through extra_body: recent SDK releases dropped the keyword, the API still reads it
            extra_body["temperature"] = request.temperature
        if extra_body:
            params["extra_body"] = extra_body
        if system:
            params["system"] = system
        if request.stop:
            params["stop_sequences"] = request.stop
        if request.tools:
            params["tools"] = [
                {
                    "name": t.name,
                    "description": t.description,
                    "input_schema": t.parameters or {"type": "object", "properties": {}},
                }
                for t in request.tools
            ]
        raw = await client.messages.create(**params)
        return self._parse(raw)

    def _parse(self, raw: Any) -> GenerateResponse:
        if isinstance(raw, str | bytes):
            raise ModelError(f"{self.where}: response is not a JSON object: {raw[:200]!r}")
        try:
            texts: list[str] = []
            thinking: list[str] = []
            calls: list[ToolCall] = []
            for block in raw.content or []:
                if block.type == "text":
                    texts.append(block.text or "")
                elif block.type == "thinking":
                    thinking.append(getattr(block, "thinking", "") or "")
                elif block.type == "tool_use":
                    calls.append(
                        ToolCall(id=str(block.id), name=str(block.name), arguments=json.dumps(block.input))
                    )
            reason = raw.stop_reason
            choice = Choice(
                text="".join(texts),
                tool_calls=calls,
                finish_reason=STOP_REASONS.get(reason, reason) if reason else None,
                reasoning="\n".join(thinking) or None,
            )
            return GenerateResponse(choices=[choice], usage=usage_of(raw.usage), model=str(raw.model or ""))
        except (AttributeError, TypeError, KeyError, ValueError) as e:
            raise ModelError(f"{self.where}: malformed response ({type(e).__name__}: {e})") from e

    async def _generate(self, request: GenerateRequest) -> GenerateResponse:
        if request.n == 1:
            return await super()._generate(request)
        one = request.model_copy(update={"n": 1})
        parts: list[GenerateResponse] = []
        for _ in range(request.n):  # sequential: the samples share the per-model limiter
            parts.append(await super()._generate(one))
        usage = Usage()
        for p in parts:
            usage = usage + p.usage
        return GenerateResponse(
            choices=[c for p in parts for c in p.choices],
            usage=usage,
            model=parts[0].model,
            retries=sum(p.retries for p in parts),
        )
