"""The schema of a native task folder's ``task.yaml`` (see docs/tasks.md).

Every model forbids unknown keys and documents each field. Paths in a task.yaml are
relative to the folder holding it; validators check that they exist when the folder is
known (passed as pydantic validation context ``{"root": Path}``), so one validation pass
reports every missing file alongside every type error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ptebench.records import Limits
from ptebench.sandbox.base import SandboxSpec
from ptebench.tasks.base import TOOLS

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""Family names and task ids: letters, digits, ``_ . -``; no slashes (``/`` joins them)."""

FILE_PREFIX = "file:"
"""An ``instructions`` value starting with this is read from the named file."""


class Spec(BaseModel):
    """Base of the task.yaml models: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")


def _check_path(value: str, info: ValidationInfo, what: str) -> str:
    """Refuse paths that escape the folder; check existence when the folder is known."""
    if Path(value).is_absolute() or ".." in Path(value).parts:
        raise ValueError(f"{what} {value!r} must be a path inside the task folder")
    ctx: Any = info.context
    root: Path | None = ctx.get("root") if isinstance(ctx, dict) else None
    if root is not None and not (root / value).exists():
        raise ValueError(f"{what} {value!r} does not exist in {root}")
    if root is not None:
        escape = _escaping_link(root, root / value)
        if escape is not None:
            raise ValueError(f"{what} {value!r}: {escape} (a symlink may not point outside "
                             "the task folder: its target would be copied or sent as is)")
    return value


def _check_context(dockerfile: str, info: ValidationInfo, what: str) -> None:
    """A Dockerfile's build context (its folder, sent whole to the engine) may hold no
    symlink that resolves outside the task folder: its target would be built into the image."""
    ctx: Any = info.context
    root: Path | None = ctx.get("root") if isinstance(ctx, dict) else None
    if root is None:
        return
    escape = _escaping_link(root, (root / dockerfile).parent)
    if escape is not None:
        raise ValueError(f"{what} {dockerfile!r}: build context: {escape} (a symlink may not "
                         "point outside the task folder: its target would be built into the image)")


def _escaping_link(root: Path, path: Path) -> str | None:
    """Why ``path`` (or, for a folder, anything under it) resolves outside ``root``, or None."""
    top = root.resolve()
    todo = [path]
    if path.is_dir() and not path.is_symlink():
        todo += sorted(path.rglob("*"))
    for p in todo:
        real = p.resolve()
        if real != top and top not in real.parents:
            rel = p.relative_to(root) if p.is_relative_to(root) else p
            return f"{rel} resolves to {real}, outside {top}"
    return None


def _literal_to_dict(key: str) -> Any:
    """A BeforeValidator turning a bare scalar into ``{key: scalar}``."""

    def conv(v: Any) -> Any:
        if isinstance(v, str | int | float) and not isinstance(v, bool):
            return {key: str(v)}
        return v

    return BeforeValidator(conv)


def _absolute(v: str) -> str:
    if not v.startswith("/"):
        raise ValueError(f"sandbox path {v!r} must be absolute")
    return v


SandboxPath = Annotated[str, AfterValidator(_absolute)]
"""An absolute path inside the sandbox."""


class FromSandbox(Spec):
    """Read the target from inside the sandbox at scoring time."""

    cmd: str
    """Shell command whose stdout (stripped) is the target, e.g. ``cat /root/.flag``."""
    user: str = "root"
    """User the command runs as. Put secrets where only root can read them."""
    service: str | None = None
    """Run it in this service container (``sandbox.services``) instead of the agent's: for a
    secret that only the service holds."""


class Target(Spec):
    """What a correct answer is. Give exactly one of the three forms.

    In YAML a bare string (or number) is a literal: ``target: "42"``.
    """

    literal: str | None = None
    """The answer itself."""
    sha256: str | None = None
    """Hex SHA-256 of the answer (stripped, UTF-8): keeps the answer out of the repository."""
    from_sandbox: FromSandbox | None = None
    """A command that prints the answer — for secrets generated per episode by setup."""

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", v):
            raise ValueError("sha256 must be 64 hexadecimal digits")
        return v.lower() if v else v

    @model_validator(mode="after")
    def _one(self) -> Target:
        given = [k for k in ("literal", "sha256", "from_sandbox") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of literal, sha256, from_sandbox (got {given})")
        return self


def _known_tools(tools: list[str]) -> list[str]:
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        raise ValueError(f"unknown tool(s) {unknown}; accepted: {', '.join(TOOLS)}")
    return tools


class FileAsset(Spec):
    """A file or directory of the task folder copied into the sandbox before setup runs.

    In YAML a bare string is the source: ``/srv/data.tar: assets/data.tar``.
    """

    src: str
    """Path in the task folder (a directory is copied recursively)."""
    owner: Literal["root", "agent"] | None = None
    """Who owns the copy: default the agent under the workdir, root elsewhere."""
    mode: str | None = None
    """Octal permissions of the copied file(s), e.g. ``"0600"``; default keeps the source's
    executable bit (0755 or 0644)."""

    @field_validator("src")
    @classmethod
    def _exists(cls, v: str, info: ValidationInfo) -> str:
        return _check_path(v, info, "asset")

    @field_validator("mode")
    @classmethod
    def _octal(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"0?[0-7]{3,4}", v):
            raise ValueError(f"mode {v!r} must be octal like '0644'")
        return v


class ServiceFile(Spec):
    """A file copied out of a service container into the agent's, before setup runs: how a
    secret the service drew at start (e.g. its credentials) reaches the agent's disk."""

    service: str
    """Name of the service (``sandbox.services``)."""
    path: SandboxPath
    """The file in the service container (read as the service's root)."""
    mode: str = "0644"
    """Octal permissions of the copy (owned by root in the agent's container)."""

    @field_validator("mode")
    @classmethod
    def _octal(cls, v: str) -> str:
        if not re.fullmatch(r"0?[0-7]{3,4}", v):
            raise ValueError(f"mode {v!r} must be octal like '0644'")
        return v


