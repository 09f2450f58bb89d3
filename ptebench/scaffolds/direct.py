"""direct (the paper's "IO" baseline): one call, the answer straight away.

Calls = 1. For code tasks the answer is the program (a fenced block or the raw completion);
for other tasks it is the ``Answer:`` line of the reply (else its last line). No tools are
used even when the task offers them: this is the un-enhanced model.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ptebench.models.base import GenerateRequest, Message
from ptebench.registry import register
from ptebench.scaffolds.base import EpisodeContext, ScaffoldParams
from ptebench.scaffolds.parsing import extract_submission
from ptebench.tasks.base import TaskView


class DirectParams(ScaffoldParams):
    """Parameters of the direct scaffold."""

    temperature: float = 0.0
    """Sampling temperature (0: greedy, the usual IO baseline)."""
    max_tokens: int | None = Field(default=1024)
    """Cap on the reply length."""
    completion: bool = False
    """Send the code prompt as raw text completion (base models) instead of a chat message."""


def answer_prompt(task: TaskView) -> str:
    """The instruction for a one-shot answer."""
    if task.kind == "code" and task.code is not None:
        return (
            "Complete the following Python function. Reply with the whole program in one "
            f"```python code block.\n\n```python\n{task.code.prompt}```"
        )
    return f"{task.instructions}\n\nReply with your final answer on the last line as 'Answer: <answer>'."


@register("scaffold", "direct")
class Direct:
    """One call; the reply is the submission."""

    name: ClassVar[str] = "direct"
    Params: ClassVar[type[ScaffoldParams]] = DirectParams

    def __init__(self, params: DirectParams) -> None:
        self.params = params

    async def run(self, ctx: EpisodeContext) -> str | None:
        task = ctx.task
        p = self.params
        if p.completion and task.code is not None:
            req = GenerateRequest(
                prompt=task.code.prompt, role="answer", temperature=p.temperature,
                max_tokens=p.max_tokens, stop=["\ndef ", "\nclass ", "\nif __name__", "\n#", "\nprint("],
            )
        else:
            req = GenerateRequest(
                messages=[Message(role="user", content=answer_prompt(task))],
                role="answer", temperature=p.temperature, max_tokens=p.max_tokens,
            )
        text = (await ctx.model.generate(req)).text
        return extract_submission(text, task, raw_fallback=True)
