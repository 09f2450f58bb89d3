"""reflexion (Shinn et al. 2023): trials, a self-evaluation, and verbal lessons between them.

Code tasks (the paper's programming setting): the model writes unit tests once from the
public spec (role ``test_gen``; the visible examples are added), then each trial writes an
implementation (role ``answer``) that is run against those tests in the sandbox. All pass →
submit. Otherwise a reflection call (role ``reflect``) writes a lesson from the failing tests
and the next trial sees the previous implementation, its test feedback and all lessons.
Calls ≤ 1 + max_iters + (max_iters − 1) = 2·max_iters.

Other tasks, or any task with a named ``actor``: each trial runs the actor — by default
react when the task has tools, else cot; any registered scaffold given by name or as an
inner spec (lats, tot, best_of_n, ...) — whose instructions carry the lessons so far. The
model's own verdict on the answer (role ``value``: sure/likely/impossible — "sure" is
success; on a code task the self-generated tests instead) decides whether to stop; a
failure is reflected on. Calls ≤ max_iters·(calls(actor) + 2) − 1 (+1 test generation on
code). A budget stop inside a trial keeps that trial's best answer (e.g. react's forced
submit) when no earlier trial's answer was judged better than failing.

Without ``oracle_feedback`` nothing here reads the hidden tests or the gold answer. With it,
the self-evaluation is replaced by the hidden scorer (HotpotQA's exact-match reward in the
reference code, LATS-style stop-at-first-pass on code); the episode records the oracle calls.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, JsonValue, model_validator

from ptebench.errors import ConfigError
from ptebench.models.base import GenerateRequest, Message
from ptebench.models.meter import LimitReached
from ptebench.registry import register
from ptebench.scaffolds import parsing, prompts
from ptebench.scaffolds.base import EpisodeContext, ScaffoldParams
from ptebench.scaffolds.best_of_n import InnerSpec, generate_tests
from ptebench.scaffolds.codeexec import run_tests


class ReflexionParams(ScaffoldParams):
    """Parameters of Reflexion. Defaults: the paper's HumanEval programming setting."""

    max_iters: int = Field(default=10, ge=1)
    """Trials at most (HumanEval: 10; the MBPP runs used 5)."""
    temperature: float = 0.0
    """Implementation / actor temperature (reference: 0)."""
    reflection_temperature: float = 0.2
    """Temperature of the reflection calls (reference: 0.2)."""
    num_internal_tests: int = Field(default=5, ge=0)
    """Self-generated unit tests, written once (paper: a few; the reference code kept only 1
    — the count used is recorded in the episode metrics)."""
    actor: str | InnerSpec = "auto"
    """The scaffold each trial runs: ``auto`` (non-code tasks: react when the task has tools
    besides submit, else cot; code tasks: Reflexion's own implement-then-test trial), any
    registered scaffold's name (react, cot, tot, lats, best_of_n, ...), or an inner spec
    ``{name, params}`` as best_of_n's ``inner``. A named actor on a code task is judged by
    the self-generated tests instead of the model's verdict."""
    actor_params: dict[str, JsonValue] = Field(default_factory=dict)
    """Params of an actor given by name (e.g. react's max_steps); an inner spec carries its
    own."""
    reset_env: bool = False
    """Start every non-code trial from a fork of the initial sandbox (the ALFWorld setting).
    Off by default because a state-scored task is scored on the episode's own sandbox."""
    max_tokens: int | None = 1024
    """Cap on each reply."""

    @model_validator(mode="after")
    def _actor_valid(self) -> ReflexionParams:
        spec = self.actor_spec()
        if spec is None:
            if self.actor_params and self.actor != "auto":
                raise ConfigError("reflexion: actor_params need a named actor")
            return self
        if isinstance(self.actor, InnerSpec) and self.actor_params:
            raise ConfigError("reflexion: put the actor's params in actor.params, not actor_params")
        _, inner = spec.build()
        if inner.oracle_feedback and not self.oracle_feedback:
            raise ConfigError(
                f"reflexion's actor {spec.name!r} sets oracle_feedback: true; set it on "
                "reflexion too, so the episode is marked as using the oracle"
            )
        return self

    def actor_spec(self, use_react: bool | None = None) -> InnerSpec | None:
        """The actor as an inner spec; None for ``auto`` unless ``use_react`` decides it."""
        if isinstance(self.actor, InnerSpec):
            return self.actor
        if self.actor != "auto":
            return InnerSpec(name=self.actor, params=dict(self.actor_params))
        if use_react is None:
            return None
        # the paper's actors run at reflexion's temperature (an actor_params value wins)
        params = {"temperature": self.temperature, **self.actor_params}
        return InnerSpec(name="react" if use_react else "cot", params=params)


