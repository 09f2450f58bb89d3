"""How the sim writes what it decided: the varied forms real models use.

The sim first decides *what* to say (an action, an answer, a verdict — right or wrong, by its
law); this module decides only *how* it is written. In the ``varied`` style every reply takes
one of the forms found in the corpus of real outputs (tests/data/parsing_corpus): markdown
labels, numbered ReAct lines, prose around fences, JSON tool calls, verbose verdicts and
scores. The ``plain`` style writes the canonical forms the scaffolds' prompts ask for. The
draw comes from its own random stream (seeded by the reply's key), so the style never
changes a decision, and every form written reads back to the same value through
ptebench.scaffolds.parsing (tests/models/test_sim_styles.py checks each one).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence

STOP_IGNORED = 0.1
"""Share of replies (varied style) on which the sim ignores the request's stop sequences,
as some models and providers do — the scaffold's parser must then cut what follows."""


class Style:
    """The style of one reply: its mode and its own random stream."""

    def __init__(self, mode: str, key: str) -> None:
        self.varied = mode == "varied"
        self.rng = random.Random(hashlib.sha256(f"{key}|style".encode()).hexdigest())

    def pick(self, forms: Sequence[Callable[[], str]]) -> str:
        """The first (canonical) form in plain style, a random one in varied style."""
        return (self.rng.choice(forms) if self.varied else forms[0])()

    def apply_stop(self, text: str, stop: Sequence[str]) -> str:
        """Cut at the first stop sequence, as an API does (varied style: not always)."""
        if not stop or (self.varied and self.rng.random() < STOP_IGNORED):
            return text
        cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
        return text if cut < 0 else text[:cut]


def fence_lang(tool: str) -> str:
    """The fence language a model writes for a tool's input."""
    return {"bash": "bash", "python": "python"}.get(tool, "")


def _simple(s: str) -> bool:
    return "\n" not in s and not any(c in s for c in "[]()\"'\\`*") and s == s.strip() and bool(s)


def action_reply(thought: str, tool: str, inp: str, style: Style) -> str:
    """A ReAct step: a thought and one action (``submit`` carries the answer)."""
    forms: list[Callable[[], str]] = [
        lambda: f"Thought: {thought}\nAction: {tool}: {inp}",
        lambda: f"**Thought:** {thought}\n**Action:** {tool}: {inp}",
        lambda: json.dumps({"tool": tool, "input": inp}),
        lambda: f"{thought}\n\n```json\n{json.dumps({'tool': tool, 'input': inp}, indent=2)}\n```",
        lambda: f"Thought: {thought}\nAction: {json.dumps({'tool': tool, 'input': inp})}",
    ]
    if "\n" not in inp:
        forms.append(lambda: f"Thought 1: {thought}\nAction 1: {tool}: {inp}")
    if _simple(inp):
        forms += [
            lambda: f"Thought: {thought}\nAction: {tool}[{inp}]",
            lambda: f"Thought: {thought}\nAction: {tool}({json.dumps(inp)})",
            lambda: f"Thought: {thought}\nAction: {tool}\nAction Input: {inp}",
        ]
    if tool in ("bash", "python"):
        lang = fence_lang(tool)
        forms += [
            lambda: f"{thought}\n\n```{lang}\n{inp}\n```",
            lambda: f"{thought}\n\n```{lang}\n{inp}\n```\n\nThis should show what I need next.",
            lambda: f"Thought: {thought}\nAction: {tool}\n```{lang}\n{inp}\n```",
            lambda: f"Thought: {thought}\nAction: {tool}: {inp}\nObservation: (the command runs here)",
        ]
    if tool == "submit" and "\n" not in inp:
        forms += [
            lambda: f"{thought}\n\n**Final Answer:** {inp}",
            lambda: f"Thought: {thought}\nAnswer: {inp}",
        ]
    return style.pick(forms)


