"""Shipped cards are consistent with their sources; user cards load; `ptebench models list`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ptebench.errors import ConfigError
from ptebench.models.catalog import CARDS_DIR, Catalog, default_catalog, load_cards
from ptebench.models.cli import app

CSV = Path(__file__).resolve().parents[1] / "data" / "model_families.csv"
"""The project's table of open model families (params, tokens, 6ND compute, with each row's
source), kept in the repository so this check runs wherever the suite does."""


def test_open_family_cards_follow_6nd_and_carry_architecture() -> None:
    cards = load_cards(CARDS_DIR / "open_families.yaml")
    assert len(cards) >= 40
    for c in cards:
        assert c.params_total and c.train_tokens and c.train_flop and c.train_flop_source
        assert c.train_flop == pytest.approx(6 * c.n_active * c.train_tokens, rel=0.03), c.name  # type: ignore[operator]
        assert c.n_layers and c.d_attn and c.context_window and c.family
        assert c.sliding_layers <= c.n_layers


def test_open_family_cards_match_the_shared_csv() -> None:
    cards = {c.name: c for c in load_cards(CARDS_DIR / "open_families.yaml")}
    rows = list(csv.DictReader(CSV.open()))
    assert len(rows) >= 40
    for row in rows:
        card = cards[row["model"]]
        assert card.params_active == float(row["params_active"])
        assert card.train_flop == float(row["C_6ND_flop"])


def test_gemma_270m_card_matches_its_gguf_metadata() -> None:
    card = default_catalog().get("gemma-3-270m")
    assert card is not None
    # GGUF: block_count 18, head_count 4 × key_length 256, sliding_window 512, context 32768
    assert (card.n_layers, card.d_attn, card.sliding_window, card.context_window) == (18, 1024, 512, 32768)
    assert card.sliding_layers == 15  # 5 local layers per global one


def test_api_cards_have_prices_sources_and_closed_model_uncertainty() -> None:
    cat = default_catalog()
    for name, provider in [("gpt-4o-mini", "openai"), ("gpt-4o", "openai"),
                           ("claude-3-5-sonnet", "anthropic"), ("claude-3-5-haiku", "anthropic")]:
        c = cat.get(name)
        assert c is not None and c.provider == provider and c.model
        assert c.price_input_per_mtok and c.price_output_per_mtok and c.price_source.startswith("https://")
        assert c.params_total is None  # not public: FLOPs stay null, never guessed
        if c.train_flop is not None:
            assert c.train_flop_sigma_log10 > 0 and "Epoch" in c.train_flop_source


def test_user_cards_load_and_bad_ones_name_the_field(tmp_path: Path) -> None:
    good = tmp_path / "mine.yaml"
    good.write_text("cards:\n- {name: my-model, provider: vllm, params_total: 1.0e9, train_flop: 1.0e22}\n")
    cat = Catalog()
    cat.load(good)
    card = cat.get("my-model")
    assert card is not None and card.n_active == 1e9
    bad = tmp_path / "bad.yaml"
    bad.write_text("cards:\n- {name: x, params: 3}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid model card: cards\.0\.params"):
        load_cards(bad)


def test_models_list_shows_the_catalog() -> None:
    res = CliRunner().invoke(app, ["list"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for text in ("gpt-4o-mini", "claude-3-5-haiku", "Qwen2.5-7B", "gemma-3-270m", "$0.15 / $0.6"):
        assert text in res.output
    res = CliRunner().invoke(app, ["list", "--json", "--provider", "anthropic"])
    assert res.exit_code == 0
    names = {c["name"] for c in json.loads(res.output)}
    assert "claude-3-5-haiku" in names and "gpt-4o" not in names
