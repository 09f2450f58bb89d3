"""FLOP and cost accounting against hand-computed values."""

from __future__ import annotations

import pytest

from ptebench.models.accounting import cost_usd, flops_epoch, flops_physical
from ptebench.models.catalog import ModelCard, default_catalog
from ptebench.records import Usage

CARD = ModelCard(name="x", params_total=1e9, params_active=1e9, n_layers=2, d_attn=4,
                 price_input_per_mtok=1.0, price_cached_input_per_mtok=0.5, price_output_per_mtok=2.0)


def test_epoch_convention() -> None:
    u = Usage(prompt_tokens=100, completion_tokens=30)
    assert flops_epoch(CARD, u, n=3) == 2e9 * 130


def test_physical_removes_cache_and_adds_attention() -> None:
    u = Usage(prompt_tokens=4, cached_prompt_tokens=2, completion_tokens=2)
    # dense: 2N(4-2+2); attention: prompt positions 2,3 attend 3,4 keys; samples 4,5 attend 5,6
    attn = 2 * (3 + 4 + 5 + 6)
    assert flops_physical(CARD, u) == pytest.approx(2e9 * 4 + 2.0 * 4 * attn)


def test_sliding_window_caps_attention() -> None:
    card = CARD.model_copy(update={"n_layers": 1, "sliding_layers": 1, "sliding_window": 2})
    u = Usage(prompt_tokens=4, completion_tokens=0)
    assert flops_physical(card, u) == pytest.approx(2e9 * 4 + 2.0 * 4 * (1 + 2 + 2 + 2))


def test_no_card_means_null_not_zero() -> None:
    u = Usage(prompt_tokens=10, completion_tokens=10)
    assert flops_epoch(None, u) is None and flops_physical(None, u) is None and cost_usd(None, u) is None


def test_cost_with_cached_prefix() -> None:
    u = Usage(prompt_tokens=1_000_000, cached_prompt_tokens=500_000, completion_tokens=1_000_000)
    assert cost_usd(CARD, u) == pytest.approx(0.5 + 0.25 + 2.0)


def test_cache_writes_cost_the_write_price() -> None:
    card = CARD.model_copy(update={"price_cache_write_per_mtok": 1.25})
    u = Usage(prompt_tokens=1_000_000, cached_prompt_tokens=250_000,
              cache_write_prompt_tokens=500_000, completion_tokens=0)
    # 250k plain input at 1.0, 250k read at 0.5, 500k written at 1.25
    assert cost_usd(card, u) == pytest.approx(0.25 + 0.125 + 0.625)
    assert cost_usd(CARD, u) == pytest.approx(0.75 + 0.125), "no write price: the input price"
    shipped = default_catalog().get("claude-3-5-haiku")
    assert shipped is not None
    assert shipped.price_cache_write_per_mtok == pytest.approx(1.25 * (shipped.price_input_per_mtok or 0))
