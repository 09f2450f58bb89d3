"""Import of Harbor tasks (the Terminal-Bench 2.x format): ``tasks: [{harbor: {path: DIR}}]``.

A task folder holds ``task.toml``, ``instruction.md``, ``environment/`` (a ``Dockerfile``, or a
``docker-compose.yaml`` whose primary service is ``main``), ``tests/test.sh`` (the verifier)
and optionally ``solution/solve.sh`` (the oracle). ``DIR`` is one task folder or a folder of
them (every folder below it holding a task.toml is a task; its name is the instance id).

The mapping (docs/tasks.md has the field-by-field table):

* the image: ``environment/Dockerfile`` (or compose ``main.build``/``image``, or
  ``environment.docker_image``) built offline by ``ptebench.sandbox.images.build``, cached by
  content hash; a ``FROM`` image that is not local is mapped through ``image_map`` /
  ``PTEBENCH_IMAGE_MAP`` (the error says so);
* compose services other than ``main`` become ``SandboxSpec.services``: hardened containers on
  the episode's own internal network, reachable by name, their filesystems out of reach;
* the agent runs as ``agent.user`` (default: the image's USER, usually root — without any
  capability and with no-new-privileges), in the image's WORKDIR, with a writable root
  filesystem (Harbor tasks install and edit system files), network none unless the experiment
  sets ``allow_full_internet`` and the task asks for it;
* ``tests/`` enters the container only at scoring time (uploaded to /tests, then
  ``/tests/test.sh`` runs as ``verifier.user``); its reward file ``/logs/verifier/reward.json``
  (a ``reward`` key, or a single value) or ``reward.txt`` is the score, clipped to [0, 1];
* ``solution/`` never enters the container before scoring either: the reference (hidden, for
  validation and the simulated model) is one bash action that unpacks it to /solution and
  runs ``solve.sh`` in the working directory.

Fields ptebench cannot honour (GPUs, TPUs, Windows, MCP servers, skills, multi-step tasks,
separate verifier environments, allowlisted egress, host environment variables, compose
volumes/privileges) are refused at load time, each with the file and the field.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import shlex
import tarfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from ptebench.errors import ConfigError
from ptebench.records import Action, Limits, Score
from ptebench.sandbox.base import Healthcheck, Resources, Sandbox, SandboxSpec, ServiceSpec
from ptebench.tasks.base import Reference, TaskInstance, TaskOptions, select
from ptebench.tasks.native_run import TaskScoringError, TaskSetupError

TASK_FILE = "task.toml"
COMPOSE_FILES = ("docker-compose.yaml", "docker-compose.yml")
MAIN = "main"
TESTS_DIR = "/tests"
SOLUTION_DIR = "/solution"
VERIFIER_DIR = "/logs/verifier"
DEFAULT_AGENT_TIMEOUT_S = 600.0
DEFAULT_WORKDIR = "/app"


# -- task.toml --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


NetworkMode = Literal["no-network", "public", "allowlist"]


class HarborAgent(_Strict):
    timeout_sec: float | None = Field(default=None, gt=0)
    user: str | int | None = None
    network_mode: NetworkMode | None = None
    allowed_hosts: list[str] | None = None


class HarborVerifier(_Strict):
    timeout_sec: float = Field(default=600.0, gt=0)
    env: dict[str, str] = Field(default_factory=dict)
    user: str | int | None = None
    network_mode: NetworkMode | None = None
    allowed_hosts: list[str] | None = None
    environment_mode: Literal["shared", "separate"] | None = None
    environment: dict[str, JsonValue] | None = None
    collect: list[dict[str, JsonValue]] = Field(default_factory=list)


class HarborSolution(_Strict):
    env: dict[str, str] = Field(default_factory=dict)


class HarborHealthcheck(_Strict):
    command: str
    interval_sec: float = 5.0
    timeout_sec: float = 30.0
    start_period_sec: float = 0.0
    start_interval_sec: float = 5.0
    retries: int = 3


class HarborEnvironment(_Strict):
    build_timeout_sec: float = Field(default=600.0, gt=0)
    docker_image: str | None = None
    os: str = "linux"
    cpus: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)
    storage_mb: int | None = Field(default=None, gt=0)
    memory: str | None = None
    """Legacy form of memory_mb ("2G", "512M")."""
    storage: str | None = None
    """Legacy form of storage_mb."""
    gpus: int | None = None
    gpu_types: list[str] | None = None
    tpu: dict[str, JsonValue] | None = None
    mcp_servers: list[dict[str, JsonValue]] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    skills_dir: str | None = None
    healthcheck: HarborHealthcheck | None = None
    workdir: str | None = None
    allow_internet: bool | None = None
    network_mode: NetworkMode | None = None
    allowed_hosts: list[str] | None = None


class HarborAuthor(_Strict):
    name: str
    email: str | None = None


class HarborPackage(_Strict):
    name: str
    version: str | None = None
    description: str = ""
    authors: list[HarborAuthor] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)


class HarborConfig(_Strict):
    """A task.toml (Harbor's TaskConfig, schema 1.x; ``version`` is the old name of
    ``schema_version``)."""

    schema_version: str | None = None
    version: str | None = None
    task: HarborPackage | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    verifier: HarborVerifier = Field(default_factory=HarborVerifier)
    agent: HarborAgent = Field(default_factory=HarborAgent)
    environment: HarborEnvironment = Field(default_factory=HarborEnvironment)
    solution: HarborSolution = Field(default_factory=HarborSolution)
    source: str | None = None
    multi_step_reward_strategy: str | None = None
    steps: list[dict[str, JsonValue]] | None = None
    artifacts: list[JsonValue] = Field(default_factory=list)


def _size_mb(value: str) -> int:
    v = value.strip().upper()
    for suffix, factor in (("G", 1024.0), ("M", 1.0), ("K", 1 / 1024)):
        if v.endswith(suffix):
            return int(float(v[:-1]) * factor)
    raise ValueError(f"size {value!r} must look like '2G' or '512M'")


def _refusals(cfg: HarborConfig, file: Path) -> list[str]:
    """Every field ptebench cannot honour, each as ``file: field: why``."""
    out: list[str] = []
    env = cfg.environment

    def no(field: str, why: str) -> None:
        out.append(f"{file}: {field}: {why}")

    if env.os.lower() != "linux":
        no("environment.os", f"{env.os!r}: only linux containers are supported")
    if env.gpus:
        no("environment.gpus", "GPUs are not supported (ptebench sandboxes have none)")
    if env.gpu_types:
        no("environment.gpu_types", "GPUs are not supported")
    if env.tpu:
        no("environment.tpu", "TPUs are not supported")
    if env.mcp_servers:
        no("environment.mcp_servers", "MCP servers are not supported (ptebench scaffolds have no MCP client)")
    if env.skills_dir:
        no("environment.skills_dir", "agent skills are not supported")
    for where, mode, hosts in (
        ("environment", env.network_mode, env.allowed_hosts),
        ("agent", cfg.agent.network_mode, cfg.agent.allowed_hosts),
        ("verifier", cfg.verifier.network_mode, cfg.verifier.allowed_hosts),
    ):
        if mode == "allowlist" or hosts:
            no(f"{where}.network_mode", "allowlist egress is not supported (no egress proxy); "
                                        "use no-network, or public with allow_full_internet")
    for where, mode in (("agent", cfg.agent.network_mode), ("verifier", cfg.verifier.network_mode)):
        if mode is not None and mode != network_requested(cfg):
            no(f"{where}.network_mode", f"{mode!r} differs from the environment's "
                                        f"{network_requested(cfg)!r}; per-phase networks are not supported")
    for name, value in env.env.items():
        if "${" in value:
            no(f"environment.env.{name}", "host environment variables are not passed into "
                                          "sandboxes; give a literal value")
    for section, mapping in (("verifier.env", cfg.verifier.env), ("solution.env", cfg.solution.env)):
        for name, value in mapping.items():
            if "${" in value:
                no(f"{section}.{name}", "host environment variables are not passed into sandboxes")
    if cfg.verifier.environment_mode == "separate" or cfg.verifier.environment is not None:
        no("verifier.environment", "a separate verifier environment is not supported (the verifier "
                                   "runs in the agent's container, Harbor's 'shared' mode)")
    if cfg.verifier.collect:
        no("verifier.collect", "collect hooks are not supported")
    if cfg.steps:
        no("steps", "multi-step tasks are not supported")
    if cfg.multi_step_reward_strategy is not None:
        no("multi_step_reward_strategy", "multi-step tasks are not supported")
    for field, value in (("environment.memory", env.memory), ("environment.storage", env.storage)):
        if value is not None:
            try:
                _size_mb(value)
            except ValueError as e:
                no(field, str(e))
    return out


def network_requested(cfg: HarborConfig) -> str:
    """The task's network mode: ``network_mode``, else the legacy ``allow_internet``, else
    Harbor's default (public)."""
    env = cfg.environment
    if env.network_mode is not None:
        return env.network_mode
    if env.allow_internet is not None:
        return "public" if env.allow_internet else "no-network"
    return "public"


