"""arith: multi-digit arithmetic, solvable by mental arithmetic or with a python tool.

The built-in family of the quickstart: small, deterministic, and it makes tool use matter.
Instance i (0 ≤ i < 200) multiplies or adds two numbers whose digit counts grow with i, so
difficulty rises along the list. Scored by exact integer match. Runs code, so it asks for a
sandbox (docker by default, local if the user chooses it).

For the simulated family: the final answer's difficulty grows with the digits involved
(d = 0.8·(digits − 5)), while writing ``print(a * b)`` is an easy action (d = −1.5); a tool
user therefore beats a one-shot answer, as with real models.
"""

from __future__ import annotations

import random
import re

from ptebench.records import Action, Limits, Score
from ptebench.registry import register
from ptebench.sandbox.base import Resources, Sandbox, SandboxSpec
from ptebench.tasks.base import Reference, TaskInstance, TaskOptions, select

N_INSTANCES = 200


def _instance(i: int) -> TaskInstance:
    rng = random.Random(f"arith-{i}")
    d1 = 1 + (i * 5) // N_INSTANCES + rng.randint(0, 1)  # 1..6 digits
    d2 = 1 + (i * 4) // N_INSTANCES + rng.randint(0, 1)
    a = rng.randint(10 ** (d1 - 1), 10**d1 - 1)
    b = rng.randint(10 ** (d2 - 1), 10**d2 - 1)
    op = "*" if i % 3 else "+"
    result = a * b if op == "*" else a + b
    digits = d1 + d2 + (2 if op == "*" else 0)
    return TaskInstance(
        family="arith",
        id=f"arith-{i:03d}",
        kind="qa",
        instructions=f"What is {a} {op} {b}? Give the exact integer.",
        tools=["python", "bash", "submit"],
        metadata={"digits": d1 + d2, "op": op},
        reference=Reference(
            answer=str(result),
            actions=[Action(tool="python", input=f"print({a} {op} {b})")],
            steps=[f"{a} {op} {b} = {result}"],
            difficulty=0.8 * (digits - 5),
            action_difficulty=-1.5,
            tests=[],
        ),
        hidden={"result": result},
    )


@register("task", "arith")
class Arith:
    """200 arithmetic problems of increasing size."""

    name = "arith"
    accepted_options: frozenset[str] = frozenset()
    """Keys of a task entry's ``options`` this family reads (others are refused)."""
    default_limits = Limits(steps=10, tool_timeout_s=10)

    def instances(self, options: TaskOptions) -> list[TaskInstance]:
        return select([_instance(i) for i in range(N_INSTANCES)], options)

    def sandbox_spec(self, instance: TaskInstance) -> SandboxSpec | None:
        # the whole state of an episode is its files and processes, so a container may be
        # reset (and the reset verified) for the next episode instead of made anew
        return SandboxSpec(resources=Resources(cpus=0.5, memory_mb=256, pids=64, disk_mb=64),
                           reuse=True)

    async def setup(self, sandbox: Sandbox | None, instance: TaskInstance) -> None:
        return None

    async def score(
        self, sandbox: Sandbox | None, instance: TaskInstance, submission: str | None
    ) -> Score:
        expected = int(str(instance.hidden["result"]))
        found = re.findall(r"-?\d[\d,_]*", submission or "")
        if not found:
            return Score(value=0.0, explanation="no integer in the submission")
        got = int(re.sub(r"[,_]", "", found[-1]))
        ok = got == expected
        return Score(value=1.0 if ok else 0.0, explanation="exact match" if ok else f"got {got}")
