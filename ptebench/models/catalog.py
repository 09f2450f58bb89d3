"""Model cards: what ptebench knows about a model's size, training compute and price.

Cards come from YAML files: the ones shipped in ``ptebench/models/cards/`` and any file the
user names with ``PTEBENCH_CARDS`` (os.pathsep-separated) or passes to ``Catalog.load``.
The simulated family's cards are built in code from its law (ptebench.models.sim).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from ptebench.errors import ConfigError
from ptebench.records import Record

CARDS_DIR = Path(__file__).parent / "cards"


class ModelCard(Record):
    """Everything ptebench needs to account for a model's compute and cost."""

    name: str
    """Catalog name (what an experiment writes, e.g. 'gpt-4o-mini' or 'sim/1e22')."""
    provider: str = "openai"
    """Default provider for this card."""
    model: str = ""
    """Provider's model name (defaults to name)."""
    family: str | None = None
    """Model family: CEG compares scaffolds within one family."""
    params_total: float | None = None
    params_active: float | None = None
    """Active parameters per token (MoE); equals params_total for dense models."""
    n_layers: int | None = None
    d_attn: int | None = None
    """n_heads × head_dim, for the attention FLOP term."""
    context_window: int | None = None
    """Tokens one request may hold (prompt + reply): the episode's context budget."""
    native_tools: bool = False
    """The model takes tools through its provider's tool-calling API (react, reflexion, tot
    and lats then offer their tools natively unless told ``tool_calling: text``)."""
    sliding_window: int | None = None
    """Window of the sliding-window layers, if any."""
    sliding_layers: int = 0
    """How many of n_layers use the sliding window."""
    train_tokens: float | None = None
    train_flop: float | None = None
    train_flop_source: str = ""
    """Where train_flop comes from (6·N·D, a paper, Epoch AI, ...)."""
    train_flop_sigma_log10: float = 0.0
    """Uncertainty of log10(train_flop) for closed models (log-normal), 0 when known."""
    price_input_per_mtok: float | None = None
    price_cached_input_per_mtok: float | None = None
    price_cache_write_per_mtok: float | None = None
    """Price of prompt tokens written to the prefix cache (Anthropic: 1.25× input for the
    5-minute cache); None: the input price."""
    price_output_per_mtok: float | None = None
    price_source: str = ""
    simulated: bool = False
    """True for ptebench's simulated family."""
    notes: str = ""

    @property
    def n_active(self) -> float | None:
        return self.params_active if self.params_active is not None else self.params_total


class CardFile(Record):
    """A YAML file of cards."""

    cards: list[ModelCard]


def load_cards(path: Path) -> list[ModelCard]:
    """Read a card file.

    Raises:
        ConfigError: the file is missing, not YAML, or a card does not validate.
    """
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read model cards: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    try:
        return CardFile.model_validate(raw).cards
    except ValidationError as e:
        msgs = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"{path}: invalid model card: {msgs}") from e


class Catalog:
    """Name → ModelCard."""

    def __init__(self) -> None:
        self._cards: dict[str, ModelCard] = {}

    def add(self, card: ModelCard) -> None:
        self._cards[card.name] = card

    def load(self, path: Path) -> None:
        for card in load_cards(path):
            self.add(card)

    def get(self, name: str) -> ModelCard | None:
        return self._cards.get(name)

    def names(self) -> list[str]:
        return sorted(self._cards)

    def cards(self) -> list[ModelCard]:
        return [self._cards[n] for n in self.names()]


@cache
def default_catalog() -> Catalog:
    """The shipped cards, the sim family and the user's PTEBENCH_CARDS files."""
    from ptebench.models.sim import sim_cards

    cat = Catalog()
    for card in sim_cards():
        cat.add(card)
    for path in sorted(CARDS_DIR.glob("*.yaml")):
        cat.load(path)
    for extra in filter(None, os.environ.get("PTEBENCH_CARDS", "").split(os.pathsep)):
        cat.load(Path(extra))
    return cat
