"""The typed records everything in ptebench passes around and writes to disk.

Every record is a pydantic model with ``extra="forbid"``; the on-disk ones carry a
``schema_version`` so readers can refuse or migrate what they do not understand.
Nothing here imports from another ptebench room: records are the floor of the house.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

SCHEMA_VERSION = 1
"""Version of the on-disk episode and manifest format (bump on any breaking change)."""


class Record(BaseModel):
    """Base of all records: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Usage(Record):
    """Token counts of one model call, normalised across providers."""

    prompt_tokens: int = 0
    """Tokens in the prompt, including any cached prefix."""
    completion_tokens: int = 0
    """Tokens generated, summed over all n samples."""
    cached_prompt_tokens: int = 0
    """Prompt tokens served from the provider's prefix cache (a subset of prompt_tokens)."""
    reasoning_tokens: int = 0
    """Hidden reasoning tokens (a subset of completion_tokens) where the provider reports them."""
    cache_write_prompt_tokens: int = 0
    """Prompt tokens written to the provider's prefix cache on this call (Anthropic
    ``cache_creation_input_tokens``; a subset of prompt_tokens, billed at the cache-write
    price). Providers that cache implicitly (OpenAI, vLLM) report none."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cache_write_prompt_tokens=self.cache_write_prompt_tokens + other.cache_write_prompt_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ModelCall(Record):
    """One metered call to a model: what it cost in tokens, FLOPs, dollars and time."""

    model: str
    """The experiment's id of the model that was called."""
    index: int | None = None
    """Position of the call in its episode: the key of its entry in the episode's transcript
    (``ptebench.results.transcript``). None in runs recorded before transcripts."""
    role: str
    """What the scaffold used the call for: act, answer, propose, value, reflect, test_gen, vote, ..."""
    usage: Usage = Field(default_factory=Usage)
    """Token counts reported by the provider (or counted by the simulator)."""
    n: int = 1
    """Number of samples requested in this call."""
    flops_epoch: float | None = None
    """Epoch-comparable inference FLOPs, 2·N_active·(P + n·G); None when the model has no card."""
    flops_physical: float | None = None
    """Physical FLOPs with the attention term and cached prefixes removed; None without a card."""
    cost_usd: float | None = None
    """Price of the call in US dollars; None when the model has no public price."""
    latency_s: float = 0.0
    """Wall time of the call, retries included."""
    retries: int = 0
    """How many times the call was retried after a transient error."""
    cache_hit: bool = False
    """True when the response came from ptebench's optional response cache."""
    error: str | None = None
    """The error that ended the call, if it failed."""
    elided_observations: int = 0
    """Older observations replaced by a marker to fit the context budget (see Limits)."""


class Action(Record):
    """A tool invocation chosen by the agent."""

    tool: str
    """Tool name: bash, python, submit, or a task-specific tool."""
    input: str
    """The tool's argument, as text (a command, a program, an answer)."""


class Step(Record):
    """One action the agent took in the environment and what it observed."""

    index: int
    """Position of the step in the episode (0-based, across branches in tree search)."""
    thought: str | None = None
    """The reasoning the model gave before acting, if any."""
    action: Action | None = None
    """What was done; None for a step that only failed to parse."""
    observation: str = ""
    """What the agent was shown afterwards (possibly truncated)."""
    observation_bytes: int = 0
    """Size of the full observation before truncation, in bytes."""
    truncated: bool = False
    """True when observation was cut to the task's tool_output_bytes."""
    exit_code: int | None = None
    """Exit code of the command, when the tool ran one."""
    timed_out: bool = False
    """True when the tool hit its timeout and was killed."""
    branch: str = ""
    """Tree-search branch the step belongs to ("" for a linear episode)."""
    t_start: float = 0.0
    """Seconds since the episode started."""
    duration_s: float = 0.0
    """Wall time of the action."""


class Score(Record):
    """The hidden scorer's verdict on a submission."""

    value: float | None
    """Score in [0, 1]; None means the task needs manual scoring."""
    explanation: str = ""
    """Why the scorer gave this value (kept short; never shown to the scaffold)."""