def answer_reply(reasoning: list[str], answer: str, style: Style) -> str:
    """Reasoning lines, then the final answer."""
    head = "\n".join(reasoning)
    sep = "\n" if head else ""
    forms: list[Callable[[], str]] = [
        lambda: f"{head}{sep}Answer: {answer}",
        lambda: f"{head}{sep}\n**Answer:** {answer}",
        lambda: f"{head}{sep}Final Answer: {answer}",
        lambda: f"{head}{sep}So the answer is {answer}.\n\nAnswer: {answer}",
        lambda: f"Let me work through this.\n\n{head}{sep}\n**Final answer:** `{answer}`",
        lambda: f"{head}{sep}### Answer: {answer}",
    ]
    return style.pick(forms)


def code_reply(reasoning: list[str], program: str, style: Style) -> str:
    """A program in a fenced block, in plain style alone; else with prose around it and,
    sometimes, an "example usage" block after it."""
    head = "\n".join(reasoning)
    sep = "\n" if head else ""
    body = program.rstrip("\n")
    forms: list[Callable[[], str]] = [
        lambda: f"{head}{sep}```python\n{body}\n```",
        lambda: f"{head}{sep}Here is the implementation:\n\n```python\n{body}\n```\n\nIt handles the "
        "edge cases in the docstring.",
        lambda: f"{head}{sep}```python\n{body}\n```\n\nExample usage:\n\n```python\n# try it\n"
        "print('ok')\n```",
        lambda: f"{head}{sep}```py\n{body}\n```",
        lambda: f"Sure! Below is a complete solution.\n{head}{sep}\n```python\n{body}\n```",
    ]
    return style.pick(forms)


def proposal_reply(lines: list[str], style: Style) -> str:
    """Candidates, one per line; varied style numbers or bullets them, or adds a header."""
    forms: list[Callable[[], str]] = [
        lambda: "\n".join(lines),
        lambda: "Possible next steps:\n" + "\n".join(lines),
        lambda: "\n".join(f"{i + 1}. {ln}" for i, ln in enumerate(lines)),
        lambda: "\n".join(f"- {ln}" for ln in lines),
    ]
    return style.pick(forms)


def verdict_reply(word: str, style: Style) -> str:
    """A sure/likely/impossible verdict, bare or after a line of working."""
    forms: list[Callable[[], str]] = [
        lambda: word,
        lambda: f"{word.capitalize()}.",
        lambda: f"Let me try a few combinations first.\n{word}",
        lambda: f"Trying the obvious operations gives a clear picture.\nVerdict: **{word}**",
        lambda: f"{word.capitalize()}. (I checked the remaining numbers against 24.)",
    ]
    return style.pick(forms)


def score_reply(n: int, style: Style) -> str:
    """A 1–10 score, bare or in the forms judges write."""
    forms: list[Callable[[], str]] = [
        lambda: str(n),
        lambda: f"Score: {n}/10",
        lambda: f"The reasoning so far holds up reasonably well. I'd rate it {n} out of 10.",
        lambda: f"The steps are checked one by one.\nThus the correctness score is {n}",
        lambda: f"Overall assessment of the attempt (scale 1 to 10). Rating: [[{n}]]",
        lambda: f"{n}\n\nThe answer follows from the steps above.",
    ]
    return style.pick(forms)


def tests_reply(tests: list[str], style: Style) -> str:
    """``assert`` lines, bare or in a fenced block under a sentence."""
    body = "\n".join(tests)
    forms: list[Callable[[], str]] = [
        lambda: body,
        lambda: f"Here are the tests:\n\n```python\n{body}\n```",
        lambda: f"```python\n{body}\n```\nThese cover typical and edge cases.",
    ]
    return style.pick(forms)


def vote_reply(i: int, style: Style) -> str:
    """The chosen candidate's number."""
    forms: list[Callable[[], str]] = [
        lambda: f"Answer: {i}",
        lambda: f"Candidate {i} is the most careful of them.\n\n**Answer:** {i}",
        lambda: f"After comparing them, the best choice is {i}.",
        lambda: f"Answer: Candidate {i}",
    ]
    return style.pick(forms)