# -- docker-compose.yaml ------------------------------------------------------------------------

_MAIN_KEYS = {"build", "image", "environment", "depends_on", "working_dir", "user", "command",
              "entrypoint", "healthcheck", "expose", "ports", "cpus", "mem_limit", "deploy",
              "restart", "container_name", "init", "stdin_open", "tty", "pull_policy"}
_SERVICE_KEYS = {"build", "image", "environment", "depends_on", "working_dir", "user", "command",
                 "entrypoint", "healthcheck", "expose", "ports", "cpus", "mem_limit", "deploy",
                 "restart", "read_only", "tmpfs", "init", "stdin_open", "tty", "pull_policy",
                 "container_name", "hostname"}
_IGNORED = {"depends_on", "expose", "ports", "restart", "container_name", "init", "stdin_open",
            "tty", "pull_policy", "hostname"}
"""Accepted but without effect: every service starts (and becomes healthy) before the agent,
every port is reachable on the episode network, restart policies do not apply."""


class ComposeService(BaseModel):
    """One compose service, as far as ptebench maps it."""

    name: str
    context: Path | None = None
    dockerfile: Path | None = None
    build_args: dict[str, str] = Field(default_factory=dict)
    image: str | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    user: str | None = None
    workdir: str | None = None
    healthcheck: Healthcheck | None = None
    cpus: float | None = None
    memory_mb: int | None = None
    read_only: bool | None = None
    tmpfs: dict[str, str] = Field(default_factory=dict)


