"""The native task format: schema errors, every scoring method, per-episode secrets.

Runs on the local sandbox (real subprocesses in a temp dir): the families here keep their
setup inside the working directory and say so with ``local_ok: true``.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ptebench import registry
from ptebench.errors import ConfigError
from ptebench.sandbox.base import SandboxSpec
from ptebench.sandbox.local import LocalProvider
from ptebench.tasks.base import TaskOptions
from ptebench.tasks.cli import app as tasks_app
from ptebench.tasks.native import (
    NativeTaskFamily,
    TaskFormatError,
    load_family,
    solution_actions,
)
from ptebench.tasks.native_spec import Epochs


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return folder


def family(tmp_path: Path, scoring: dict, task: dict, extra: dict | None = None,
           files: dict[str, str] | None = None) -> NativeTaskFamily:
    doc = {"spec": 1, "family": "fam", "tasks": [{"id": "t", "instructions": "do it", **task}],
           "scoring": scoring, "local_ok": True, **(extra or {})}
    write(tmp_path, {"task.yaml": yaml.safe_dump(doc), **(files or {})})
    return load_family(tmp_path)


async def score(fam: NativeTaskFamily, submission: str | None, prep: str | None = None) -> float | None:
    """Set the first instance up in a fresh local sandbox, optionally run ``prep``, score."""
    inst = fam.instances()[0]
    async with LocalProvider().acquire(fam.sandbox_spec(inst) or SandboxSpec(), {}) as box:
        await fam.setup(box, inst)
        if prep:
            assert (await box.exec(prep)).ok
        return (await fam.score(box, inst, submission)).value


# --- schema errors ---------------------------------------------------------------------------


BAD = """\
spec: 1
family: bad family
colour: blue
tasks:
  - id: a
    instructions: file:missing.md
    target: {sha256: nothex}
    files: {relative/path: assets/nope.bin}
    setup: scripts/none.sh
  - id: b
    instructions: ok
    target: {literal: x, from_sandbox: {cmd: cat /f}}
