"""What every HTTP provider shares: limits, retries, the response cache, one client per loop.

A subclass says how to build its SDK client and how to make one attempt; this base wraps the
attempt in the per-model ``CallLimiter``, maps SDK exceptions through
``classify_sdk_error`` and retries transient ones with ``with_retries``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from ptebench.errors import ConfigError, ModelError
from ptebench.models.base import GenerateRequest, GenerateResponse, ModelConfig
from ptebench.models.cache import ResponseCache
from ptebench.models.retry import (
    CallLimiter,
    RetryPolicy,
    TransientError,
    classify_sdk_error,
    with_retries,
)

log = logging.getLogger("ptebench.models")


class RemoteModel:
    """Base of the openai and anthropic providers."""

    sdk_module: str = ""
    extra: str = ""
    default_key_env: str = ""

    def __init__(self, config: ModelConfig) -> None:
        from ptebench.errors import require

        self.config = config
        self.sdk: Any = require(self.sdk_module, self.extra)
        self.policy = RetryPolicy(
            max_retries=config.max_retries,
            initial_s=_float_option(config, "retry_initial_s", 1.0),
            max_wait_s=_float_option(config, "retry_max_wait_s", 60.0),
        )
        self.cache = ResponseCache.from_config(config)
        self.where = f"{config.provider} model {config.id!r}"
        self.max_response_chars = int(_float_option(config, "max_response_chars",
                                                    MAX_RESPONSE_CHARS))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._limiter: CallLimiter | None = None
        # fail at construction, not at the first call, on a missing key for a hosted API
        self._api_key()

    def _api_key(self) -> str:
        env = self.config.api_key_env or self.default_key_env
        key = os.environ.get(env)
        if key:
            return key
        if self.config.base_url:
            return "EMPTY"  # local OpenAI/Anthropic-compatible servers take any key
        raise ConfigError(
            f"model {self.config.id!r} ({self.config.provider}): set the API key in ${env}"
            + ("" if self.config.api_key_env else " (or name another variable with api_key_env)")
        )

    def _make_client(self) -> Any:
        raise NotImplementedError

    def _bound(self) -> tuple[Any, CallLimiter]:
        """The SDK client and limiter of the running loop (re-made if the loop changed)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._client is None or self._limiter is None:
            self._loop = loop
            self._client = self._make_client()
            self._limiter = CallLimiter(self.config.max_concurrency, self.config.rpm)
        return self._client, self._limiter

    @property
    def limiter(self) -> CallLimiter | None:
        return self._limiter

    async def _attempt(self, client: Any, request: GenerateRequest) -> GenerateResponse:
        raise NotImplementedError

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """One logical call: cache, then attempts with retries under the model's limits.

        Raises:
            ModelError: a non-retryable provider error, a malformed response, or retries spent.
        """
        if self.cache is not None:
            hit = self.cache.get(request)
            if hit is not None:
                return hit
        resp = await self._generate(request)
        if self.cache is not None:
            self.cache.put(request, resp)
        return resp

    async def _generate(self, request: GenerateRequest) -> GenerateResponse:
        """One request through the limiter with retries (no cache)."""
        client, limiter = self._bound()

        async def attempt() -> GenerateResponse:
            async with limiter:
                try:
                    # a total deadline: the SDK's timeout bounds each read, so a server
                    # dripping a byte every few seconds never timed out
                    got = await asyncio.wait_for(self._attempt(client, request),
                                                 self.config.timeout_s)
                except TimeoutError:
                    raise TransientError(
                        f"{self.where}: no complete response within timeout_s="
                        f"{self.config.timeout_s:g}s") from None
                except (ModelError, asyncio.CancelledError):
                    raise
                except Exception as e:
                    mapped = classify_sdk_error(self.sdk, e, self.where)
                    if mapped is e:
                        raise
                    raise mapped from e
                return checked_response(got, self.where, self.max_response_chars)

        resp, retries = await with_retries(attempt, self.policy, self.where)
        return resp.model_copy(update={"retries": retries})

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


MAX_RESPONSE_CHARS = 4_000_000
"""Largest response text (all choices) accepted from a provider (``options.max_response_chars``)."""
MAX_USAGE_TOKENS = 100_000_000
"""Token counts above this in one call are not a real usage report."""


def checked_response(resp: GenerateResponse, where: str, max_chars: int) -> GenerateResponse:
    """Refuse what a provider cannot have meant: a response past ``max_chars`` (it would be
    stored whole in episodes.jsonl) and negative or absurd token counts (they would enter
    every FLOP and cost total).

    Raises:
        ModelError: naming the figure and the bound.
    """
    size = sum(len(c.text) for c in resp.choices)
    if size > max_chars:
        raise ModelError(f"{where}: a {size:,}-character response is more than "
                         f"max_response_chars={max_chars:,} (options.max_response_chars)")
    for name, v in resp.usage.model_dump().items():
        if isinstance(v, int) and not 0 <= v <= MAX_USAGE_TOKENS:
            raise ModelError(f"{where}: the provider reported usage.{name}={v}, outside "
                             f"0..{MAX_USAGE_TOKENS:,}: not recorded")
    return resp


def _float_option(config: ModelConfig, name: str, default: float) -> float:
    value = config.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"model {config.id!r}: options.{name} must be a number, got {value!r}")
    return float(value)