class Totals(Record):
    """Sums over an episode's calls and steps."""

    calls: int = 0
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    reasoning_tokens: int = 0
    flops_epoch: float | None = 0.0
    """Sum of the calls' Epoch-comparable FLOPs; None if any call lacked a model card."""
    flops_physical: float | None = 0.0
    """Sum of the calls' physical FLOPs; None if any call lacked a model card."""
    cost_usd: float | None = 0.0
    """Sum of the calls' cost; None if any call had no price."""
    model_s: float = 0.0
    """Time spent waiting on the model."""
    sandbox_s: float = 0.0
    """Time spent in tool actions."""
    wall_s: float = 0.0
    """Wall time of the whole episode, setup and scoring included."""

    @classmethod
    def of(cls, calls: list[ModelCall], steps: list[Step], wall_s: float) -> Totals:
        usage = Usage()
        for c in calls:
            usage = usage + c.usage

        def _sum(values: list[float | None]) -> float | None:
            return None if any(v is None for v in values) else float(sum(v or 0.0 for v in values))

        return cls(
            calls=len(calls),
            steps=len(steps),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_prompt_tokens=usage.cached_prompt_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            flops_epoch=_sum([c.flops_epoch for c in calls]),
            flops_physical=_sum([c.flops_physical for c in calls]),
            cost_usd=_sum([c.cost_usd for c in calls]),
            model_s=sum(c.latency_s for c in calls),
            sandbox_s=sum(s.duration_s for s in steps),
            wall_s=wall_s,
        )


class Limits(Record):
    """Budgets of one episode. None means no limit of that kind."""

    steps: int | None = Field(default=None, ge=0, le=1_000_000)
    """Maximum environment actions (tool calls)."""
    tokens: int | None = Field(default=None, ge=0, le=10**12)
    """Maximum prompt + completion tokens over all calls."""
    wall_s: float | None = Field(default=None, gt=0, le=30 * 86400)
    """Maximum wall time of the scaffold's run."""
    cost_usd: float | None = Field(default=None, ge=0, le=1e7)
    """Maximum spend in dollars."""
    tool_timeout_s: float = Field(default=60.0, gt=0, le=86400)
    """Timeout of one tool action; the process tree is killed past it."""
    tool_output_bytes: int = Field(default=16384, ge=1, le=64 << 20)
    """Observations longer than this are truncated (the original size is recorded)."""
    context_tokens: int | None = None
    """Context budget of one request (prompt + reply cap), in tokens: older observations are
    elided with a marker to stay inside it. None: the model card's context window (no
    budget when the card states none)."""

    def merged(self, override: Limits | None) -> Limits:
        """These limits with every field that ``override`` sets explicitly taken from it."""
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_unset=True))


EpisodeStatus = Literal["ok", "limit", "error"]

FailureClass = Literal["model", "sandbox", "task", "harness"]
"""Where an errored episode broke: ``model`` (the provider failed after retries, context
length), ``sandbox`` (infrastructure: engine error, image missing, task setup failed),
``task`` (the scorer crashed), ``harness`` (the scaffold or ptebench itself raised)."""
FAILURE_CLASSES: tuple[FailureClass, ...] = ("model", "sandbox", "task", "harness")


class EpisodeSpec(Record):
    """One planned unit of work: a model, a scaffold with params, a task instance, an epoch."""

    episode_id: str
    """Deterministic id from the fields below; the key of resumption and de-duplication."""
    model: str
    """Experiment id of the model."""
    scaffold: str
    """Registered scaffold name."""
    scaffold_label: str
    """Name the scaffold is reported under (its name, or the user's label for a param variant)."""
    scaffold_params: dict[str, JsonValue] = Field(default_factory=dict)
    """Resolved scaffold parameters (defaults filled in)."""
    task_family: str
    """Name of the task family."""
    task_id: str
    """Id of the instance within its family."""
    epoch: int
    """Repetition index, 0-based."""
    seed: int
    """Seed of this episode, derived from the experiment seed and the ids above."""
    score_reducer: str = Field(default="mean", pattern=r"^(mean|at_least_1|pass_at_[1-9][0-9]*)$")
    """How the task's epochs combine into its score (a native task's ``scoring.epochs``):
    mean, at_least_1 or pass_at_<k>. Results apply it per (model, scaffold, task)."""