sandbox: {network: sometimes}
scoring: {method: fuzzy, submission: clipboard}
limits: {steps: many}
"""


def test_every_schema_error_is_reported_at_once_with_file_and_field(tmp_path: Path) -> None:
    write(tmp_path, {"task.yaml": BAD})
    with pytest.raises(TaskFormatError) as ei:
        load_family(tmp_path)
    errors = ei.value.errors
    assert all(str(tmp_path / "task.yaml") in e for e in errors)
    wanted = [
        "family:", "colour:", "tasks[0].instructions:", "tasks[0].target.sha256:",
        "tasks[0].files", "tasks[0].setup:", "tasks[1].target:", "sandbox.network:",
        "scoring.method:", "scoring.submission:", "limits.steps:",
    ]
    for field in wanted:
        assert any(f": {field}" in e for e in errors), (field, errors)
    assert any("missing.md" in e and "does not exist" in e for e in errors)
    assert any("'relative/path' must be absolute" in e for e in errors)
    assert any("'assets/nope.bin' does not exist" in e for e in errors)
    assert any("exactly one of literal, sha256, from_sandbox" in e for e in errors)


def test_cross_field_errors_name_the_task(tmp_path: Path) -> None:
    write(tmp_path, {"task.yaml": """\
        spec: 1
        family: f
        tasks:
          - {id: a, instructions: x, target: {sha256: "%s"}}
          - {id: a, instructions: y}
        scoring: {method: includes}
        """ % ("0" * 64)})
    with pytest.raises(TaskFormatError) as ei:
        load_family(tmp_path)
    msg = str(ei.value)
    assert "duplicate task id 'a'" in msg
    assert "sha256 target only works with method exact" in msg
    assert "method includes needs a target" in msg


def test_unknown_tool_names_are_rejected_with_the_accepted_ones(tmp_path: Path) -> None:
    write(tmp_path, {"task.yaml": """\
        spec: 1
        family: f
        tools: [bash, browser]
        tasks:
          - {id: a, instructions: x, target: "1", tools: [python, sumbit]}
        """})
    with pytest.raises(TaskFormatError) as ei:
        load_family(tmp_path)
    errs = ei.value.errors
    assert any(": tools:" in e and "unknown tool(s) ['browser']" in e for e in errs), errs
    assert any(": tasks[0].tools:" in e and "unknown tool(s) ['sumbit']" in e
               and "accepted: bash, python, submit" in e for e in errs), errs


def test_tasks_file_errors_carry_line_numbers(tmp_path: Path) -> None:
    write(tmp_path, {
        "task.yaml": "spec: 1\nfamily: f\ntasks_file: tasks.jsonl\n",
        "tasks.jsonl": '{"id": "ok", "instructions": "x", "target": "1"}\n{"id": "b"}\nnot json\n',
    })
    with pytest.raises(TaskFormatError) as ei:
        load_family(tmp_path)
    errs = ei.value.errors
    assert any("tasks.jsonl:2: instructions: Field required" in e for e in errs), errs
    assert any("tasks.jsonl:3: invalid JSON" in e for e in errs), errs


def test_generator_and_yaml_syntax(tmp_path: Path) -> None:
    gen = tmp_path / "gen"
    write(gen, {
        "task.yaml": "spec: 1\nfamily: g\ngenerator: tasks.py:get_tasks\nkind: qa\n",
        "tasks.py": """\
            def get_tasks():
                return [{"id": f"n{i}", "instructions": f"{i}+{i}?", "target": str(2 * i)}
                        for i in range(5)]
            """,
    })
    fam = load_family(gen)
    assert [i.id for i in fam.instances()] == [f"n{i}" for i in range(5)]
    assert fam.sandbox_spec(fam.instances()[0]) is None
    broken = tmp_path / "broken"
    write(broken, {"task.yaml": "spec: 1\nfamily: [unclosed\n"})
    with pytest.raises(TaskFormatError, match=r"task.yaml:\d+: invalid YAML"):
        load_family(broken)


def test_cli_validate_lists_every_error_and_exits_2(tmp_path: Path) -> None:
    write(tmp_path / "bad", {"task.yaml": BAD})
    write(tmp_path / "good", {"task.yaml": "spec: 1\nfamily: good\ntasks: [{id: a, instructions: x, target: '1'}]\n"})
    res = CliRunner().invoke(tasks_app, ["validate", str(tmp_path)])
    assert res.exit_code == 2
    assert "ok  good" in res.stdout
    assert "scoring.method" in res.stderr and "limits.steps" in res.stderr
    res = CliRunner().invoke(tasks_app, ["validate", str(tmp_path / "good")])
    assert res.exit_code == 0, res.stderr


def test_cli_validates_the_shipped_ctf_suite() -> None:
    res = CliRunner().invoke(tasks_app, ["validate", "ctf"])
    assert res.exit_code == 0, res.stderr
    assert res.stdout.count("ok  ") >= 20


# --- scoring methods ---------------------------------------------------------------------------


async def test_exact_includes_regex_numeric(tmp_path: Path) -> None:
    f = family(tmp_path / "e", {"method": "exact"}, {"target": "FLAG{x}"})
    assert await score(f, " FLAG{x}\n") == 1.0
    assert await score(f, "flag{x}") == 0.0
    assert await score(f, None) == 0.0
    f = family(tmp_path / "c", {"method": "exact", "case_sensitive": False}, {"target": "Paris"})
    assert await score(f, "paris") == 1.0
    f = family(tmp_path / "i", {"method": "includes"}, {"target": "42"})
    assert await score(f, "the answer is 42.") == 1.0
    assert await score(f, "the answer is 41") == 0.0
    f = family(tmp_path / "r", {"method": "regex"}, {"target": r"^\d{3}-\d{4}$"})
    assert await score(f, "555-1234") == 1.0
    assert await score(f, "5551234") == 0.0
    f = family(tmp_path / "n", {"method": "numeric", "tolerance": 0.01}, {"target": 3.14159})
    assert await score(f, "about 3.14") == 1.0
    assert await score(f, "3.2") == 0.0
    assert await score(f, "pi") == 0.0


async def test_sha256_target_keeps_the_answer_out_of_the_file(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"open sesame").hexdigest()
    f = family(tmp_path, {"method": "exact"}, {"target": {"sha256": digest}})
    assert "open sesame" not in (tmp_path / "task.yaml").read_text()
    assert f.instances()[0].reference.answer is None
    assert await score(f, "open sesame\n") == 1.0
    assert await score(f, "open sesame!") == 0.0


async def test_check_script_and_file_submission(tmp_path: Path) -> None:
    check = """\
        # the submission arrives on stdin and in PTEBENCH_SUBMISSION
        read -r got
        [ "$got" = "$PTEBENCH_TARGET" ] && [ "$PTEBENCH_SUBMISSION" = "$got" ]
        """
    f = family(tmp_path / "c", {"method": "check_script", "script": "check.sh"},
               {"target": "blue"}, files={"check.sh": check})
    assert await score(f, "blue") == 1.0
    assert await score(f, "red") == 0.0
    partial = "echo 0.25\n"
    f = family(tmp_path / "p", {"method": "check_script", "script": "c.sh", "submission": "state"},
               {}, files={"c.sh": partial})
    assert await score(f, None) == 0.25
    f = family(tmp_path / "f", {"method": "exact", "submission": "file:/home/agent/out.txt"},
               {"target": "done"})
    assert await score(f, "ignored") == 0.0  # the file does not exist
    assert await score(f, None, prep="echo done > out.txt") == 1.0


async def test_state_check_script_sees_the_sandbox(tmp_path: Path) -> None:
    f = family(tmp_path, {"method": "check_script", "script": "c.sh", "submission": "state"},
               {"files": {"/home/agent/todo.txt": "todo.txt"}},
               files={"c.sh": 'grep -q fixed todo.txt || { echo "not fixed"; exit 1; }\n',
                      "todo.txt": "broken\n"})
    assert await score(f, None) == 0.0
    assert await score(f, None, prep="echo fixed > todo.txt") == 1.0


async def test_python_scorer(tmp_path: Path) -> None:
    f = family(tmp_path, {"method": "python", "function": "score.py:score"}, {"target": "10"},
               files={"score.py": """\
                   def score(submission, target):
                       if submission is None:
                           return False
                       return max(0.0, 1 - abs(int(submission) - int(target)) / 10)
                   """})
    assert await score(f, "10") == 1.0
    assert await score(f, "5") == 0.5
    assert await score(f, None) == 0.0


async def test_per_episode_secrets_differ_and_the_solution_finds_them(tmp_path: Path) -> None:
    f = family(
        tmp_path,
        {"method": "exact"},
        {"target": {"from_sandbox": {"cmd": "cat .secret"}}, "setup": "setup.sh"},
        extra={"validation": {"solution": "solve.sh"}},
        files={"setup.sh": "head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \\n' > .secret\n",
               "solve.sh": "set -e\n# --- step: look\nls -a\n# --- step: read\ncat .secret\n"},
    )
    inst = f.instances()[0]
    assert inst.reference.answer is None  # per-episode: the sim submits its last observation
    assert [a.input for a in inst.reference.actions] == ["set -e\nls -a", "set -e\ncat .secret"]
    secrets = []
    prov = LocalProvider()
    for _ in range(2):
        async with prov.acquire(f.sandbox_spec(inst) or SandboxSpec(), {}) as box:
            await f.setup(box, inst)
            out = ""
            for a in inst.reference.actions:
                out = (await box.exec(a.input)).stdout
            secrets.append(out.strip())
            assert (await f.score(box, inst, out)).value == 1.0
    assert len(secrets[0]) == 16 and secrets[0] != secrets[1]


async def test_local_sandbox_refuses_root_setup(tmp_path: Path) -> None:
    write(tmp_path, {"task.yaml": "spec: 1\nfamily: f\nsetup_timeout_s: 5\n"
                     "tasks: [{id: a, instructions: x, target: '1', setup: s.sh}]\n",
                     "s.sh": "echo hi > /root/x\n"})
    fam = load_family(tmp_path)
    with pytest.raises(ConfigError, match="needs the docker sandbox"):
        await score(fam, "1")


# --- helpers ---------------------------------------------------------------------------------


def test_solution_actions_split_and_preamble() -> None:
    script = "#!/bin/bash\nset -eu\n# --- step: one\necho a\n# --- step: two\necho b\n"
    assert [a.input for a in solution_actions(script)] == ["set -eu\necho a", "set -eu\necho b"]
    assert [a.input for a in solution_actions("#!/bin/sh\necho only\n")] == ["echo only"]


def test_epoch_reducers_follow_their_definitions() -> None:
    from ptebench.records import reduce_epoch_scores

    vals = [1.0, 0.0, 1.0, 0.0, 0.0]  # n = 5 attempts, c = 2 correct
    assert reduce_epoch_scores(vals, "mean") == pytest.approx(0.4)
    assert reduce_epoch_scores(vals, "at_least_1") == 1.0
    assert reduce_epoch_scores([0.0] * 3, "at_least_1") == 0.0
    # Chen et al. 2021 (HumanEval), unbiased pass@k = 1 - C(n-c, k) / C(n, k)
    assert reduce_epoch_scores(vals, "pass_at_1") == pytest.approx(1 - 3 / 5)
    assert reduce_epoch_scores(vals, "pass_at_2") == pytest.approx(1 - 3 / 10)
    assert Epochs(n=5, reducer="pass_at_k", k=2).recorded == "pass_at_2"
    with pytest.raises(ValueError):
        Epochs(n=2, reducer="pass_at_k", k=3)


def test_ctf_is_registered_and_hides_its_reference() -> None:
    suite = registry.get("task", "ctf")()
    insts = suite.instances(TaskOptions())
    assert len(insts) >= 20
    assert all(i.family == "ctf" and i.kind == "agentic" and i.reference.actions for i in insts)
    view = insts[0].view().model_dump()
    assert "reference" not in view and "hidden" not in view
    crypto = suite.instances(TaskOptions(options={"categories": ["crypto"]}))
    assert crypto and all(i.metadata["category"] == "crypto" for i in crypto)
    easy = suite.instances(TaskOptions(options={"max_difficulty": 1}))
    assert easy and all(i.metadata["difficulty"] == 1 for i in easy)
    assert [i.id for i in suite.instances(TaskOptions(ids=["small_rsa"]))] == ["small_rsa"]
    with pytest.raises(ConfigError, match="unknown instance ids"):
        suite.instances(TaskOptions(ids=["nope"]))


def test_cli_list_and_show_never_reveal_the_reference() -> None:
    n = len(registry.get("task", "ctf")().instances(TaskOptions()))
    res = CliRunner().invoke(tasks_app, ["list"])
    assert res.exit_code == 0
    assert re.search(rf"│ ctf\s+│ {n}\s+│ agentic", res.stdout), res.stdout
    res = CliRunner().invoke(tasks_app, ["show", "ctf", "--id", "small_rsa"])
    assert res.exit_code == 0
    assert "RSA public key" in res.stdout and "ptebench/base" in res.stdout
    assert "rho" not in res.stdout  # the solution script's text stays hidden
    res = CliRunner().invoke(tasks_app, ["show", "ctf", "--id", "nope"])
    assert res.exit_code != 0


async def test_agent_setup_runs_after_root_setup(tmp_path: Path) -> None:
    f = family(tmp_path, {"method": "exact"},
               {"target": {"from_sandbox": {"cmd": "cat order.txt"}}, "setup": "root.sh",
                "agent_setup": "agent.sh"},
               files={"root.sh": "echo root > order.txt\n", "agent.sh": "echo agent >> order.txt\n"})
    assert await score(f, "root\nagent") == 1.0
    assert await score(f, "agent\nroot") == 0.0
