"""best_of_n and majority: sample n solutions from any inner scaffold, then choose one.

``majority`` (self-consistency, Wang et al. 2023; ToT's CoT-SC baseline) submits the most
common normalised answer. ``best_of_n`` ranks the candidates with a selector: the model's
own vote, self-generated tests for code, or — only under ``oracle_feedback`` — the hidden
scorer (the "perfect selector" whose success is 1 − (1 − p)^n).

The inner scaffold is configured in place, so combinations are one line of config::

    {name: best_of_n, params: {n: 5, inner: {name: reflexion, params: {max_iters: 3}}}}

Calls = n × calls(inner) + selector calls. A one-call inner scaffold with ``sample(ctx, n)``
(cot) is sampled with a single n-sample request, so calls(inner) counts as 1/n there:
calls = 1 + selector. Selector calls: vote 1 (0 when all candidates agree), tests 1
(test generation; the runs are sandbox steps), oracle 0 (counted as oracle calls).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from ptebench.errors import ConfigError
from ptebench.models.base import GenerateRequest
from ptebench.models.meter import LimitReached
from ptebench.records import Action
from ptebench.registry import get, register
from ptebench.scaffolds import parsing, prompts
from ptebench.scaffolds.base import EpisodeContext, ScaffoldParams
from ptebench.scaffolds.branching import replay
from ptebench.scaffolds.codeexec import run_tests


class InnerSpec(BaseModel):
    """The scaffold whose runs are sampled."""

    model_config = ConfigDict(extra="forbid")

    name: str = "cot"
    """Registered scaffold name (cot, direct, react, reflexion, tot, lats, ...)."""
    params: dict[str, JsonValue] = Field(default_factory=dict)
    """That scaffold's params (validated against its own Params model)."""

    def build(self) -> tuple[Any, ScaffoldParams]:
        """The inner scaffold instance and its validated params.

        Raises:
            ConfigError: unknown scaffold name or invalid params, naming the field.
        """
        cls = get("scaffold", self.name)
        try:
            params = cls.Params.model_validate(self.params)
        except ValidationError as e:
            raise ConfigError(f"inner scaffold {self.name!r}: invalid params: {e}") from e
        return cls(params), params


class _SampledParams(ScaffoldParams):
    inner: InnerSpec = Field(default_factory=InnerSpec)
    """The scaffold to sample from (default ``cot``: CoT-SC / best-of-n CoT)."""
    temperature: float | None = 0.7
    """Temperature of the samples: overrides the inner scaffold's ``temperature`` param (if it
    has one); null keeps the inner's own. 0.7 is ToT's CoT-SC setting."""
    fork_env: bool | None = None
    """Run each inner sample in its own fork of the sandbox so samples never see each other's
    side effects. None: fork on agentic tasks only (code/qa samples do not change state)."""

    @model_validator(mode="after")
    def _inner_valid(self) -> _SampledParams:
        _, inner = self.inner.build()
        if inner.oracle_feedback and not self.oracle_feedback:
            raise ConfigError(
                f"inner scaffold {self.inner.name!r} sets oracle_feedback: true; set it on the "
                "outer scaffold too, so the episode is marked as using the oracle"
            )
        return self


class MajorityParams(_SampledParams):
    """Parameters of majority voting (self-consistency)."""

    n: int = Field(default=100, ge=1)
    """Number of samples (ToT's Game of 24 CoT-SC baseline: k = 100)."""


class BestOfNParams(_SampledParams):
    """Parameters of best-of-n."""

    n: int = Field(default=5, ge=1)
    """Number of samples (5, the sample count LATS and Reflexion use per expansion)."""
    selector: Literal["auto", "vote", "tests", "oracle"] = "auto"
    """How the best candidate is chosen. auto: self-generated tests for code, the model's vote
    otherwise. oracle: the hidden scorer (needs oracle_feedback; the perfect selector)."""
    num_tests: int = Field(default=5, ge=1)
    """Self-generated tests for the tests selector (Reflexion's num_internal_tests default)."""

    @model_validator(mode="after")
    def _oracle_flag(self) -> BestOfNParams:
        if self.selector == "oracle" and not self.oracle_feedback:
            raise ConfigError("best_of_n: selector 'oracle' needs oracle_feedback: true")
        return self