class Episode(Record):
    """Everything that happened in one episode. One JSON line in episodes.jsonl."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    spec: EpisodeSpec
    model_family: str | None = None
    """Family of the model in the catalog (CEG compares within a family)."""
    train_flop: float | None = None
    """Training compute of the model from its card; None when unknown."""
    simulated: bool = False
    """True when the model is ptebench's simulated family: a pipeline check, never a real result."""
    oracle_feedback: bool = False
    """True when the scaffold was allowed ground-truth feedback inside its loop (reproduction flag)."""
    oracle_calls: int = 0
    """How many times the scaffold consulted the hidden scorer before submitting."""
    sandbox: str = "none"
    """Sandbox backend used (local, docker, none)."""
    sandbox_profile: dict[str, JsonValue] | None = None
    """The isolation settings the episode actually got."""
    steps: list[Step] = Field(default_factory=list)
    calls: list[ModelCall] = Field(default_factory=list)
    submission: str | None = None
    """What the scaffold submitted (None if it never did)."""
    score: Score | None = None
    """The hidden scorer's verdict (None if scoring itself failed)."""
    status: EpisodeStatus = "ok"
    """ok: finished; limit: a budget ran out (best submission scored); error: something broke."""
    reason: str | None = None
    """Why the episode hit a limit or failed."""
    failure: FailureClass | None = None
    """Class of the failure when status is error (see ``FailureClass``); None otherwise."""
    totals: Totals = Field(default_factory=Totals)
    metrics: dict[str, JsonValue] = Field(default_factory=dict)
    """Scaffold-specific figures (e.g. ToT any-of-b success, branching cost)."""
    started_at: str = ""
    finished_at: str = ""
    host: str | None = None
    """Machine the episode ran on (None in records written before it was kept)."""
    executor: str | None = None
    """Executor that ran it: local or ray (None in records written before it was kept)."""
    node: str | None = None
    """Ray node id the episode ran on (ray executor only; None otherwise)."""


class CatalogEntry(Record):
    """The part of a model card recorded in a run manifest."""

    id: str
    provider: str
    model: str
    family: str | None = None
    train_flop: float | None = None
    params_active: float | None = None
    simulated: bool = False


class RunManifest(Record):
    """run.json: what was asked, what was resolved, and where it ran."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    name: str
    config: dict[str, JsonValue]
    """The experiment exactly as given (parsed YAML)."""
    resolved: dict[str, JsonValue]
    """The validated experiment with every default filled in."""
    config_path: str | None = None
    package_version: str
    git_sha: str | None = None
    host: str
    python: str
    started_at: str
    finished_at: str | None = None
    planned_episodes: int = 0
    status: Literal["running", "finished", "interrupted", "failed"] = "running"
    models: list[CatalogEntry] = Field(default_factory=list)
    sessions: int = 1
    """How many times the run was started (1 + number of resumes)."""
    extensions: list[dict[str, JsonValue]] = Field(default_factory=list)
    """Deliberate extensions (``--resume --extend``): for each, when, the fields that changed,
    and the config and resolved form it was resumed with; ``config``/``resolved`` stay the
    run's first."""
    stop_reason: str | None = None
    """Why the run stopped scheduling episodes before the plan was done (e.g. the spend cap)."""
    executor: str = "local"
    """Executor of the run: local, ray, or merged (``ptebench merge``)."""
    merged_from: list[dict[str, JsonValue]] = Field(default_factory=list)
    """For a merged run: each source folder's run id, path, host, executor and episode count."""
    notes: list[str] = Field(default_factory=list)
    """What a reader of the run should know about how it ran, one sentence each, over all its
    sessions (e.g. a Ray node that failed the node check and was skipped, naming it)."""


def reduce_epoch_scores(values: list[float], reducer: str) -> float:
    """One task's score from its attempts: ``mean``; ``at_least_1`` (1 if any attempt scored
    1); ``pass_at_<k>``, the unbiased pass@k estimate 1 − C(n−c, k)/C(n, k) from n attempts
    of which c scored 1 (k is capped at n, so an interrupted run still gives a score).

    Raises:
        ValueError: an unknown reducer.
    """
    from math import comb

    if not values:
        return 0.0
    if reducer == "mean":
        return sum(values) / len(values)
    if reducer == "at_least_1":
        return 1.0 if any(v >= 1.0 for v in values) else 0.0
    if not reducer.startswith("pass_at_") or not reducer[8:].isdigit() or int(reducer[8:]) < 1:
        raise ValueError(f"unknown score reducer {reducer!r} (mean, at_least_1, pass_at_<k>)")
    n, c = len(values), sum(1 for v in values if v >= 1.0)
    k = min(int(reducer[8:]), n)
    return 1.0 - comb(n - c, k) / comb(n, k)
