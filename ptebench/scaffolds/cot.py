"""cot (chain of thought, Wei et al. 2022): reason step by step, then answer.

Calls = 1. The reply's ``Answer:`` line (a program for code tasks) is the submission. As
the one-call scaffold it also offers ``sample(ctx, n)`` — n samples in one request — which
``majority`` (CoT-SC) and ``best_of_n`` use instead of n separate runs.
"""

from __future__ import annotations

from typing import ClassVar

from ptebench.models.base import GenerateRequest
from ptebench.registry import register
from ptebench.scaffolds import parsing, prompts
from ptebench.scaffolds.base import EpisodeContext, ScaffoldParams

COT_INSTRUCTION = (
    "Let's think step by step. Reason through the problem first, then give the result."
)


class CotParams(ScaffoldParams):
    """Parameters of chain of thought."""

    temperature: float = 0.0
    """Sampling temperature for a single run (greedy, as in the CoT baselines). ``majority`` and
    ``best_of_n`` sample at their own temperature (ToT's CoT-SC used 0.7)."""
    max_tokens: int | None = 1024
    """Cap on the reply length."""


def cot_prompt(ctx: EpisodeContext) -> str:
    """The task, the step-by-step instruction and the answer format; a task's prompt pack may
    replace it with ``cot`` (``{input}`` is the task statement)."""
    task = ctx.task
    if "cot" in task.prompts:
        return prompts.fill(task.prompts["cot"], input=task.instructions)
    return f"{prompts.task_text(task)}\n\n{COT_INSTRUCTION}\n{prompts.answer_format(task)}"


@register("scaffold", "cot")
class Cot:
    """One call with step-by-step reasoning; the final answer is extracted."""

    name: ClassVar[str] = "cot"
    Params: ClassVar[type[ScaffoldParams]] = CotParams

    def __init__(self, params: CotParams) -> None:
        self.params = params

    async def sample(
        self, ctx: EpisodeContext, n: int, temperature: float | None = None
    ) -> list[str | None]:
        """``n`` submissions from one request (role ``answer``)."""
        req = GenerateRequest(
            messages=prompts.user(cot_prompt(ctx)),
            role="answer",
            n=n,
            temperature=self.params.temperature if temperature is None else temperature,
            max_tokens=self.params.max_tokens,
        )
        resp = await ctx.model.generate(req)
        return [parsing.extract_submission(c.text, ctx.task) for c in resp.choices]

    async def run(self, ctx: EpisodeContext) -> str | None:
        sub = (await self.sample(ctx, 1))[0]
        ctx.candidate(sub)
        return sub
