"""The metered model: the only door from a scaffold to a model.

Every call is logged as a ``ModelCall`` (role, tokens, both FLOP conventions, cost, latency)
into the episode's trace, and the episode's token and dollar budgets are enforced here,
where the spending happens.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from ptebench.errors import ContextLengthError, ModelError
from ptebench.models.accounting import cost_usd, flops_epoch, flops_physical
from ptebench.models.base import GenerateRequest, GenerateResponse, Model
from ptebench.models.catalog import ModelCard
from ptebench.models.context import fit_context
from ptebench.models.transcript import TranscriptRecorder
from ptebench.records import Limits, ModelCall, Step

log = logging.getLogger("ptebench.models")

_warned_models: set[str] = set()
_warned_lock = threading.Lock()


def warn_missing_card(model_id: str, card: ModelCard | None) -> bool:
    """Warn, once per model id per process, that this model's FLOPs will be null.

    Returns True if this call emitted the warning. A card without a parameter count counts
    as missing for FLOPs (its prices, if any, still give a cost).
    """
    if card is not None and card.n_active is not None:
        return False
    with _warned_lock:
        if model_id in _warned_models:
            return False
        _warned_models.add(model_id)
    if card is None:
        log.warning(
            "model %r has no catalog card: its FLOPs and cost are recorded as null "
            "(add a card: see `ptebench models list` and PTEBENCH_CARDS)", model_id
        )
    else:
        log.warning(
            "model %r: card %r has no parameter count: its FLOPs are recorded as null",
            model_id, card.name,
        )
    return True


class LimitReached(Exception):  # noqa: N818 - it is a signal, not an error
    """An episode budget ran out. The runner scores the best submission so far."""

    def __init__(self, which: str, detail: str = "") -> None:
        super().__init__(f"{which} limit reached{': ' + detail if detail else ''}")
        self.which = which


@dataclass
class Trace:
    """Calls and steps of one episode, in the order they happened, and its transcript
    (every request and response, every action's full input and shown output)."""

    calls: list[ModelCall] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)
    transcript: TranscriptRecorder = field(default_factory=TranscriptRecorder)

    def tokens(self) -> int:
        return sum(c.usage.total_tokens for c in self.calls)

    def cost(self) -> float:
        return sum(c.cost_usd or 0.0 for c in self.calls)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0


class MeteredModel:
    """Wraps a Model for one episode: logs each call and enforces the token, dollar and
    context budgets."""

    def __init__(
        self,
        model_id: str,
        model: Model,
        card: ModelCard | None,
        trace: Trace,
        limits: Limits,
        native_tools: bool = False,
    ) -> None:
        self.id = model_id
        self._model = model
        self._card = card
        self._trace = trace
        self._limits = limits
        self.native_tools = native_tools
        """The model takes tools through the provider's tool-calling API (card or config)."""
        warn_missing_card(model_id, card)

    @property
    def context_window(self) -> int | None:
        """Tokens one request may hold: the episode's context budget, else the card's window."""
        if self._limits.context_tokens is not None:
            return self._limits.context_tokens
        return self._card.context_window if self._card is not None else None

    def check_budget(self) -> None:
        """Raise LimitReached if the token or dollar budget is already spent."""
        lim = self._limits
        if lim.tokens is not None and self._trace.tokens() >= lim.tokens:
            raise LimitReached("tokens", f"{self._trace.tokens()} ≥ {lim.tokens}")
        if lim.cost_usd is not None and self._trace.cost() >= lim.cost_usd:
            raise LimitReached("cost_usd", f"${self._trace.cost():.4f} ≥ ${lim.cost_usd}")

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """Call the model and log the call.

        Raises:
            LimitReached: the episode's token or dollar budget was spent before this call, or
                the provider refused the request as longer than the context window
                (``which == "context"``: the best submission so far is scored).
            ModelError: the provider failed for good (the failed call is logged first).
        """
        self.check_budget()
        elided = 0
        window = self.context_window
        if window is not None:
            request, elided = fit_context(request, window)
        t = time.monotonic()
        t_start = self._trace.elapsed()
        try:
            resp = await self._model.generate(request)
        except ModelError as e:
            index = len(self._trace.calls)
            self._trace.calls.append(
                ModelCall(
                    model=self.id,
                    index=index,
                    role=request.role,
                    n=request.n,
                    latency_s=time.monotonic() - t,
                    error=str(e),
                    elided_observations=elided,
                )
            )
            self._trace.transcript.call(index, request, None, t_start, error=str(e))
            if isinstance(e, ContextLengthError):
                raise LimitReached("context", str(e)) from e
            raise
        index = len(self._trace.calls)
        self._trace.calls.append(
            ModelCall(
                model=self.id,
                index=index,
                role=request.role,
                usage=resp.usage,
                n=request.n,
                flops_epoch=flops_epoch(self._card, resp.usage, request.n),
                flops_physical=flops_physical(self._card, resp.usage, request.n),
                cost_usd=cost_usd(self._card, resp.usage),
                latency_s=time.monotonic() - t,
                retries=resp.retries,
                cache_hit=resp.cache_hit,
                elided_observations=elided,
            )
        )
        self._trace.transcript.call(index, request, resp, t_start)
        return resp