class TaskEntry(Spec):
    """One task (instance) of the family."""

    id: str = Field(pattern=ID_PATTERN)
    """Unique within the family."""
    instructions: str
    """What the agent is told; ``file:PATH`` reads it from the task folder."""
    target: Annotated[Target | None, _literal_to_dict("literal")] = None
    """The correct answer (literal | sha256 | from_sandbox); not needed by check_script and
    python scoring or ``submission: state`` tasks scored by a script."""
    files: dict[SandboxPath, Annotated[FileAsset, _literal_to_dict("src")]] = Field(
        default_factory=dict
    )
    """Sandbox path (absolute) → asset in the task folder."""
    from_services: dict[SandboxPath, ServiceFile] = Field(default_factory=dict)
    """Agent-container path (absolute) → a file of a service container, copied before setup."""
    setup: str | None = None
    """Shell script (in the task folder) run as root in the sandbox before the agent starts."""
    agent_setup: str | None = None
    """Shell script run as the agent user right after ``setup``: for processes the agent
    owns (root without capabilities cannot start them) or per-episode workdir files."""
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    """Public facts: category, difficulty (1–5), human_minutes, ..."""
    tools: list[str] | None = None
    """Tools of this task; default the family's ``tools``."""

    @field_validator("tools")
    @classmethod
    def _task_tools(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _known_tools(v)
    limits: Limits | None = None
    """Per-task budget overrides (only the fields given replace the family's)."""
    solution: str | None = None
    """Solution script for this task; default the family's ``validation.solution``."""

    @field_validator("instructions")
    @classmethod
    def _instr(cls, v: str, info: ValidationInfo) -> str:
        if v.startswith(FILE_PREFIX):
            _check_path(v[len(FILE_PREFIX) :].strip(), info, "instructions file")
        elif not v.strip():
            raise ValueError("instructions must not be empty")
        return v

    @field_validator("setup", "agent_setup", "solution")
    @classmethod
    def _script(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else _check_path(v, info, f"{info.field_name} script")


class Epochs(Spec):
    """How often each instance is attempted and how the attempts' scores combine."""

    n: int = Field(default=1, ge=1)
    """Attempts per instance (the runner's epochs)."""
    reducer: Literal["mean", "at_least_1", "pass_at_k"] = "mean"
    """mean of the scores; at_least_1: 1 if any attempt scored 1; pass_at_k: the unbiased
    pass@k estimate from n attempts."""
    k: int | None = Field(default=None, ge=1)
    """k of pass_at_k (≤ n); required for that reducer."""

    @model_validator(mode="after")
    def _k(self) -> Epochs:
        if self.reducer == "pass_at_k" and (self.k is None or self.k > self.n):
            raise ValueError("pass_at_k needs k with 1 ≤ k ≤ n")
        return self

    @property
    def recorded(self) -> str:
        """The reducer as an episode records it: mean, at_least_1 or pass_at_<k>."""
        return f"pass_at_{self.k or 1}" if self.reducer == "pass_at_k" else self.reducer


ScoringMethod = Literal["exact", "includes", "regex", "numeric", "check_script", "python"]


class Scoring(Spec):
    """How a submission is scored."""

    method: ScoringMethod = "exact"
    """exact: equal after stripping; includes: the target occurs in the submission; regex:
    the target pattern is found (re.search); numeric: equal within ``tolerance``;
    check_script: ``script`` decides in the sandbox; python: ``function`` decides on the host."""
    submission: str = "answer"
    """answer: what the agent submitted; ``file:/abs/path``: that file in the sandbox;
    state: nothing — the check script inspects the sandbox."""
    epochs: Epochs = Field(default_factory=Epochs)
    """Attempts per instance and their reducer."""
    case_sensitive: bool = True
    """exact/includes/regex: whether case matters."""
    tolerance: float = Field(default=1e-6, ge=0)
    """numeric: |submitted − target| ≤ tolerance · max(1, |target|)."""
    script: str | None = None
    """check_script: shell script run in the sandbox at scoring time (it never enters the
    sandbox before, so hidden tests can live in it). Exit 0 scores 1 (or the float on its
    last stdout line), anything else 0. Env: PTEBENCH_SUBMISSION, PTEBENCH_TARGET."""
    user: str = "root"
    """check_script: the user it runs as (``agent`` to act with the agent's rights)."""
    stop_agent: bool = True
    """Kill every process of the agent's user before scoring (so nothing the agent left
    running can tamper with the state or read the scorer's pipes). ``false`` only for a task
    whose point is a process that survives the episode (ctf ``keep_alive``)."""
    function: str | None = None
    """python: ``file.py:function`` in the task folder, called on the host as
    ``function(submission, target)`` and returning a bool, a float in [0, 1] or a Score."""
    timeout_s: float = Field(default=60.0, gt=0)
    """Timeout of the check script and of reading the target from the sandbox."""

    @field_validator("submission")
    @classmethod
    def _submission(cls, v: str) -> str:
        if v in ("answer", "state"):
            return v
        if v.startswith("file:") and v[5:].startswith("/"):
            return v
        raise ValueError("submission must be answer, state or file:/absolute/path")

    @field_validator("script")
    @classmethod
    def _script(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else _check_path(v, info, "check script")

    @field_validator("function")
    @classmethod
    def _function(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        file, sep, name = v.partition(":")
        if not sep or not file.endswith(".py") or not name.isidentifier():
            raise ValueError(f"function {v!r} must look like 'score.py:score'")
        _check_path(file, info, "python scorer")
        return v

    @model_validator(mode="after")
    def _needs(self) -> Scoring:
        if self.method == "check_script" and self.script is None:
            raise ValueError("method check_script needs `script`")
        if self.method == "python" and self.function is None:
            raise ValueError("method python needs `function`")
        if self.submission == "state" and self.method not in ("check_script", "python"):
            raise ValueError("submission: state needs method check_script or python")
        return self


class Validation(Spec):
    """How CI proves the task solvable."""

    solution: str | None = None
    """Shell script (in the task folder) run as the agent; its final output (or the state it
    leaves) must score 1. Lines ``# --- step`` split it into the reference actions."""

    @field_validator("solution")
    @classmethod
    def _exists(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else _check_path(v, info, "solution script")


DEFAULT_LIMITS = Limits(steps=30, tokens=200_000, wall_s=900, tool_timeout_s=60)


class TaskFile(Spec):
    """A task family: the whole ``task.yaml``."""

    spec: Literal[1]
    """Format version of this file (1)."""
    family: str = Field(pattern=ID_PATTERN)
    """Name of the family."""
    version: str = "0.0.0"
    """Version of the family's content (bump when tasks change)."""
    license: str | None = None
    """License of the task content (SPDX id)."""
    description: str | None = None
    """One line about the family."""
    kind: Literal["agentic", "qa"] = "agentic"
    """agentic: acts in a sandbox; qa: answers in text, no sandbox."""
    tools: list[str] = Field(default_factory=lambda: ["bash", "python", "submit"])
    """Tools the agent may call."""

    @field_validator("tools")
    @classmethod
    def _family_tools(cls, v: list[str]) -> list[str]:
        return _known_tools(v)
    tasks: list[TaskEntry] | None = None
    """The tasks, inline."""
    tasks_file: str | None = None
    """Or a JSON-lines file of tasks (one TaskEntry per line)."""
    generator: str | None = None
    """Or ``file.py:function`` returning a list of task dicts."""
    sandbox: SandboxSpec = Field(default_factory=SandboxSpec)
    """The sandbox every task runs in (``build:`` a Dockerfile FROM ${PTEBENCH_BASE})."""
    limits: Limits = Field(default_factory=lambda: DEFAULT_LIMITS.model_copy())
    """Episode budgets."""
    scoring: Scoring = Field(default_factory=Scoring)
    """How submissions are scored."""
    validation: Validation = Field(default_factory=Validation)
    """Solution script CI runs."""
    setup_timeout_s: float = Field(default=300.0, gt=0)
    """Timeout of the setup script."""
    local_ok: bool = False
    """Allow ``setup`` scripts on the local sandbox, where they run on the host as the
    current user. Only for setups that touch nothing outside their working directory."""

    @field_validator("tasks_file")
    @classmethod
    def _tf(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else _check_path(v, info, "tasks_file")

    @field_validator("generator")
    @classmethod
    def _gen(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        file, sep, name = v.partition(":")
        if not sep or not file.endswith(".py") or not name.isidentifier():
            raise ValueError(f"generator {v!r} must look like 'tasks.py:get_tasks'")
        _check_path(file, info, "generator")
        return v

    @field_validator("sandbox")
    @classmethod
    def _build(cls, v: SandboxSpec, info: ValidationInfo) -> SandboxSpec:
        if v.build is not None:
            _check_path(v.build, info, "Dockerfile")
            _check_context(v.build, info, "build")
        for name, svc in v.services.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
                raise ValueError(f"service name {name!r} must be a DNS label (a-z, 0-9, -)")
            if svc.build is not None:
                _check_path(svc.build, info, f"services.{name}.build Dockerfile")
                _check_context(svc.build, info, f"services.{name}.build")
        return v

    @model_validator(mode="after")
    def _source(self) -> TaskFile:
        given = [k for k in ("tasks", "tasks_file", "generator") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of tasks, tasks_file, generator (got {given})")
        if self.tasks is not None:
            check_entries(self, self.tasks)
        return self


def check_entries(tf: TaskFile, entries: list[TaskEntry]) -> None:
    """Cross-checks between the family and its tasks.

    Raises:
        ValueError: duplicate ids, or a target form the scoring method cannot use.
    """
    problems: list[str] = []
    seen: set[str] = set()
    for e in entries:
        if e.id in seen:
            problems.append(f"duplicate task id {e.id!r}")
        seen.add(e.id)
        where = f"task {e.id!r}"
        method = tf.scoring.method
        if e.target is None and method in ("exact", "includes", "regex", "numeric"):
            problems.append(f"{where}: method {method} needs a target")
        if e.target is not None and e.target.sha256 is not None and method != "exact":
            problems.append(f"{where}: a sha256 target only works with method exact")
        if e.target is not None and e.target.literal is not None and method == "numeric":
            try:
                float(e.target.literal)
            except ValueError:
                problems.append(f"{where}: numeric target {e.target.literal!r} is not a number")
        if e.target is not None and e.target.literal is not None and method == "regex":
            try:
                re.compile(e.target.literal)
            except re.error as err:
                problems.append(f"{where}: bad regex target: {err}")
        for dest, sf in e.from_services.items():
            if sf.service not in tf.sandbox.services:
                problems.append(f"{where}: from_services[{dest}].service {sf.service!r} is not one of "
                                f"sandbox.services ({sorted(tf.sandbox.services) or 'none'})")
        fs = e.target.from_sandbox if e.target is not None else None
        if fs is not None and fs.service is not None and fs.service not in tf.sandbox.services:
            problems.append(f"{where}: target.from_sandbox.service {fs.service!r} is not one of "
                            f"sandbox.services ({sorted(tf.sandbox.services) or 'none'})")
        if tf.kind == "qa" and (e.files or e.setup or e.agent_setup):
            problems.append(f"{where}: qa tasks have no sandbox, so no files or setup")
    if tf.kind == "qa" and tf.scoring.method == "check_script":
        problems.append("qa families have no sandbox to run a check_script in")
    if problems:
        raise ValueError("; ".join(problems))
