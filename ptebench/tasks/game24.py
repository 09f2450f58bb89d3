"""game24: the 1,362 solvable Game of 24 puzzles over 1–13, generated and checked here.

A puzzle is a multiset of four numbers from 1–13 (1,820 multisets); it is solvable when
+, −, ×, ÷ and parentheses, with each number used exactly once, can make exactly 24 in
rational arithmetic (e.g. 3 3 8 8 → 8 / (3 − 8 / 3)). The solver below is exact
(``fractions.Fraction``), so the 1,362 count is ptebench's own, not copied from a list.

Difficulty order (documented in docs/tasks-suites.md). The Tree-of-Thoughts paper ranked
puzzles by the share of human players who solved them (4nums.com) and tested on ranks
901–1000. ptebench has no human data, so it ranks by a search-based proxy: the share of
the ToT search tree that succeeds — of all distinct three-step sequences "pick two
numbers, combine them with one operation" (children deduplicated per state), the fraction
ending at 24. More winning paths = easier. Ties break by the number of distinct values
reachable (fewer = easier, less to search), then by the numbers. Rank 1 is the easiest.
The default ``split: test`` is ranks 901–1000 of *this* order — chosen to mirror the ToT
setting's position, not its exact puzzles.

Scoring uses :func:`check`, which parses the submission with ``ast`` and accepts only
integer literals, + − × ÷ and parentheses: nothing in a submission is ever evaluated as
Python.
"""

from __future__ import annotations

import ast
import math
import re
import statistics
from fractions import Fraction
from functools import cache
from itertools import combinations_with_replacement

from ptebench.errors import ConfigError
from ptebench.records import Limits, Score
from ptebench.registry import register
from ptebench.sandbox.base import Sandbox, SandboxSpec
from ptebench.tasks.base import Reference, TaskInstance, TaskOptions, select

TARGET = Fraction(24)
TEST_RANKS = (901, 1000)
"""Ranks (1-based, inclusive) of the default test split, as in the ToT paper's setting."""
MAX_SUBMISSION_CHARS = 300
"""Longer submissions are rejected before parsing (a valid answer needs ~25 characters)."""

# -- exact solver ----------------------------------------------------------------------------
# Rationals are (numerator, denominator) int pairs in lowest terms with a positive
# denominator: exact like Fraction, but hashing and sorting them is ~10x cheaper, which
# keeps generating all 1,820 puzzles to a few seconds.

Q = tuple[int, int]
Nums = tuple[Q, ...]
Term = tuple[Q, str]
"""A value with the expression text that made it."""
_Q24: Q = (24, 1)


def _q(n: int, d: int) -> Q:
    g = math.gcd(n, d)
    if d < 0:
        g = -g
    return n // g, d // g


def _combine(a: Q, b: Q) -> list[tuple[str, Q, Q, Q]]:
    """Every (op, left, right, result) from one pair; ÷ 0 is skipped."""
    (an, ad), (bn, bd) = a, b
    out = [
        ("+", a, b, _q(an * bd + bn * ad, ad * bd)),
        ("*", a, b, _q(an * bn, ad * bd)),
        ("-", a, b, _q(an * bd - bn * ad, ad * bd)),
        ("-", b, a, _q(bn * ad - an * bd, ad * bd)),
    ]
    if bn != 0:
        out.append(("/", a, b, _q(an * bd, ad * bn)))
    if an != 0:
        out.append(("/", b, a, _q(bn * ad, bd * an)))
    return out


def _children(state: Nums) -> dict[Nums, tuple[str, Q, Q, Q]]:
    """Distinct next states (sorted multisets) of one ToT step, each with one step making it."""
    out: dict[Nums, tuple[str, Q, Q, Q]] = {}
    n = len(state)
    for i in range(n):
        for j in range(i + 1, n):
            rest = state[:i] + state[i + 1 : j] + state[j + 1 :]
            for step in _combine(state[i], state[j]):
                child = tuple(sorted((*rest, step[3])))
                out.setdefault(child, step)
    return out


