"""Prompts and output parsers shared by the scaffolds.

Prompts are built only from the task's public view. A task may override any template
through its prompt pack (``TaskView.prompts``, e.g. game24's ToT propose/value prompts);
the keys a scaffold reads are listed in docs/scaffolds.md.

Prompts ask for: final answers ending in ``Answer: X`` or a fenced code block; proposals one
per line; values as a number (1–10) or sure/likely/impossible; tests as ``assert`` lines;
votes as ``Answer: <index>``. Replies are read by ptebench.scaffolds.parsing, which also
accepts the looser forms real models write (docs/scaffolds.md, "Parsing").
"""

from __future__ import annotations

from ptebench.models.base import Message
from ptebench.tasks.base import TaskView

SYSTEM = "You are a capable assistant solving a task. Follow the requested output format exactly."


def task_text(task: TaskView) -> str:
    """The public statement of the task: instructions, plus the code prompt for code tasks."""
    if task.kind == "code" and task.code is not None:
        parts = [
            task.instructions.strip(),
            "",
            f"```{task.code.language}",
            task.code.prompt.rstrip(),
            "```",
        ]
        if task.code.visible_tests:
            parts += ["", "Examples that must hold:", *task.code.visible_tests]
        return "\n".join(parts)
    return task.instructions.strip()


def answer_format(task: TaskView) -> str:
    """How a final answer must be written for this task."""
    if task.kind == "code" and task.code is not None:
        return (
            f"Write the complete Python program defining `{task.code.entry_point}` in one "
            "```python code block."
        )
    return "End with a line of the form 'Answer: <your final answer>'."


def user(text: str) -> list[Message]:
    """A one-turn chat: the shared system prompt and one user message."""
    return [Message(role="system", content=SYSTEM), Message(role="user", content=text)]


def fill(template: str, **values: str) -> str:
    """Fill ``{name}`` slots of a task-supplied template, leaving unknown braces alone."""
    out = template
    for k, v in values.items():
        out = out.replace("{" + k + "}", v)
    return out
