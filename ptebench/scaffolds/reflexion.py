"""reflexion (Shinn et al. 2023): trials, a self-evaluation, and verbal lessons between them.

Code tasks (the paper's programming setting): the model writes unit tests once from the
public spec (role ``test_gen``; the visible examples are added), then each trial writes an
implementation (role ``answer``) that is run against those tests in the sandbox. All pass →
submit. Otherwise a reflection call (role ``reflect``) writes a lesson from the failing tests
and the next trial sees the previous implementation, its test feedback and all lessons.
Calls ≤ 1 + max_iters + (max_iters − 1) = 2·max_iters.

Other tasks: each trial runs an actor (react when the task has tools, else cot) whose
instructions carry the lessons so far; the model's own verdict on the answer (role
``value``: sure/likely/impossible — "sure" is success) decides whether to stop; a failure
is reflected on. Calls ≤ max_iters·(calls(actor) + 2) − 1.

Without ``oracle_feedback`` nothing here reads the hidden tests or the gold answer. With it,
the self-evaluation is replaced by the hidden scorer (HotpotQA's exact-match reward in the
reference code, LATS-style stop-at-first-pass on code); the episode records the oracle calls.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, JsonValue

from ptebench.models.base import GenerateRequest, Message
from ptebench.registry import register
from ptebench.scaffolds import parsing, prompts
from ptebench.scaffolds.base import EpisodeContext, ScaffoldParams
from ptebench.scaffolds.best_of_n import generate_tests
from ptebench.scaffolds.codeexec import run_tests
from ptebench.scaffolds.cot import Cot, CotParams
from ptebench.scaffolds.react import React, ReactParams


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
    actor: Literal["auto", "react", "cot"] = "auto"
    """Actor of a non-code trial: auto = react when the task has tools besides submit."""
    actor_params: dict[str, JsonValue] = Field(default_factory=dict)
    """Params of the actor scaffold (e.g. react's max_steps)."""
    reset_env: bool = False
    """Start every non-code trial from a fork of the initial sandbox (the ALFWorld setting).
    Off by default because a state-scored task is scored on the episode's own sandbox."""
    max_tokens: int | None = 1024
    """Cap on each reply."""


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
        if ctx.task.kind == "code" and ctx.task.code is not None:
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
    def _actor(self) -> React | Cot:
        p = self.params
        merged = {"temperature": p.temperature, **p.actor_params}
        return (
            React(ReactParams.model_validate(merged))
            if self._use_react
            else Cot(CotParams.model_validate(merged))
        )

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

    async def _run_trials(self, ctx: EpisodeContext) -> str | None:
        p = self.params
        self._use_react = p.actor == "react" or (
            p.actor == "auto" and any(t != "submit" for t in ctx.task.tools)
        )
        ctx.metrics["actor"] = "react" if self._use_react else "cot"
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
            try:
                answer = await self._actor().run(trial)
            finally:
                if env is not ctx.env:
                    ctx.metrics["branch_cost_s"] = ctx.env.branch_cost_s
                    await env.close()
            if answer is None or not answer.strip():
                score, verdict = 0.0, "The attempt ended without an answer."
            elif ctx.oracle is not None:
                score = await ctx.oracle.score(answer) or 0.0
                verdict = "The answer was judged incorrect."
            else:
                score = await self._self_evaluate(ctx, answer)
                verdict = "On reflection, the answer does not look right."
            if answer is not None and score > best_score:
                best, best_score = answer, score
                ctx.candidate(best)
            if score >= 1.0:
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
        return best

    _use_react: bool = False