@cache
def _paths(state: Nums) -> tuple[int, int]:
    """(winning, total) leaf paths below ``state`` over distinct children."""
    if len(state) == 1:
        return (1 if state[0] == _Q24 else 0, 1)
    win = total = 0
    for child in _children(state):
        w, t = _paths(child)
        win, total = win + w, total + t
    return win, total


@cache
def _reachable(state: Nums) -> frozenset[Q]:
    """Every value the numbers of ``state`` can make, all of them used."""
    if len(state) == 1:
        return frozenset(state)
    vals: set[Q] = set()
    for child in _children(state):
        vals |= _reachable(child)
    return frozenset(vals)


def _fmt(x: Q | Fraction) -> str:
    n, d = (x.numerator, x.denominator) if isinstance(x, Fraction) else x
    return str(n) if d == 1 else f"{n}/{d}"


def _left(state: Nums) -> str:
    return " ".join(_fmt(x) for x in sorted(state, key=lambda q: Fraction(*q)))


def _operand(x: Q) -> str:
    return _fmt(x) if x[1] == 1 else f"({_fmt(x)})"


def _natural(item: tuple[Nums, tuple[str, Q, Q, Q]]) -> tuple[bool, float]:
    """Search order of the reference solution: steps a person would try first — positive
    whole intermediate results, then the child with the largest winning share."""
    child, step = item
    r = step[3]
    win, total = _paths(child)
    return (r[1] != 1 or r[0] <= 0, -win / total)


def _state(numbers: tuple[int, ...] | list[int]) -> Nums:
    return tuple(sorted((n, 1) for n in numbers))


def solve(numbers: tuple[int, ...] | list[int]) -> tuple[str, list[str]] | None:
    """One solution of a puzzle: (expression, ToT steps), or None when there is none.

    The steps are the three intermediate thoughts in the ToT format, e.g.
    ``4 + 8 = 12 (left: 6 12 13)``; the expression is parenthesised per step.
    """
    def take(terms: list[Term], value: Q) -> str:
        k = next(k for k, (v, _) in enumerate(terms) if v == value)
        return terms.pop(k)[1]

    def search(st: Nums, terms: list[Term]) -> tuple[str, list[str]] | None:
        if len(st) == 1:
            return (terms[0][1], []) if st[0] == _Q24 else None
        for child, (op, a, b, r) in sorted(_children(st).items(), key=_natural):
            if _paths(child)[0] == 0:
                continue
            rest = list(terms)
            text = f"{take(rest, a)} {op} {take(rest, b)}"
            found = search(child, [*rest, (r, f"({text})" if len(child) > 1 else text)])
            if found is not None:
                step = f"{_operand(a)} {op} {_operand(b)} = {_fmt(r)} (left: {_left(child)})"
                return found[0], [step, *found[1]]
        return None

    state = _state(numbers)
    return search(state, [(x, _fmt(x)) for x in state])


@cache
def puzzles() -> list[tuple[tuple[int, ...], int, int, int]]:
    """Every solvable puzzle with (numbers, winning paths, total paths, reachable values),
    in ptebench's difficulty order (easiest first)."""
    rows: list[tuple[tuple[int, ...], int, int, int]] = []
    for nums in combinations_with_replacement(range(1, 14), 4):
        state = _state(nums)
        win, total = _paths(state)
        if win:
            rows.append((nums, win, total, len(_reachable(state))))
    rows.sort(key=lambda r: (-r[1] / r[2], r[3], r[0]))
    return rows


# -- checker ---------------------------------------------------------------------------------

_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class BadExpression(ValueError):
    """A submission that is not an arithmetic expression over the puzzle's numbers."""