def _with_temperature(params: ScaffoldParams, temperature: float | None) -> ScaffoldParams:
    if temperature is None or "temperature" not in type(params).model_fields:
        return params
    return params.model_copy(update={"temperature": temperature})


def majority_choice(cands: list[str | None]) -> str | None:
    """The most common normalised answer (ties: the earliest); its first raw form."""
    keys = [parsing.normalise(c) for c in cands]
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None
    top = max(counts.values())
    for c, k in zip(cands, keys, strict=True):
        if k is not None and counts[k] == top:
            return c
    return None


@dataclass
class Samples:
    """The inner scaffold's submissions and, per submission, the actions that made the
    sandbox state it was submitted in (relative to the episode's sandbox when sampled;
    empty when the sample ran in the episode's own sandbox or changed nothing)."""

    answers: list[str | None] = field(default_factory=list)
    actions: list[list[Action]] = field(default_factory=list)


async def sample_candidates(
    ctx: EpisodeContext, spec: InnerSpec, n: int, temperature: float | None, fork_env: bool | None
) -> Samples:
    """Run the inner scaffold n times (or sample it once with n samples) and collect its
    submissions. On a limit, the majority of what was collected becomes ``ctx.best``."""
    inner, params = spec.build()
    inner = type(inner)(_with_temperature(params, temperature))
    out = Samples()
    cands = out.answers
    fork = ctx.task.kind == "agentic" if fork_env is None else fork_env
    try:
        if hasattr(inner, "sample"):
            out.answers = cands = await inner.sample(ctx, n, temperature)
            out.actions = [[] for _ in cands]
            ctx.candidate(majority_choice(cands))
            return out
        for i in range(n):
            ctx.check_time()
            env = await ctx.env.fork() if fork and ctx.env.sandbox is not None else ctx.env
            child = EpisodeContext(
                task=ctx.task,
                model=ctx.model,
                env=env,
                limits=ctx.limits,
                trace=ctx.trace,
                seed=ctx.seed + i,
                oracle=ctx.oracle if params.oracle_feedback else None,
            )
            try:
                cands.append(await inner.run(child))
            except LimitReached:
                cands.append(child.best)
                raise
            finally:
                out.actions.append(env.actions[len(ctx.env.actions) :] if env is not ctx.env else [])
                if env is not ctx.env:
                    ctx.metrics["branch_cost_s"] = ctx.env.branch_cost_s
                    await env.close()
                ctx.candidate(majority_choice(cands))
    finally:
        ctx.metrics["samples"] = len(cands)
        ctx.metrics["distinct_answers"] = len({parsing.normalise(c) for c in cands} - {None})
    return out


async def adopt_choice(ctx: EpisodeContext, samples: Samples, choice: str | None) -> None:
    """Bring the episode's sandbox to the state the chosen submission was made in: replay
    the actions of the first sample that submitted it (each sample ran in its own fork), so
    a task scored on the sandbox state or on a file is scored on the chosen sample's work.
    Replay is exact for deterministic actions; the count is recorded (``adopted_actions``)."""
    if ctx.env.sandbox is None or choice is None:
        return
    key = parsing.normalise(choice)
    for answer, actions in zip(samples.answers, samples.actions, strict=True):
        if parsing.normalise(answer) == key:
            if actions:
                await replay(ctx.env.sandbox, actions, ctx)
                ctx.env.actions += actions
            ctx.metrics["adopted_actions"] = len(actions)
            return


async def vote(ctx: EpisodeContext, cands: list[str]) -> int:
    """The model picks the best of several distinct candidates (role ``vote``)."""
    blocks = "\n\n".join(f"Candidate {i + 1}:\n{c}" for i, c in enumerate(cands))
    text = (
        f"{prompts.task_text(ctx.task)}\n\nHere are {len(cands)} candidate solutions.\n\n"
        f"{blocks}\n\nAnalyse each candidate, then name the best one as 'Answer: <number>'."
    )
    resp = await ctx.model.generate(
        GenerateRequest(messages=prompts.user(text), role="vote", temperature=0.0)
    )
    i = parsing.parse_index(resp.text, len(cands))
    ctx.metrics["vote_parsed"] = i is not None
    return 0 if i is None else i


