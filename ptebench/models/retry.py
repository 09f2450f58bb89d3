"""Retries and rate limits for remote model providers.

The policy is ours, not the SDK's: provider clients are built with ``max_retries=0`` and every
failure goes through ``classify_sdk_error`` →

* **transient** (429, 408, 409, 5xx, timeouts, dropped connections): retried with exponential
  jitter (tenacity), a 429's ``Retry-After`` / ``retry-after-ms`` honoured when it says longer;
* **fatal** (every other 4xx, a body that is not JSON): a ``ModelError`` carrying the
  provider's own message, at once.

``CallLimiter`` caps calls in flight per model and, optionally, call starts per minute.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from ptebench.errors import ContextLengthError, ModelError
from ptebench.records import Record

T = TypeVar("T")

RETRY_STATUS = frozenset({408, 409, 429})
"""4xx statuses that mean "try again" (timeout, conflict/lock, rate limit); 5xx always do."""

_CONTEXT_RE = re.compile(
    r"context_length_exceeded|maximum context length|context length|prompt is too long"
    r"|exceeds? the (?:available )?context|exceed_context_size|exceeds? (?:the )?context window",
    re.IGNORECASE,
)
"""How providers say a request is over the context window: OpenAI (code
context_length_exceeded), Anthropic ("prompt is too long: N tokens > M maximum"), vLLM
("This model's maximum context length is ..."), llama.cpp (exceed_context_size_error),
llama-cpp-python ("Requested tokens (N) exceed context window of M")."""


def context_message(text: str) -> bool:
    """The provider's words say the request is over the context window."""
    return bool(_CONTEXT_RE.search(text))


def is_context_error(status: int, exc: Any) -> bool:
    """A 400/413 whose body says the request is longer than the model's context window."""
    if status not in (400, 413):
        return False
    body = getattr(exc, "body", None)
    code = body.get("code") if isinstance(body, dict) else None
    return code == "context_length_exceeded" or context_message(_provider_message(exc))


class RetryPolicy(Record):
    """How transient failures are retried."""

    max_retries: int = 6
    """Retries after the first attempt (0 = fail on the first transient error)."""
    initial_s: float = 1.0
    """Scale of the exponential backoff: the k-th retry waits up to initial_s·2^k (jittered)."""
    max_wait_s: float = 60.0
    """Cap on any single wait, Retry-After included."""


class TransientError(Exception):
    """A failure worth retrying; ``retry_after`` is the server's requested wait, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _provider_message(exc: Any) -> str:
    """The provider's own error text (the SDK's message already quotes the body)."""
    return str(getattr(exc, "message", None) or exc)


def classify_sdk_error(sdk: Any, exc: BaseException, where: str) -> BaseException:
    """Map an ``openai``/``anthropic`` SDK exception to TransientError or ModelError.

    Both SDKs share the exception hierarchy (APIStatusError, APITimeoutError,
    APIConnectionError, APIResponseValidationError), so one function serves both.
    Anything that is not an SDK error is returned unchanged (a bug: let it surface).
    """
    if isinstance(exc, sdk.APITimeoutError):
        return TransientError(f"{where}: request timed out")
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc
        return TransientError(f"{where}: connection failed: {type(cause).__name__}: {cause}")
    if isinstance(exc, sdk.APIStatusError):
        err: Any = exc
        status = int(err.status_code)
        msg = f"{where}: HTTP {status}: {_provider_message(exc)}"
        if status in RETRY_STATUS or status >= 500:
            return TransientError(msg, parse_retry_after(err.response.headers))
        if is_context_error(status, exc):
            return ContextLengthError(msg)
        return ModelError(msg)
    if isinstance(exc, sdk.APIResponseValidationError):
        return ModelError(f"{where}: malformed response: {_provider_message(exc)}")
    if isinstance(exc, ValueError):
        # json.JSONDecodeError from the SDK parsing a body that is not JSON
        return ModelError(f"{where}: response body is not valid JSON: {exc}")
    return exc


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    jitter = wait_random_exponential(multiplier=policy.initial_s, max=policy.max_wait_s)

    def wait(state: RetryCallState) -> float:
        backoff = jitter(state)
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(max(exc.retry_after, backoff), policy.max_wait_s)
        return backoff

    return wait


async def with_retries(
    attempt: Callable[[], Awaitable[T]], policy: RetryPolicy, where: str
) -> tuple[T, int]:
    """Run ``attempt`` until it succeeds; returns (result, retries used).

    ``attempt`` raises TransientError for what may be retried; anything else propagates.

    Raises:
        ModelError: the retries ran out (the last transient error is quoted).
    """
    retries = -1
    result: T | None = None
    try:
        async for state in AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(policy.max_retries + 1),
            wait=_wait(policy),
            reraise=True,
        ):
            with state:
                retries += 1
                result = await attempt()
    except TransientError as e:
        raise ModelError(f"{e} (gave up after {retries} retries)") from e
    return result, retries  # type: ignore[return-value]  # set by the successful attempt


class CallLimiter:
    """At most ``max_concurrency`` calls in flight and, optionally, ``rpm`` starts per minute.

    Created lazily per event loop by the providers (asyncio primitives bind to one loop).
    """

    def __init__(self, max_concurrency: int, rpm: float | None = None) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be ≥ 1, got {max_concurrency}")
        if rpm is not None and rpm <= 0:
            raise ValueError(f"rpm must be > 0, got {rpm}")
        self._sem = asyncio.Semaphore(max_concurrency)
        self._interval = 60.0 / rpm if rpm else 0.0
        self._next_start = 0.0
        self.in_flight = 0
        self.peak_in_flight = 0

    async def __aenter__(self) -> CallLimiter:
        await self._sem.acquire()
        if self._interval:
            # book the next free start slot before sleeping, so waiters queue in order
            now = time.monotonic()
            slot = max(now, self._next_start)
            self._next_start = slot + self._interval
            if slot > now:
                await asyncio.sleep(slot - now)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.in_flight -= 1
        self._sem.release()