def _implement_prompt(
    ctx: EpisodeContext, prev: str | None, feedback: str, lessons: list[str]
) -> str:
    parts = [prompts.task_text(ctx.task)]
    if prev is not None:
        parts += [
            "",
            "Your previous implementation:",
            f"```python\n{prev.rstrip()}\n```",
            "",
            feedback,
        ]
    if lessons:
        parts += ["", "Lessons from your earlier attempts:", *(f"- {x}" for x in lessons)]
    parts += ["", prompts.answer_format(ctx.task)]
    return "\n".join(parts)


def _with_lessons(instructions: str, lessons: list[str]) -> str:
    if not lessons:
        return instructions
    notes = "\n".join(f"- {x}" for x in lessons)
    return f"{instructions}\n\nLessons from your earlier attempts at this task:\n{notes}"


@register("scaffold", "reflexion")
class Reflexion:
    """Trial → self-evaluation → reflection, until the self-evaluation passes."""

    name: ClassVar[str] = "reflexion"
    Params: ClassVar[type[ScaffoldParams]] = ReflexionParams

    def __init__(self, params: ReflexionParams) -> None:
        self.params = params

    async def _reflect(self, ctx: EpisodeContext, attempt: str, feedback: str) -> str:
        text = (
            f"{prompts.task_text(ctx.task)}\n\nYour attempt:\n{attempt}\n\n{feedback}\n\n"
            "In a few sentences, diagnose why the attempt failed and write a plan that avoids "
            "the mistake next time."
        )
        resp = await ctx.model.generate(
            GenerateRequest(
                messages=prompts.user(text),
                role="reflect",
                temperature=self.params.reflection_temperature,
                max_tokens=self.params.max_tokens,
            )
        )
        return resp.text.strip() or "(empty reflection)"

    async def run(self, ctx: EpisodeContext) -> str | None:
        ctx.metrics["trials"] = 0
        code = ctx.task.kind == "code" and ctx.task.code is not None
        if code and self.params.actor == "auto":
            return await self._run_code(ctx)
        return await self._run_trials(ctx)

    # -- programming -----------------------------------------------------------------------
    async def _run_code(self, ctx: EpisodeContext) -> str | None:
        p = self.params
        assert ctx.task.code is not None
        visible = list(ctx.task.code.visible_tests)
        generated = await generate_tests(ctx, p.num_internal_tests) if p.num_internal_tests else []
        tests = visible + [t for t in generated if t not in visible]
        ctx.metrics["internal_tests"] = len(tests)
        lessons: list[str] = []
        impl: str | None = None
        feedback = ""
        best: str | None = None
        best_frac = -1.0
        for it in range(p.max_iters):
            ctx.check_time()
            ctx.metrics["trials"] = it + 1
            resp = await ctx.model.generate(
                GenerateRequest(
                    messages=prompts.user(_implement_prompt(ctx, impl, feedback, lessons)),
                    role="answer",
                    temperature=p.temperature,
                    max_tokens=p.max_tokens,
                )
            )
            new = parsing.extract_submission(resp.text, ctx.task)
            if new is None:
                passed, feedback = False, "Your reply held no code block."
            else:
                impl = new
                report = await run_tests(ctx.env, impl, tests)
                feedback = "Test results:\n" + report.feedback()
                passed = report.all_passed
                if report.fraction >= best_frac:
                    best, best_frac = impl, report.fraction
                    ctx.candidate(best)
                if ctx.oracle is not None:
                    passed = (await ctx.oracle.score(impl) or 0.0) >= 1.0
            if passed:
                ctx.metrics["self_passed"] = True
                ctx.candidate(impl)
                return impl
            if it < p.max_iters - 1:
                lessons.append(await self._reflect(ctx, f"```python\n{impl or ''}\n```", feedback))
        ctx.metrics["self_passed"] = False
        return best

    # -- question answering and agentic tasks ----------------------------------------------
    def _actor(self, ctx: EpisodeContext) -> tuple[Any, ScaffoldParams, str]:
        """A fresh trial scaffold (scaffolds may keep per-run state), its params, its name."""
        spec = self.params.actor_spec(any(t != "submit" for t in ctx.task.tools))
        assert spec is not None
        scaffold, params = spec.build()
        return scaffold, params, spec.name

    async def _self_evaluate(self, ctx: EpisodeContext, answer: str) -> float:
        system = (
            f"Task:\n{prompts.task_text(ctx.task)}\n\nJudge whether the proposed answer below "
            "solves the task. Reply with one word: sure, likely or impossible."
        )
        resp = await ctx.model.generate(
            GenerateRequest(
                messages=[
                    Message(role="system", content=system),
                    Message(role="user", content=f"Proposed answer: {answer}"),
                ],
                role="value",
                temperature=0.0,
                max_tokens=self.params.max_tokens,
            )
        )
        return parsing.parse_score(resp.text) or 0.0

    async def _judge(
        self, ctx: EpisodeContext, answer: str | None, tests: list[str] | None
    ) -> tuple[float, str]:
        """(score in [0, 1], feedback) of a trial's answer: the hidden scorer under
        oracle_feedback; the self-generated tests on a code task; the model's verdict else."""
        if answer is None or not answer.strip():
            return 0.0, "The attempt ended without an answer."
        if ctx.oracle is not None:
            return await ctx.oracle.score(answer) or 0.0, "The answer was judged incorrect."
        if tests is not None:
            report = await run_tests(ctx.env, answer, tests)
            return (1.0 if report.all_passed else report.fraction * 0.99), (
                "Test results:\n" + report.feedback()
            )
        score = await self._self_evaluate(ctx, answer)
        return score, "On reflection, the answer does not look right."

    async def _run_trials(self, ctx: EpisodeContext) -> str | None:
        p = self.params
        ctx.metrics["actor"] = self._actor(ctx)[2]
        tests: list[str] | None = None
        if ctx.task.kind == "code" and ctx.task.code is not None and ctx.env.sandbox is not None:
            visible = list(ctx.task.code.visible_tests)
            generated = await generate_tests(ctx, p.num_internal_tests) if p.num_internal_tests else []
            tests = visible + [t for t in generated if t not in visible]
            ctx.metrics["internal_tests"] = len(tests)
        lessons: list[str] = []
        best: str | None = None
        best_score = -1.0
        for it in range(p.max_iters):
            ctx.check_time()
            ctx.metrics["trials"] = it + 1
            fork = p.reset_env and ctx.env.sandbox is not None
            env = await ctx.env.fork() if fork else ctx.env
            view = ctx.task.model_copy(
                update={"instructions": _with_lessons(ctx.task.instructions, lessons)}
            )
            trial = EpisodeContext(
                task=view,
                model=ctx.model,
                env=env,
                limits=ctx.limits,
                trace=ctx.trace,
                seed=ctx.seed + it,
            )
            first_step = len(ctx.trace.steps)
            actor, actor_params, _ = self._actor(ctx)
            # the hidden scorer reaches the actor only if the actor itself asks for it
            trial.oracle = ctx.oracle if actor_params.oracle_feedback else None
            try:
                answer = await actor.run(trial)
            except LimitReached:
                # A budget stop inside the trial: its best answer so far (react's forced
                # submit, a search's best node) is kept unless an earlier trial did better
                # than a failing verdict.
                if trial.best is not None and best_score <= 0.0:
                    ctx.candidate(trial.best)
                raise
            finally:
                ctx.metrics["actor_metrics"] = dict(trial.metrics)
                if env is not ctx.env:
                    ctx.metrics["branch_cost_s"] = ctx.env.branch_cost_s
                    await env.close()
            score, verdict = await self._judge(ctx, answer, tests)
            if answer is not None and score > best_score:
                best, best_score = answer, score
                ctx.candidate(best)
            if score >= 1.0:
                ctx.metrics["self_passed"] = True
                return answer
            if it < p.max_iters - 1:
                steps = ctx.trace.steps[first_step:]
                shown = "\n".join(
                    f"Action: {s.action.tool}: {s.action.input}\nObservation: {s.observation[:500]}"
                    if s.action
                    else f"Observation: {s.observation[:500]}"
                    for s in steps
                )
                attempt = f"{shown}\nAnswer: {answer}" if shown else f"Answer: {answer}"
                lessons.append(await self._reflect(ctx, attempt, verdict))
        ctx.metrics["self_passed"] = False
        return best

