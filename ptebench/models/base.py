"""The Model protocol: one request shape in, one response shape out, whatever the provider.

A *provider* class (openai, anthropic, sim, scripted, ...) turns a ``ModelConfig`` into a
``Model``. Scaffolds never see a provider: they see a ``MeteredModel`` (ptebench.models.meter)
that logs every call with its role, tokens, FLOPs and cost, and enforces the episode budget.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import Field, JsonValue

from ptebench.records import Record, Usage

# Call roles used by the shipped scaffolds. Any string is accepted; these are documented.
ROLES: dict[str, str] = {
    "answer": "give the final answer to the task directly (direct, cot)",
    "act": "choose the next Thought/Action in an agent loop (react, reflexion, lats)",
    "propose": "propose candidate next steps, one per line (tot, lats expansion)",
    "value": "judge how promising a state or candidate is (tot, lats)",
    "reflect": "write a short lesson from a failed attempt (reflexion, lats)",
    "test_gen": "write unit tests from the public specification (reflexion, lats, best_of_n)",
    "vote": "pick the best of several candidates (best_of_n self-selection)",
}


class ToolSpec(Record):
    """A tool offered to the model for native tool calling."""

    name: str
    description: str = ""
    parameters: dict[str, JsonValue] = Field(default_factory=dict)
    """JSON schema of the arguments."""


class ToolCall(Record):
    """A native tool call returned by the model."""

    id: str = ""
    name: str
    arguments: str = "{}"
    """Raw JSON text of the arguments, as the model produced it (may be malformed)."""


class Message(Record):
    """A chat message."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None


class GenerateRequest(Record):
    """What a scaffold asks of a model."""

    messages: list[Message] = Field(default_factory=list)
    """Chat messages; ignored when ``prompt`` is set."""
    prompt: str | None = None
    """Raw text for a text-completion call (base models); chat messages otherwise."""
    role: str = "act"
    """Call role for accounting (see ROLES)."""
    tools: list[ToolSpec] = Field(default_factory=list)
    n: int = 1
    """Number of samples."""
    temperature: float = 0.0
    max_tokens: int | None = None
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    cue: str | None = None
    """Text that starts the model's turn, e.g. ``Thought:`` (react). A completion-mode
    provider ends its prompt with it and returns it in front of the generated text, so the
    reply parses as in chat mode; chat providers ignore it."""

    def text(self) -> str:
        """The whole request as one string (for simulators and caching)."""
        if self.prompt is not None:
            return self.prompt
        return "\n".join(m.content for m in self.messages)


class Choice(Record):
    """One sample."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    """stop, length, tool_calls, ... as reported by the provider."""
    reasoning: str | None = None
    """Thinking/reasoning text the provider returned beside the reply (OpenAI-compatible
    ``reasoning_content``/``reasoning``, Anthropic thinking blocks): kept for the transcript,
    never parsed for actions or answers."""


class GenerateResponse(Record):
    """What a provider returns: choices plus usage."""

    choices: list[Choice]
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    """The provider's name for the model that answered."""
    retries: int = 0
    cache_hit: bool = False
    prompt_sent: str | None = None
    """The exact prompt string sent to a text-completion endpoint (None for chat calls)."""

    @property
    def text(self) -> str:
        return self.choices[0].text if self.choices else ""


@runtime_checkable
class Model(Protocol):
    """Anything that can answer a GenerateRequest."""

    async def generate(self, request: GenerateRequest) -> GenerateResponse: ...


class EpisodeBinding(Record):
    """What the runner tells a model about the episode it serves.

    Only simulated models use ``hidden``; it travels from the task to the model through the
    runner, never through the scaffold, so no scaffold can read it.
    """

    episode_id: str
    seed: int
    task_family: str
    task_id: str
    hidden: dict[str, JsonValue] = Field(default_factory=dict)
    """The task instance's reference solution, for simulated models only."""


class ModelConfig(Record):
    """One model entry of an experiment: a catalog name or an explicit provider config."""

    id: str
    """Name the model is reported under."""
    provider: str
    """Registered provider: sim, scripted, openai, anthropic, vllm, ..."""
    model: str = ""
    """Provider's model name (e.g. gpt-4o-mini, or the sim size '1e22')."""
    card: str | None = None
    """Catalog card to take params/training compute/prices from (defaults to the id or model)."""
    base_url: str | None = None
    api_key_env: str | None = None
    """Environment variable holding the API key (the provider's default otherwise)."""
    outputs: list[str] = Field(default_factory=list)
    """Scripted provider: the outputs to play back, in order."""
    max_concurrency: int = Field(default=8, ge=1, le=10_000)
    """At most this many calls to this model in flight at once."""
    rpm: float | None = None
    """Optional requests-per-minute limit."""
    timeout_s: float = Field(default=120.0, gt=0, le=86400)
    """Total time one attempt may take, from request to the last byte."""
    max_retries: int = Field(default=6, ge=0, le=100)
    completion: bool = False
    """Use the text-completion endpoint (base models) instead of chat."""
    native_tools: bool | None = None
    """The model takes tools through the provider's tool-calling API. None: the model card
    says (``native_tools``; false without a card). Never with ``completion``."""
    options: dict[str, JsonValue] = Field(default_factory=dict)
    """Provider-specific extras (e.g. launcher settings, sim law overrides)."""


class Provider(Protocol):
    """A class registered under kind 'model': builds a Model from a ModelConfig."""

    def __call__(self, config: ModelConfig) -> Any: ...


class BindableModel(Model, Protocol):
    """A model that wants to know its episode (the simulated family)."""

    def bind(self, binding: EpisodeBinding) -> Model: ...
