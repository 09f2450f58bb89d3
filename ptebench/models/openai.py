"""OpenAI chat completions (with tools) and text completions: plain JSON over httpx for a
``base_url`` server, the async ``openai`` SDK for OpenAI's own API (``options.transport``).

``base_url`` makes this provider serve any OpenAI-compatible server (vLLM, llama.cpp,
SGLang, TGI, LM Studio, ...): there is no class per server. ``completion: true`` uses the
text-completion endpoint, for base models; chat messages then become a labelled transcript
ending with the scaffold's cue (``prompt_text``), and the exact prompt string sent is returned
in ``GenerateResponse.prompt_sent`` for the episode's transcript.

Per-model request options (``options`` of the model config): ``reasoning_effort`` (OpenAI
reasoning models; the reply cap is then sent as ``max_completion_tokens``),
``send_temperature: false`` (models that reject it), ``transport`` (auto, httpx, sdk: see
``transport_of``), ``extra_body`` (provider-specific fields
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

from ptebench.errors import ConfigError, ModelError
from ptebench.models.base import (
    Choice,
    GenerateRequest,
    GenerateResponse,
    Message,
    ModelConfig,
    ToolCall,
)
from ptebench.models.jsonhttp import JsonClient
from ptebench.models.remote import RemoteModel, log
from ptebench.records import Usage
from ptebench.registry import register

MAX_REFILLS = 8
"""Extra requests made to collect n samples from a server that ignores n."""

TRANSPORTS = ("auto", "httpx", "sdk")


def transport_of(config: ModelConfig) -> str:
    """``options.transport``: httpx (the JSON body posted as built, ``jsonhttp``) or sdk (the
    ``openai`` SDK's methods). auto, the default: httpx with a ``base_url`` (local servers,
    where per-call CPU is the limit), the SDK for OpenAI's hosted API (its conventions —
    organisation and project headers — and per-call latency dwarfing the overhead).

    Raises:
        ConfigError: an unknown transport, or httpx without a base_url.
    """
    value = config.options.get("transport", "auto")
    if value not in TRANSPORTS:
        raise ConfigError(f"model {config.id!r}: options.transport must be one of "
                          f"{', '.join(TRANSPORTS)}, got {value!r}")
    if value == "auto":
        return "httpx" if config.base_url else "sdk"
    if value == "httpx" and not config.base_url:
        raise ConfigError(f"model {config.id!r}: options.transport httpx needs a base_url "
                          "(OpenAI's hosted API goes through the SDK: transport sdk or auto)")
    return str(value)


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


def _get(obj: Any, name: str) -> Any:
    """A field of a response part: a parsed JSON object (the httpx transport) or the SDK's
    typed object (the sdk transport)."""
    if isinstance(obj, dict):
        return obj.get(name)  # type: ignore[union-attr]
    return getattr(obj, name, None)


def usage_of(raw: Any) -> Usage:
    """OpenAI usage block → Usage (missing details count as 0)."""
    if raw is None:
        return Usage()
    prompt_details = _get(raw, "prompt_tokens_details")
    completion_details = _get(raw, "completion_tokens_details")
    return Usage(
        prompt_tokens=int(_get(raw, "prompt_tokens") or 0),
        completion_tokens=int(_get(raw, "completion_tokens") or 0),
        cached_prompt_tokens=int(_get(prompt_details, "cached_tokens") or 0),
        reasoning_tokens=int(_get(completion_details, "reasoning_tokens") or 0),
    )


def _reasoning_text(msg: Any) -> str | None:
    """OpenAI-compatible servers' thinking text: ``reasoning_content`` (vLLM, DeepSeek) or
    ``reasoning`` (OpenRouter, llama.cpp); OpenAI's own API returns none."""
    for name in ("reasoning_content", "reasoning"):
        value = _get(msg, name)
        if isinstance(value, str) and value:
            return value
    return None


def _tool_call(tc: Any) -> ToolCall:
    fn = _get(tc, "function")
    args = _get(fn, "arguments")
    return ToolCall(id=str(_get(tc, "id") or ""), name=str(_get(fn, "name") or ""),
                    arguments=args if isinstance(args, str) else json.dumps(args))


def _chat_choice(raw: Any) -> Choice:
    msg = _get(raw, "message")
    if msg is None:
        raise ValueError("a choice without a message")
    return Choice(
        text=_get(msg, "content") or "",
        tool_calls=[_tool_call(tc) for tc in (_get(msg, "tool_calls") or [])],
        finish_reason=_get(raw, "finish_reason"),
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
        self.transport = transport_of(config)

    def _make_client(self) -> Any:
        if self.transport == "httpx":
            assert self.config.base_url is not None  # transport_of requires it
            return JsonClient(self.config.base_url, self._api_key(), self.config.timeout_s,
                              self.config.max_concurrency, self.where)
        return self.sdk.AsyncOpenAI(
            api_key=self._api_key(),
            base_url=self.config.base_url,
            timeout=self.config.timeout_s,
            max_retries=0,  # the retry policy is ours (ptebench.models.retry)
        )

    async def _post(self, client: Any, path: str, params: dict[str, Any]) -> Any:
        """One request: the JSON body as built (httpx), or through the SDK's method."""
        if isinstance(client, JsonClient):
            extra = params.pop("extra_body", None)
            return await client.post(path, {**params, **(extra or {})})
        endpoint = client.completions if path == "completions" else client.chat.completions
        return await endpoint.create(**params)

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
            raw = await self._post(client, "completions", {**params, "prompt": prompt})
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
            raw = await self._post(client, "chat/completions", {**params, "messages": messages})
        return self._parse(raw)

    def _parse(self, raw: Any) -> GenerateResponse:
        if isinstance(raw, str | bytes):
            raise ModelError(f"{self.where}: response is not a JSON object: {raw[:200]!r}")
        try:
            raw_choices = list(_get(raw, "choices") or [])
            if not raw_choices:
                raise ModelError(f"{self.where}: response has no choices")
            if self.config.completion:
                choices = [Choice(text=_get(c, "text") or "", finish_reason=_get(c, "finish_reason"))
                           for c in raw_choices]
            else:
                choices = [_chat_choice(c) for c in raw_choices]
            usage = _get(raw, "usage")
            if usage is None and not self._warned_no_usage:
                # zero tokens would mean zero FLOPs: say so once rather than stay silent
                self._warned_no_usage = True
                log.warning("%s: the server reports no usage; token counts are 0", self.where)
            return GenerateResponse(
                choices=choices, usage=usage_of(usage), model=str(_get(raw, "model") or "")
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