def _eval(node: ast.AST, used: list[int]) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left = _eval(node.left, used)
        right = _eval(node.right, used)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise BadExpression("division by zero")
        return left / right
    raise BadExpression(f"only integers, + - * / and parentheses are allowed, not {ast.dump(node)[:60]}")


def expression_of(submission: str) -> str:
    """The expression in a submission: the text after the last ``Answer:`` if any (else the
    last line), with ``= 24`` / ``24 =`` and surrounding backticks or $ removed, and ×, ÷,
    −, \\times, \\div read as *, /, -."""
    text = submission.strip()
    found = re.findall(r"answer\s*:\s*(.*)", text, re.I)
    if found:
        text = found[-1].strip()
    elif "\n" in text:
        text = [ln for ln in text.splitlines() if ln.strip()][-1].strip()
    text = text.translate(str.maketrans({"×": "*", "÷": "/", "−": "-", "–": "-"}))
    text = text.replace("\\times", "*").replace("\\div", "/").strip("$` ")
    text = re.sub(r"=\s*24\s*\.?\s*$", "", text)
    text = re.sub(r"^\s*24\s*=", "", text)
    return text.strip().rstrip(".").strip()


def check(numbers: tuple[int, ...] | list[int], submission: str) -> tuple[bool, str]:
    """Whether ``submission`` makes 24 from ``numbers``, each used exactly once.

    Never raises on any input; returns (ok, explanation).
    """
    if len(submission) > MAX_SUBMISSION_CHARS:
        return False, f"submission longer than {MAX_SUBMISSION_CHARS} characters"
    expr = expression_of(submission)
    if not expr:
        return False, "no expression found"
    try:
        tree = ast.parse(expr, mode="eval")
        used: list[int] = []
        value = _eval(tree.body, used)
    except BadExpression as e:
        return False, f"{expr!r}: {e}"
    except (SyntaxError, ValueError, RecursionError, MemoryError, TypeError, OverflowError) as e:
        return False, f"{expr!r} is not an arithmetic expression ({type(e).__name__})"
    if sorted(used) != sorted(numbers):
        return False, f"{expr!r} uses {sorted(used)}, not each of {sorted(numbers)} exactly once"
    if value != TARGET:
        return False, f"{expr!r} = {_fmt(value)}, not 24"
    return True, f"{expr} = 24"


# -- prompt pack (public): ToT propose / value prompts, in ptebench's own wording -------------

PROMPTS: dict[str, str] = {
    "propose": (
        "Combine two of the numbers with +, -, * or / to get a new number. List several "
        "different possible next steps, one per line, each followed by the numbers left.\n"
        "Example\nNumbers: 3 5 7 12\nNext steps:\n3 + 5 = 8 (left: 7 8 12)\n"
        "12 - 7 = 5 (left: 3 5 5)\n5 * 3 = 15 (left: 7 12 15)\n12 / 3 = 4 (left: 4 5 7)\n"
        "7 - 5 = 2 (left: 2 3 12)\n\nNumbers: {input}\nNext steps:\n"
    ),
    "value": (
        "Can these numbers make 24 with +, -, * and /, each used exactly once? Try a few "
        "combinations, then end with one word: sure, likely or impossible.\n"
        "Numbers: 4 6\n4 * 6 = 24\nsure\n"
        "Numbers: 2 9 10\n10 + 9 + 2 = 21; (10 - 9) * 2 = 2; 9 * 2 + 10 = 28. "
        "The numbers are small and close to 24 only roughly\nlikely\n"
        "Numbers: 1 1 2\n1 + 1 + 2 = 4; (1 + 1) * 2 = 4. Far too small\nimpossible\n"
        "Numbers: {input}\n"
    ),
    "value_last": (
        "The puzzle was: {input}. Judge whether this answer uses each of those numbers "
        "exactly once and equals 24. End with one word: sure or impossible.\n"
        "Answer: {answer}\n"
    ),
    "cot": (
        "Use the numbers and + - * / to make 24, each number exactly once. Work in three "
        "steps, each combining two numbers (write the numbers left), then give the whole "
        "expression.\nExample\nInput: 4 4 6 8\nSteps:\n4 + 8 = 12 (left: 4 6 12)\n"
        "6 - 4 = 2 (left: 2 12)\n2 * 12 = 24 (left: 24)\nAnswer: (6 - 4) * (4 + 8) = 24\n\n"
        "Input: {input}\n"
    ),
}


