"""Tokens → FLOPs and dollars, at the one place a call is metered.

Two FLOP conventions (../shared/design/CEG.md, "FLOP accounting per model call"):

* **epoch-comparable**: F = 2·N_active·(P + n·G) — the prompt is counted once when n samples
  share it; this is what Epoch AI and the CEG paper compare against training compute.
* **physical**: F = 2·N_active·(P − K + n·G) + c·n_layer·d_attn·A, where K is the cached
  prompt prefix (not recomputed) and A the number of (query, key) pairs actually attended —
  each new token attends to every earlier token of its context, capped by the sliding window
  on sliding-window layers. c = 2 (Kaplan et al. 2020) by default.
"""

from __future__ import annotations

from ptebench.models.catalog import ModelCard
from ptebench.records import Usage

ATTENTION_C = 2.0
"""Kaplan's constant for the attention term: 2 FLOPs per multiply-add over n_layer·d_attn."""


def flops_epoch(card: ModelCard | None, usage: Usage, n: int = 1) -> float | None:
    """Epoch-comparable FLOPs, or None when the card lacks the active parameter count.

    ``usage.completion_tokens`` already sums the n samples, so G·n = completion_tokens.
    """
    if card is None or card.n_active is None:
        return None
    return 2.0 * card.n_active * (usage.prompt_tokens + usage.completion_tokens)


def _attended_pairs(start: int, count: int, window: int | None) -> float:
    """Sum over positions t in [start, start+count) of min(t+1, window)."""
    if count <= 0:
        return 0.0
    end = start + count  # exclusive
    if window is None or window >= end:
        # sum_{t=start}^{end-1} (t+1) = sum_{k=start+1}^{end} k
        return (end * (end + 1) - start * (start + 1)) / 2.0
    # positions below the window grow linearly, the rest are capped
    lin_end = max(start, min(end, window))
    linear = (lin_end * (lin_end + 1) - start * (start + 1)) / 2.0
    return linear + (end - lin_end) * float(window)


def flops_physical(
    card: ModelCard | None, usage: Usage, n: int = 1, c: float = ATTENTION_C
) -> float | None:
    """Physical FLOPs with cached prefixes removed and the attention term added.

    Without n_layers/d_attn on the card, the attention term is omitted (dense term only).
    """
    if card is None or card.n_active is None:
        return None
    p, k, g = usage.prompt_tokens, usage.cached_prompt_tokens, usage.completion_tokens
    dense = 2.0 * card.n_active * (max(p - k, 0) + g)
    if card.n_layers is None or card.d_attn is None:
        return dense
    per_sample = g / max(n, 1)
    full_layers = card.n_layers - card.sliding_layers
    attn = 0.0
    for layers, window in ((full_layers, None), (card.sliding_layers, card.sliding_window)):
        if layers <= 0:
            continue
        prompt_pairs = _attended_pairs(k, max(p - k, 0), window)
        sample_pairs = _attended_pairs(p, int(round(per_sample)), window) * n
        attn += layers * (prompt_pairs + sample_pairs)
    return dense + c * card.d_attn * attn


def cost_usd(card: ModelCard | None, usage: Usage) -> float | None:
    """Price of a call from the card's per-million-token prices; None without prices."""
    if card is None or card.price_input_per_mtok is None or card.price_output_per_mtok is None:
        return None
    cached_price = (
        card.price_cached_input_per_mtok
        if card.price_cached_input_per_mtok is not None
        else card.price_input_per_mtok
    )
    write_price = (
        card.price_cache_write_per_mtok
        if card.price_cache_write_per_mtok is not None
        else card.price_input_per_mtok
    )
    fresh = max(usage.prompt_tokens - usage.cached_prompt_tokens, 0)
    written = min(usage.cache_write_prompt_tokens, fresh)
    uncached = fresh - written
    return (
        uncached * card.price_input_per_mtok
        + usage.cached_prompt_tokens * cached_price
        + written * write_price
        + usage.completion_tokens * card.price_output_per_mtok
    ) / 1e6