def _duration_s(v: Any, where: str) -> float:
    if isinstance(v, int | float):
        return float(v)
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(v))
    if not parts or "".join(a + b for a, b in parts) != str(v).replace(" ", ""):
        raise ValueError(f"{where}: duration {v!r} must look like '2s', '1m30s' or '500ms'")
    for num, unit in parts:
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    return total


def _argv(v: Any, where: str) -> list[str]:
    if isinstance(v, str):
        return shlex.split(v)
    if isinstance(v, list) and all(isinstance(x, str | int | float) for x in v):
        return [str(x) for x in v]
    raise ValueError(f"{where}: expected a string or a list of strings")


def _env(v: Any, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(v, dict):
        items = [(str(k), "" if x is None else str(x)) for k, x in v.items()]
    elif isinstance(v, list):
        items = [(str(e).partition("=")[0], str(e).partition("=")[2]) for e in v]
    else:
        raise ValueError(f"{where}: expected a mapping or a list of NAME=value")
    for k, x in items:
        if "${" in x:
            raise ValueError(f"{where}.{k}: host environment variables are not passed into sandboxes")
        out[k] = x
    return out


def _healthcheck(v: Any, where: str) -> Healthcheck | None:
    if not isinstance(v, dict):
        raise ValueError(f"{where}: expected a mapping")
    if v.get("disable"):
        return None
    test = v.get("test")
    if isinstance(test, str):
        argv = ["sh", "-c", test]
    elif isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL"):
        argv = [str(x) for x in test[1:]] if test[0] == "CMD" else ["sh", "-c", " ".join(str(x) for x in test[1:])]
    elif isinstance(test, list) and test and test[0] == "NONE":
        return None
    else:
        raise ValueError(f"{where}.test: expected a string or [CMD, ...] / [CMD-SHELL, ...]")
    return Healthcheck(
        test=argv,
        interval_s=_duration_s(v.get("interval", "0.5s"), f"{where}.interval"),
        timeout_s=_duration_s(v.get("timeout", "5s"), f"{where}.timeout"),
        retries=int(v.get("retries", 60)),
        start_period_s=_duration_s(v.get("start_period", "0s"), f"{where}.start_period"),
    )


def parse_compose(path: Path) -> tuple[ComposeService, dict[str, ComposeService], list[str]]:
    """The ``main`` overrides, the other services and every problem (file: field: why)."""
    errors: list[str] = []
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        return ComposeService(name=MAIN), {}, [f"{path}: not valid YAML: {e}"]
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        return ComposeService(name=MAIN), {}, [f"{path}: services: a compose file needs a services mapping"]
    for key, value in doc.items():
        if key in ("services", "version", "name") or str(key).startswith("x-"):
            continue
        if key in ("volumes", "networks", "configs", "secrets") and not value:
            continue
        errors.append(f"{path}: {key}: top-level {key} are not supported (each service gets "
                      "its own filesystem; all share the episode's network)")
    env_dir = path.parent
    out: dict[str, ComposeService] = {}
    main = ComposeService(name=MAIN)
    for name, raw in doc["services"].items():
        where = f"services.{name}"
        if not isinstance(raw, dict):
            errors.append(f"{path}: {where}: expected a mapping")
            continue
        allowed = _MAIN_KEYS if name == MAIN else _SERVICE_KEYS
        for key in raw:
            if key not in allowed:
                errors.append(
                    f"{path}: {where}.{key}: not supported"
                    + (" (a shared or host volume would open one container's files to another)"
                       if key == "volumes" else "")
                    + f"; accepted: {', '.join(sorted(allowed))}")
        try:
            svc = _service(name, raw, env_dir, where)
        except ValueError as e:
            errors.append(f"{path}: {e}")
            continue
        if name == MAIN:
            main = svc
        else:
            if svc.image is None and svc.context is None:
                errors.append(f"{path}: {where}: needs build or image")
            out[name] = svc
    return main, out, errors


def _service(name: str, raw: dict[str, Any], env_dir: Path, where: str) -> ComposeService:
    svc = ComposeService(name=name)
    build = raw.get("build")
    if isinstance(build, str):
        svc.context = env_dir / build
    elif isinstance(build, dict):
        bad = set(build) - {"context", "dockerfile", "args"}
        if bad:
            raise ValueError(f"{where}.build: {sorted(bad)} not supported; accepted: context, dockerfile, args")
        svc.context = env_dir / str(build.get("context", "."))
        if "dockerfile" in build:
            svc.dockerfile = svc.context / str(build["dockerfile"])
        svc.build_args = _env(build.get("args", {}), f"{where}.build.args")
    elif build is not None:
        raise ValueError(f"{where}.build: expected a path or a mapping")
    if svc.context is not None:
        ctx = svc.context.resolve()
        if not ctx.is_relative_to(env_dir.resolve()):
            raise ValueError(f"{where}.build.context: {ctx} is outside environment/")
        if not (svc.dockerfile or ctx / "Dockerfile").is_file():
            raise ValueError(f"{where}.build: no Dockerfile at {svc.dockerfile or ctx / 'Dockerfile'}")
    if "image" in raw:
        svc.image = str(raw["image"])
    if "command" in raw:
        svc.command = _argv(raw["command"], f"{where}.command")
    if "entrypoint" in raw:
        svc.entrypoint = _argv(raw["entrypoint"], f"{where}.entrypoint")
    if "environment" in raw:
        svc.env = _env(raw["environment"], f"{where}.environment")
    if "user" in raw:
        svc.user = str(raw["user"])
    if "working_dir" in raw:
        svc.workdir = str(raw["working_dir"])
    if "healthcheck" in raw:
        svc.healthcheck = _healthcheck(raw["healthcheck"], f"{where}.healthcheck")
    if "cpus" in raw:
        svc.cpus = float(raw["cpus"])
    if "mem_limit" in raw:
        svc.memory_mb = _size_mb(str(raw["mem_limit"]).rstrip("bB"))
    limits = ((raw.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    if isinstance(limits, dict):
        if "cpus" in limits:
            svc.cpus = float(limits["cpus"])
        if "memory" in limits:
            svc.memory_mb = _size_mb(str(limits["memory"]).rstrip("bB"))
    if "read_only" in raw:
        svc.read_only = bool(raw["read_only"])
    tmpfs = raw.get("tmpfs")
    if tmpfs is not None:
        for entry in [tmpfs] if isinstance(tmpfs, str) else list(tmpfs):
            p, _, opts = str(entry).partition(":")
            svc.tmpfs[p] = opts or "size=64m"
    return svc


# -- one task folder ------------------------------------------------------------------------------


class HarborTask(BaseModel):
    """A parsed, checked Harbor task folder (nothing built yet)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    root: Path
    id: str
    config: HarborConfig
    instruction: str
    main: ComposeService
    services: dict[str, ComposeService]
    has_solution: bool


def parse_task(root: Path) -> HarborTask:
    """Check a task folder; every problem is reported at once.

    Raises:
        ConfigError: listing each problem with its file and field.
    """
    from ptebench.tasks.native import TaskFormatError

    file = root / TASK_FILE
    errors: list[str] = []
    cfg = HarborConfig()
    try:
        raw = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise TaskFormatError([f"{file}: not valid TOML: {e}"]) from e
    try:
        cfg = HarborConfig.model_validate(raw)
    except ValidationError as e:
        errors += [f"{file}: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
    else:
        errors += _refusals(cfg, file)
    instruction = ""
    if not (root / "instruction.md").is_file():
        errors.append(f"{root / 'instruction.md'}: missing (the agent's instruction)")
    else:
        instruction = (root / "instruction.md").read_text().strip()
        if not instruction:
            errors.append(f"{root / 'instruction.md'}: empty")
    if not (root / "tests" / "test.sh").is_file():
        errors.append(f"{root / 'tests' / 'test.sh'}: missing (the verifier)")
    env_dir = root / "environment"
    main = ComposeService(name=MAIN)
    services: dict[str, ComposeService] = {}
    compose = next((env_dir / c for c in COMPOSE_FILES if (env_dir / c).is_file()), None)
    if compose is not None:
        main, services, errs = parse_compose(compose)
        errors += errs
    if main.context is None and main.image is None:
        # As Harbor: a prebuilt docker_image wins; ptebench falls back to the Dockerfile
        # when that image is not local (see HarborFamily.build).
        if cfg.environment.docker_image:
            main.image = cfg.environment.docker_image
        elif (env_dir / "Dockerfile").is_file():
            main.context = env_dir
        else:
            errors.append(f"{env_dir}: no Dockerfile (and no environment.docker_image or compose main.image)")
    if errors:
        raise TaskFormatError(errors)
    return HarborTask(root=root, id=root.name, config=cfg, instruction=instruction, main=main,
                      services=services, has_solution=(root / "solution" / "solve.sh").is_file())


def find_tasks(path: Path) -> list[Path]:
    """``path`` when it is a task folder (or its task.toml), else every task folder below it."""
    if path.is_file() and path.name == TASK_FILE:
        return [path.parent]
    if (path / TASK_FILE).is_file():
        return [path]
    return sorted(p.parent for p in path.rglob(TASK_FILE))


def _tar_dir(folder: Path) -> bytes:
    """An uncompressed tar of ``folder`` (plain tar: task images need no gzip)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(folder.rglob("*")):
            rel = f.relative_to(folder).as_posix()
            info = tarfile.TarInfo(rel)
            info.mtime = 0
            if f.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif f.is_file():
                data = f.read_bytes()
                info.size = len(data)
                info.mode = 0o755 if f.stat().st_mode & 0o111 else 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def oracle_action(task: HarborTask, workdir: str) -> Action:
    """The reference: one bash action unpacking solution/ to /solution (a temporary folder
    when the agent user cannot create it) and running solve.sh in the working directory."""
    blob = base64.b64encode(_tar_dir(task.root / "solution")).decode()
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in task.config.solution.env.items())
    script = (
        "set -e\n"
        f"SOL={SOLUTION_DIR}\n"
        '{ mkdir -p "$SOL" && [ -w "$SOL" ]; } 2>/dev/null || SOL=$(mktemp -d)\n'
        "base64 -d <<'PTEBENCH_SOLUTION' | tar -x -C \"$SOL\"\n"
        f"{blob}\nPTEBENCH_SOLUTION\n"
        f"{exports}export DEBIAN_FRONTEND=noninteractive\n"
        f"cd {shlex.quote(workdir)}\n"
        'chmod +x "$SOL/solve.sh"\n'
        '"$SOL/solve.sh"\n'
    )
    return Action(tool="bash", input=script)


def parse_reward(text_json: str | None, text_txt: str | None) -> tuple[float, str]:
    """(score in [0, 1], explanation) from the reward files' contents (json wins, as in Harbor).

    Raises:
        TaskScoringError: no reward file, an empty or unparsable one, or a reward.json with
            several values and no ``reward`` key.
    """
    if text_json is not None:
        if not text_json.strip():
            raise TaskScoringError(f"{VERIFIER_DIR}/reward.json is empty")
        try:
            rewards = json.loads(text_json)
        except ValueError as e:
            raise TaskScoringError(f"{VERIFIER_DIR}/reward.json is not JSON: {e}") from e
        if not isinstance(rewards, dict):
            rewards = {"reward": rewards}
        for k, v in rewards.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise TaskScoringError(f"{VERIFIER_DIR}/reward.json: {k}: {v!r} is not a finite number")
        if "reward" in rewards:
            value, source = float(rewards["reward"]), "reward.json reward"
        elif len(rewards) == 1:
            (k, v), = rewards.items()
            value, source = float(v), f"reward.json {k}"
        else:
            raise TaskScoringError(
                f"{VERIFIER_DIR}/reward.json has {sorted(rewards)} and no 'reward' key: "
                "ptebench needs one primary reward")
        others = {k: v for k, v in rewards.items() if k != "reward"} if "reward" in rewards else {}
        extra = f" (also {json.dumps(others)})" if others else ""
    elif text_txt is not None:
        if not text_txt.strip():
            raise TaskScoringError(f"{VERIFIER_DIR}/reward.txt is empty")
        try:
            value = float(text_txt.strip())
        except ValueError as e:
            raise TaskScoringError(f"{VERIFIER_DIR}/reward.txt: {text_txt.strip()[:80]!r} is not a number") from e
        if not math.isfinite(value):
            raise TaskScoringError(f"{VERIFIER_DIR}/reward.txt: {value} is not finite")
        source, extra = "reward.txt", ""
    else:
        raise TaskScoringError(f"the verifier wrote no {VERIFIER_DIR}/reward.txt or reward.json")
    clipped = min(1.0, max(0.0, value))
    note = "" if clipped == value else f" (clipped from {value:g})"
    return clipped, f"{source} = {value:g}{note}{extra}"


# -- the family ----------------------------------------------------------------------------------


class HarborFamily:
    """Harbor task folders as a Task (see the module doc)."""

    def __init__(self, path: Path, tasks: list[HarborTask], *, allow_full_internet: bool = False,
                 image_map: Mapping[str, str] | None = None, build_network: bool = False) -> None:
        self.path = path
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "-", path.name) or "harbor"
        self.tasks = {t.id: t for t in tasks}
        self.allow_full_internet = allow_full_internet
        self.image_map = dict(image_map or {})
        self.build_network = build_network
        self.default_limits = Limits(steps=50, tool_timeout_s=DEFAULT_AGENT_TIMEOUT_S)
        self._specs: dict[str, SandboxSpec] = {}
        self._verifier_users: dict[str, str] = {}

    # --- images and sandbox ------------------------------------------------------------------

    def _image(self, task: HarborTask, svc: ComposeService, what: str) -> str:
        from ptebench.sandbox import engine
        from ptebench.sandbox.images.build import build_dockerfile, image_map_from_env

        if svc.context is not None:
            return build_dockerfile(
                svc.context, svc.dockerfile, repo=f"ptebench/harbor-{self.name}-{task.id}-{svc.name}".lower()[:120],
                image_map=self.image_map, build_args=svc.build_args, network=self.build_network,
                timeout_s=task.config.environment.build_timeout_sec,
                labels={"ptebench.family": self.name, "ptebench.task": task.id},
            )
        assert svc.image is not None  # parse_task guarantees build or image
        mapping = {**image_map_from_env(), **self.image_map}
        client = engine.client()
        try:
            for candidate in (svc.image, mapping.get(svc.image)):
                if candidate is None:
                    continue
                try:
                    client.images.get(candidate)
                    return candidate
                except Exception:
                    continue
        finally:
            client.close()
        raise ConfigError(
            f"{task.root}: {what}: image {svc.image} is not present locally (no registry to pull "
            f"from); map it to a local image with the option image_map ({{{svc.image}: ptebench/base}}) "
            f"or PTEBENCH_IMAGE_MAP='{svc.image}=ptebench/base'")

    def _image_defaults(self, image: str) -> tuple[str, str]:
        """(USER, WORKDIR) the image declares ('' when unset)."""
        from ptebench.sandbox import engine

        client = engine.client()
        try:
            cfg = client.images.get(image).attrs.get("Config") or {}
        finally:
            client.close()
        return str(cfg.get("User") or ""), str(cfg.get("WorkingDir") or "")

    def network(self, task: HarborTask) -> Literal["none", "full"]:
        """What the sandbox gets: the task's public network only when the experiment allows it."""
        return "full" if network_requested(task.config) == "public" and self.allow_full_internet else "none"

    def build(self, task: HarborTask) -> SandboxSpec:
        """Build the task's images (cached) and return its sandbox spec."""
        if task.id in self._specs:
            return self._specs[task.id]
        env = task.config.environment
        dockerfile = task.root / "environment" / "Dockerfile"
        try:
            image = self._image(task, task.main, "environment")
        except ConfigError:
            if task.main.image is None or task.main.context is not None or not dockerfile.is_file():
                raise
            image = self._image(task, task.main.model_copy(update={"image": None, "context": dockerfile.parent}),
                                "environment")
        img_user, img_wd = self._image_defaults(image)
        default_user = task.main.user or img_user or "root"
        user = str(task.config.agent.user if task.config.agent.user is not None else default_user)
        vuser = task.config.verifier.user
        self._verifier_users[task.id] = str(vuser if vuser is not None else default_user)
        workdir = env.workdir or task.main.workdir or (img_wd if img_wd not in ("", "/") else DEFAULT_WORKDIR)
        memory = env.memory_mb or (_size_mb(env.memory) if env.memory else None) or task.main.memory_mb or 2048
        storage = env.storage_mb or (_size_mb(env.storage) if env.storage else None) or 10240
        services = {}
        for name, svc in task.services.items():
            services[name] = ServiceSpec(
                image=self._image(task, svc, f"services.{name}"), command=svc.command,
                entrypoint=svc.entrypoint, user=svc.user, workdir=svc.workdir, env=svc.env,
                resources=Resources(cpus=svc.cpus or 1.0, memory_mb=svc.memory_mb or 512, pids=512),
                # compose services expect a writable system, like Harbor's own
                read_only_root=bool(svc.read_only), tmpfs=svc.tmpfs or {"/tmp": "size=256m,exec"},
                healthcheck=svc.healthcheck,
            )
        spec = SandboxSpec(
            image=image, user=user, workdir=workdir, network=self.network(task),
            resources=Resources(cpus=float(env.cpus or task.main.cpus or 1.0), memory_mb=memory,
                                pids=1024, disk_mb=storage),
            read_only_root=False,  # Harbor tasks install packages and edit system files
            tmpfs={"/tmp": "size=512m,exec"},
            env={**env.env, **task.main.env},
            services=services,
        )
        self._specs[task.id] = spec
        return spec

    # --- the Task protocol -----------------------------------------------------------------

    def task_of(self, instance: TaskInstance) -> HarborTask:
        key = instance.hidden.get("harbor_task", instance.id)
        if not isinstance(key, str) or key not in self.tasks:
            raise KeyError(f"{self.name}: unknown instance {instance.id!r}")
        return self.tasks[key]

    def instances(self, options: TaskOptions | None = None) -> list[TaskInstance]:
        opts = options or TaskOptions()
        if opts.options:
            raise ConfigError(f"Harbor tasks {self.name}: unknown options {sorted(opts.options)}; "
                              "give image_map / build_network in the harbor: entry")
        known = [TaskInstance(family=self.name, id=t, instructions="") for t in self.tasks]
        out = []
        for tid in [i.id for i in select(known, opts)]:
            t = self.tasks[tid]
            spec = self.build(t)
            cfg = t.config
            timeout = cfg.agent.timeout_sec or DEFAULT_AGENT_TIMEOUT_S
            meta: dict[str, JsonValue] = {
                "format": "harbor",
                **{k: v for k, v in cfg.metadata.items()},
                "network_requested": network_requested(cfg),
                "network_granted": spec.network if not spec.services else f"{spec.network} + services",
                "services": list[JsonValue](sorted(spec.services)),
            }
            if cfg.task is not None:
                meta["harbor_name"] = cfg.task.name
            out.append(TaskInstance(
                family=self.name, id=t.id, kind="agentic", instructions=t.instruction,
                tools=["bash", "python", "submit"], metadata=meta,
                limits=Limits(steps=50, wall_s=timeout, tool_timeout_s=timeout),
                reference=Reference(actions=[oracle_action(t, spec.workdir)] if t.has_solution else []),
                hidden={"harbor_task": t.id},
            ))
        return out

    def sandbox_spec(self, instance: TaskInstance) -> SandboxSpec | None:
        return self.build(self.task_of(instance))

    async def setup(self, sandbox: Sandbox | None, instance: TaskInstance) -> None:
        """Make /logs/{agent,verifier}, then run the environment's healthcheck (if any)."""
        import asyncio

        t = self.task_of(instance)
        if sandbox is None:
            raise ConfigError(f"Harbor task {t.id}: needs the docker sandbox")
        res = await sandbox.exec(f"mkdir -p /logs/agent {VERIFIER_DIR} && chmod 777 /logs/agent",
                                 user="root", timeout=60)
        if sandbox.name != "docker":
            raise ConfigError(f"Harbor task {t.id}: runs only in the docker sandbox, not {sandbox.name}")
        if not res.ok:
            raise TaskSetupError(f"{t.root}: cannot create /logs in the container: {res.stderr[-300:]}")
        h = t.config.environment.healthcheck
        if h is None:
            return
        last = ""
        for _ in range(max(1, h.retries)):
            r = await sandbox.exec(h.command, user="root", timeout=h.timeout_sec)
            if r.ok:
                return
            last = (r.stdout + r.stderr)[-300:]
            await asyncio.sleep(h.interval_sec)
        raise TaskSetupError(f"{t.root / TASK_FILE}: environment.healthcheck failed {h.retries} times: {last}")

    async def score(self, sandbox: Sandbox | None, instance: TaskInstance, submission: str | None) -> Score:
        """Upload tests/ to /tests, run test.sh as the verifier user, read the reward file."""
        t = self.task_of(instance)
        if sandbox is None:
            raise TaskScoringError(f"Harbor task {t.id}: scoring needs the task's sandbox")
        spec = self.build(t)
        prep = await sandbox.exec(
            f"rm -rf {TESTS_DIR} && mkdir -p {TESTS_DIR} {VERIFIER_DIR} && chmod 777 {VERIFIER_DIR} "
            f"&& rm -f {VERIFIER_DIR}/reward.txt {VERIFIER_DIR}/reward.json "
            f"&& tar -x -C {TESTS_DIR} && chmod +x {TESTS_DIR}/test.sh",
            user="root", input=_tar_dir(t.root / "tests"), timeout=120)
        if not prep.ok:
            raise TaskScoringError(f"{t.root}: uploading tests/ to {TESTS_DIR} failed: {prep.stderr[-300:]}")
        run = await sandbox.exec(
            f"({TESTS_DIR}/test.sh) > {VERIFIER_DIR}/test-stdout.txt 2>&1",
            user=self._verifier_users[t.id], cwd=spec.workdir, env=dict(t.config.verifier.env), timeout=t.config.verifier.timeout_sec)
        files: dict[str, str | None] = {}
        for name in ("reward.json", "reward.txt"):
            r = await sandbox.exec(["cat", f"{VERIFIER_DIR}/{name}"], user="root", timeout=30)
            files[name] = r.stdout if r.ok else None
        if run.timed_out and files["reward.json"] is None and files["reward.txt"] is None:
            raise TaskScoringError(f"{t.root}: tests/test.sh timed out after {t.config.verifier.timeout_sec:g}s "
                                   "without writing a reward")
        try:
            value, why = parse_reward(files["reward.json"], files["reward.txt"])
        except TaskScoringError as e:
            log = await sandbox.exec(["tail", "-c", "400", f"{VERIFIER_DIR}/test-stdout.txt"], user="root", timeout=30)
            raise TaskScoringError(f"{t.root}: {e} (test.sh exit {run.exit_code}; output: {log.stdout.strip()})") from e
        return Score(value=value, explanation=f"{why}; test.sh exit {run.exit_code}")


def load_harbor(path: str | Path, *, allow_full_internet: bool = False,
                image_map: Mapping[str, str] | None = None, build_network: bool = False) -> HarborFamily:
    """The Harbor task folder(s) at ``path``, checked (images are built on first use).

    Raises:
        ConfigError: no such folder, no task.toml, or tasks that do not validate (every
            problem of every task, each naming its file and field).
    """
    from ptebench.tasks.native import TaskFormatError

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such Harbor task folder")
    roots = find_tasks(p)
    if not roots:
        raise ConfigError(f"{p}: no {TASK_FILE} found (a Harbor task folder holds task.toml, "
                          "instruction.md, environment/, tests/test.sh)")
    tasks: list[HarborTask] = []
    errors: list[str] = []
    for r in roots:
        try:
            tasks.append(parse_task(r))
        except TaskFormatError as e:
            errors += e.errors
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        errors.append(f"{p}: two task folders share a name ({sorted(ids)}); instance ids are folder names")
    if errors:
        raise TaskFormatError(errors)
    folder = p.parent if p.is_file() else p
    return HarborFamily(folder, tasks, allow_full_internet=allow_full_internet,
                        image_map=image_map, build_network=build_network)