def _instance(
    rank: int, row: tuple[tuple[int, ...], int, int, int], median_share: float
) -> TaskInstance:
    nums, win, total, reach = row
    solved = solve(nums)
    if solved is None:  # puzzles() keeps only solvable ones; reaching this is a solver bug
        raise RuntimeError(f"game24 solver found no solution for {nums}")
    answer, steps = solved
    share = win / total
    numbers = " ".join(str(n) for n in nums)
    # Harder puzzles have a smaller winning share; the log ratio to the median share
    # (≈ 0.34 %) puts the median puzzle at d = 1, clipped to [-2, 4].
    difficulty = max(-2.0, min(4.0, 1.0 + math.log(median_share / share)))
    return TaskInstance(
        family="game24",
        id="game24-" + "-".join(str(n) for n in nums),
        kind="qa",
        instructions=(
            f"Use the numbers {numbers} and the operations + - * / (with parentheses) to make "
            "24. Use each number exactly once. Reply with the expression on a final line "
            "'Answer: <expression>'."
        ),
        tools=["submit"],
        prompts=dict(PROMPTS),
        metadata={
            "category": "arithmetic puzzle",
            "difficulty": round(difficulty, 2),
            "numbers": list(nums),
            "input": numbers,
            "rank": rank,
            "winning_paths": win,
            "total_paths": total,
            "solved_share": round(share, 6),
            "reachable_values": reach,
            "scoring": "checker: an expression using each number exactly once that equals 24",
        },
        limits=Limits(steps=10),
        reference=Reference(
            answer=f"{answer} = 24",
            steps=steps,
            difficulty=difficulty,
            action_difficulty=-0.5,
            tests=[],
        ),
        hidden={"numbers": list(nums)},
    )


@cache
def _all_instances() -> tuple[TaskInstance, ...]:
    rows = puzzles()
    median_share = statistics.median(r[1] / r[2] for r in rows)
    return tuple(_instance(k + 1, row, median_share) for k, row in enumerate(rows))


SPLITS = ("test", "train", "all")


@register("task", "game24")
class Game24:
    """The 1,362 solvable Game of 24 puzzles; ``split``: test (default, ranks 901–1000),
    train (every other rank) or all (1,362, easiest first)."""

    name = "game24"
    accepted_options: frozenset[str] = frozenset()
    """Keys of a task entry's ``options`` this family reads (others are refused)."""
    default_limits = Limits(steps=10)

    def instances(self, options: TaskOptions) -> list[TaskInstance]:
        split = options.split or "test"
        every = list(_all_instances())
        lo, hi = TEST_RANKS
        if split == "test":
            chosen = every[lo - 1 : hi]
        elif split == "train":
            chosen = every[: lo - 1] + every[hi:]
        elif split == "all":
            chosen = every
        else:
            raise ConfigError(f"game24: unknown split {split!r}; accepted: {', '.join(SPLITS)}")
        return select(chosen, options)

    def sandbox_spec(self, instance: TaskInstance) -> SandboxSpec | None:
        return None

    async def setup(self, sandbox: Sandbox | None, instance: TaskInstance) -> None:
        return None

    async def score(
        self, sandbox: Sandbox | None, instance: TaskInstance, submission: str | None
    ) -> Score:
        raw = instance.hidden.get("numbers")
        nums = [int(str(n)) for n in raw] if isinstance(raw, list) else []
        ok, why = check(nums, submission or "")
        return Score(value=1.0 if ok else 0.0, explanation=why)