async def generate_tests(ctx: EpisodeContext, k: int, temperature: float = 0.0) -> list[str]:
    """``k`` unit tests written by the model from the public spec (role ``test_gen``)."""
    spec = ctx.task.code
    entry = spec.entry_point if spec else "the function"
    text = (
        f"{prompts.task_text(ctx.task)}\n\nWrite {k} unit tests for `{entry}` as Python "
        "`assert` statements, one per line, covering typical and edge cases. Output only "
        "the assert lines."
    )
    resp = await ctx.model.generate(
        GenerateRequest(messages=prompts.user(text), role="test_gen", temperature=temperature)
    )
    return parsing.parse_tests(resp.text, k)


def _distinct(cands: list[str | None]) -> list[str]:
    seen: dict[str, str] = {}
    for c in cands:
        k = parsing.normalise(c)
        if c is not None and k is not None and k not in seen:
            seen[k] = c
    return list(seen.values())


@register("scaffold", "majority")
class Majority:
    """n samples of the inner scaffold; the most common answer wins."""

    name: ClassVar[str] = "majority"
    Params: ClassVar[type[ScaffoldParams]] = MajorityParams

    def __init__(self, params: MajorityParams) -> None:
        self.params = params

    async def run(self, ctx: EpisodeContext) -> str | None:
        p = self.params
        samples = await sample_candidates(ctx, p.inner, p.n, p.temperature, p.fork_env)
        choice = majority_choice(samples.answers)
        ctx.candidate(choice)
        await adopt_choice(ctx, samples, choice)
        return choice


@register("scaffold", "best_of_n")
class BestOfN:
    """n samples of the inner scaffold; a selector picks one."""

    name: ClassVar[str] = "best_of_n"
    Params: ClassVar[type[ScaffoldParams]] = BestOfNParams

    def __init__(self, params: BestOfNParams) -> None:
        self.params = params

    async def run(self, ctx: EpisodeContext) -> str | None:
        p = self.params
        samples = await sample_candidates(ctx, p.inner, p.n, p.temperature, p.fork_env)
        distinct = _distinct(samples.answers)
        selector = p.selector
        if selector == "auto":
            code = ctx.task.kind == "code" and ctx.env.sandbox is not None
            selector = "tests" if code else "vote"
        ctx.metrics["selector"] = selector
        if len(distinct) <= 1:
            choice = distinct[0] if distinct else None
        elif selector == "oracle":
            choice = await self._by_oracle(ctx, distinct)
        elif selector == "tests":
            choice = await self._by_tests(ctx, distinct)
        else:
            choice = distinct[await vote(ctx, distinct)]
        ctx.candidate(choice)
        await adopt_choice(ctx, samples, choice)
        return choice

    async def _by_oracle(self, ctx: EpisodeContext, distinct: list[str]) -> str:
        assert ctx.oracle is not None, "the runner gives an oracle under oracle_feedback"
        best, best_score = distinct[0], -1.0
        for c in distinct:
            s = await ctx.oracle.score(c)
            if s is not None and s > best_score:
                best, best_score = c, s
            if best_score >= 1.0:
                break
        return best

    async def _by_tests(self, ctx: EpisodeContext, distinct: list[str]) -> str:
        visible = list(ctx.task.code.visible_tests) if ctx.task.code else []
        tests = visible + [
            t for t in await generate_tests(ctx, self.params.num_tests) if t not in visible
        ]
        best, best_frac = distinct[0], -1.0
        for c in distinct:
            ctx.check_time()
            frac = (await run_tests(ctx.env, c, tests)).fraction
            if frac > best_frac:
                best, best_frac = c, frac
                ctx.candidate(best)
        ctx.metrics["selector_pass_fraction"] = best_frac
        return best
