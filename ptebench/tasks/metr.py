"""Import of METR Task Standard families: ``tasks: [{metr: {path: DIR}}]``.

A family folder holds ``<name>.py`` (the folder's name, snake case) defining ``TaskFamily``
with ``standard_version``, ``get_tasks``, ``get_instructions`` and ``score``; optionally
``install``, ``start``, ``get_permissions``, ``intermediate_score``, ``aggregate_scores``
(``get_aux_vm_spec`` is refused), and an optional ``manifest.yaml`` of per-task resources.

The mapping (docs/tasks-suites.md):

* the family's Python never runs on the host: the host only parses it (``ast``) to report
  missing methods; everything else runs in Docker through ``metr_runner.py``;
* ``install`` runs at image build: an image ``FROM ptebench/base`` with the folder copied to
  /root, built with no network (no registry is needed, nothing is pulled);
* ``get_tasks``/``get_instructions``/``get_permissions`` run once in a throwaway container of
  that image to list the instances;
* ``start`` runs as root in the episode's sandbox before the agent; then everything it left
  in /home/agent is handed to the ``agent`` user;
* ``score`` runs as root in the sandbox; a float is the score (clipped to [0, 1]), ``None``
  means "needs manual scoring" (``Score(value=None)``);
* ``["full_internet"]`` becomes ``network: full`` only when the experiment sets
  ``allow_full_internet``; otherwise loading the family fails with a message saying so.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from ptebench.errors import ConfigError, PtebenchError, require
from ptebench.records import Limits, Score
from ptebench.sandbox.base import Resources, Sandbox, SandboxSpec, ServiceSpec
from ptebench.tasks.base import TaskInstance, TaskOptions, select

BASE_IMAGE = "ptebench/base"
RUNNER_PATH = "/opt/ptebench/metr_runner.py"
REQUIRED = ("get_tasks", "get_instructions", "score")
OPTIONAL = ("install", "start", "get_permissions", "intermediate_score", "aggregate_scores")
KNOWN_PERMISSIONS = {"full_internet"}
SETUP_TIMEOUT_S = 600.0


class MetrError(PtebenchError):
    """The family's own code failed inside the sandbox (names the file and the method)."""


# -- manifest.yaml --------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ManifestResources(_Strict):
    """Resources one task asks for."""

    cpus: float | None = Field(default=None, gt=0)
    """CPU cores."""
    memory_gb: float | None = Field(default=None, gt=0)
    """Memory in GB."""
    storage_gb: float | None = Field(default=None, gt=0)
    """Writable disk in GB."""
    gpu: dict[str, JsonValue] | None = None
    """GPUs (refused: ptebench sandboxes have none)."""


class ManifestTask(_Strict):
    """One task's entry in manifest.yaml."""

    resources: ManifestResources | None = None
    """What the task's sandbox needs."""
    scoring: dict[str, JsonValue] | None = None
    """Scoring hints (recorded, not interpreted)."""
    meta: dict[str, JsonValue] | None = None
    """Free-form metadata (recorded)."""
    version: str | None = None
    """The task's version."""
    type: str | None = None
    """Task type (recorded)."""


class Manifest(_Strict):
    """manifest.yaml of a family."""

    tasks: dict[str, ManifestTask] = Field(default_factory=dict)
    """Per-task settings, by task name."""
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    """A ptebench extension (the Task Standard has none): service containers beside every
    task's sandbox, on the episode's internal network (``build`` is relative to the family
    folder, built FROM ${PTEBENCH_BASE})."""
    meta: dict[str, JsonValue] | None = None
    """Free-form metadata (recorded)."""
    version: str | None = None
    """The family's version."""


def read_manifest(path: Path) -> Manifest:
    """Parse ``path`` (absent → empty manifest).

    Raises:
        ConfigError: not YAML, or fields that do not validate (each named with its place).
    """
    if not path.exists():
        return Manifest()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    try:
        return Manifest.model_validate(raw)
    except ValidationError as e:
        lines = [f"{path}: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise ConfigError("invalid METR manifest:\n" + "\n".join(lines)) from e


# -- static check of the family module (parsed, never executed on the host) ------------------


def check_module(path: Path) -> list[str]:
    """Problems of a TaskFamily module found by parsing it: missing file, class or methods."""
    if not path.exists():
        return [f"{path}: missing (a METR family folder holds <folder name>.py)"]
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as e:
        return [f"{path}:{e.lineno}: syntax error: {e.msg}"]
    cls = next(
        (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TaskFamily"), None
    )
    if cls is None:
        return [f"{path}: no class TaskFamily"]
    methods = {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    attrs = {
        t.id
        for n in cls.body
        if isinstance(n, ast.Assign | ast.AnnAssign)
        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
        if isinstance(t, ast.Name)
    }
    problems: list[str] = []
    if "standard_version" not in attrs:
        problems.append(f"{path}:{cls.lineno}: TaskFamily has no standard_version attribute")
    for m in REQUIRED:
        if m not in methods:
            problems.append(f"{path}:{cls.lineno}: TaskFamily has no method {m}() (required)")
    return problems


# -- image ----------------------------------------------------------------------------------


def _context(folder: Path, name: str, base: str) -> tuple[bytes, str]:
    """The build context (tar) and a hash of everything that determines the image."""
    dockerfile = (
        f"FROM {base}\nUSER root\nCOPY family/ /root/\nCOPY metr_runner.py {RUNNER_PATH}\n"
        f"WORKDIR /root\nRUN chmod 700 /root && python3 -I {RUNNER_PATH} install {name}\n"
    )
    runner = (Path(__file__).parent / "metr_runner.py").read_bytes()
    digest = hashlib.sha256(dockerfile.encode() + runner)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for arc, data in (("Dockerfile", dockerfile.encode()), ("metr_runner.py", runner)):
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for f in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            rel = f.relative_to(folder).as_posix()
            data = f.read_bytes()
            digest.update(rel.encode() + b"\0" + data)
            info = tarfile.TarInfo(f"family/{rel}")
            info.size = len(data)
            info.mode = 0o755 if f.stat().st_mode & 0o100 else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), digest.hexdigest()[:16]


def _marked(text: str) -> dict[str, Any] | None:
    from ptebench.tasks.metr_runner import MARK

    lines = [ln for ln in text.splitlines() if ln.startswith(MARK)]
    return json.loads(lines[-1][len(MARK) :]) if lines else None


def build_image(folder: Path, name: str, base: str = BASE_IMAGE) -> str:
    """Build (or reuse) the family's image, running ``install`` offline; returns its tag.

    Raises:
        MetrError: install failed (message names the file and TaskFamily.install).
        ConfigError: the base image is missing.
    """
    docker: Any = require("docker", "docker")
    client = docker.from_env()
    try:
        try:
            base_id = client.images.get(base).id
        except docker.errors.ImageNotFound as e:
            raise ConfigError(f"METR family {name}: base image {base!r} not found (run `ptebench sandbox build`)") from e
        ctx, digest = _context(folder, name, base)
        tag = f"ptebench/metr-{name}:{hashlib.sha256((digest + base_id).encode()).hexdigest()[:16]}"
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        try:
            client.images.build(
                fileobj=io.BytesIO(ctx), custom_context=True, tag=tag, network_mode="none",
                rm=True, forcerm=True, labels={"ptebench": "metr", "ptebench.family": name},
            )
        except docker.errors.BuildError as e:
            log = "".join(str(chunk.get("stream", "")) for chunk in e.build_log)
            res = _marked(log)
            why = res["error"] if res and "error" in res else str(e)
            raise MetrError(f"{folder / (name + '.py')}: TaskFamily.install failed at image build: {why}") from e
        return tag
    finally:
        client.close()


def describe(tag: str, folder: Path, name: str) -> dict[str, Any]:
    """Run get_tasks/get_instructions/get_permissions in a throwaway container of ``tag``.

    Raises:
        MetrError: the family's code failed (message names file and method).
    """
    docker: Any = require("docker", "docker")
    client = docker.from_env()
    try:
        c = client.containers.create(
            tag, ["python3", "-I", RUNNER_PATH, "describe", name], user="root",
            network_mode="none", cap_drop=["ALL"], security_opt=["no-new-privileges:true"],
            mem_limit="512m", pids_limit=128, labels={"ptebench": "metr-describe"},
        )
        try:
            c.start()
            c.wait(timeout=120)
            out = c.logs(stdout=True, stderr=False).decode(errors="replace")
            err = c.logs(stdout=False, stderr=True).decode(errors="replace")
        finally:
            c.remove(force=True)
    finally:
        client.close()
    res = _marked(out)
    if res is None or "error" in res:
        why = res["error"] if res else err[-500:]
        method = res["method"] if res else "TaskFamily"
        raise MetrError(f"{folder / (name + '.py')}: {method} failed: {why}")
    return res


# -- the Task ---------------------------------------------------------------------------------


class MetrFamily:
    """A METR family loaded from a folder (see the module doc)."""

    def __init__(self, folder: Path, allow_full_internet: bool = False, base_image: str = BASE_IMAGE) -> None:
        self.folder = folder.resolve()
        self.name = self.folder.name
        self.module_path = self.folder / f"{self.name}.py"
        self.allow_full_internet = allow_full_internet
        self.base_image = base_image
        problems = check_module(self.module_path)
        if not self.name.isidentifier() or self.name != self.name.lower():
            problems.insert(0, f"{self.folder}: a METR family name must be snake_case (the folder name)")
        if problems:
            raise ConfigError("invalid METR task family:\n" + "\n".join(problems))
        self.manifest = read_manifest(self.folder / "manifest.yaml")
        self.default_limits = Limits(steps=30, tool_timeout_s=60)
        self._info: tuple[str, dict[str, Any]] | None = None
        self._built_services: dict[str, ServiceSpec] | None = None

    def _described(self) -> tuple[str, dict[str, Any]]:
        """Image tag and task listing, built and listed once per family object."""
        if self._info is None:
            tag = build_image(self.folder, self.name, self.base_image)
            self._info = (tag, describe(tag, self.folder, self.name))
        return self._info

    def _resources(self, task: str) -> Resources:
        entry = self.manifest.tasks.get(task)
        res = entry.resources if entry is not None else None
        if res is None:
            return Resources()
        if res.gpu:
            raise ConfigError(f"{self.folder / 'manifest.yaml'}: tasks.{task}.resources.gpu: GPUs are not supported")
        return Resources(
            cpus=res.cpus or 1.0,
            memory_mb=int((res.memory_gb or 1.0) * 1024),
            disk_mb=int((res.storage_gb or 0.5) * 1024),
        )

    def instances(self, options: TaskOptions) -> list[TaskInstance]:
        if options.options:
            raise ConfigError(f"METR family {self.name}: unknown options {sorted(options.options)}; accepted: none")
        tag, info = self._described()
        tasks: dict[str, dict[str, Any]] = info["tasks"]
        known = [TaskInstance(family=self.name, id=t, instructions="") for t in tasks]
        out: list[TaskInstance] = []
        for task in [i.id for i in select(known, options)]:
            d = tasks[task]
            perms: list[JsonValue] = [str(p) for p in d["permissions"]]
            where = f"{self.module_path}: TaskFamily.get_permissions({task!r})"
            bad = sorted({str(p) for p in perms} - KNOWN_PERMISSIONS)
            if bad:
                raise ConfigError(f"{where}: unknown permissions {bad}; accepted: full_internet")
            if d["aux_vm"]:
                raise ConfigError(
                    f"{self.module_path}: TaskFamily.get_aux_vm_spec({task!r}) asks for an auxiliary "
                    "VM; ptebench does not provide aux VMs, so this task cannot run"
                )
            if "full_internet" in perms and not self.allow_full_internet:
                raise ConfigError(
                    f"{where} asks for full_internet; set allow_full_internet: true in the "
                    "experiment to grant it (or select other tasks with ids)"
                )
            network = "full" if "full_internet" in perms else "none"
            out.append(
                TaskInstance(
                    family=self.name,
                    id=str(task),
                    kind="agentic",
                    instructions=str(d["instructions"]),
                    tools=["bash", "python", "submit"],
                    metadata={
                        "metr_standard_version": info["standard_version"],
                        "permissions": perms,
                        "scoring": "TaskFamily.score run as root in the sandbox",
                    },
                    hidden={"image": tag, "network": network, "task": d["task"]},
                )
            )
        return out

    def _services(self) -> dict[str, ServiceSpec]:
        """The manifest's services, each ``build`` built (cached by content hash)."""
        if self._built_services is None:
            from ptebench.sandbox.images.build import build_dockerfile

            out = {}
            for name, svc in self.manifest.services.items():
                if svc.build is not None:
                    dockerfile = (self.folder / svc.build).resolve()
                    if not dockerfile.is_relative_to(self.folder) or not dockerfile.is_file():
                        raise ConfigError(f"{self.folder / 'manifest.yaml'}: services.{name}.build: "
                                          f"no Dockerfile {svc.build!r} in the family folder")
                    tag = build_dockerfile(dockerfile.parent, dockerfile,
                                           repo=f"ptebench/metr-{self.name}-{name}".lower(),
                                           build_args={"PTEBENCH_BASE": self.base_image})
                    svc = svc.model_copy(update={"image": tag, "build": None})
                out[name] = svc
            self._built_services = out
        return self._built_services

    def sandbox_spec(self, instance: TaskInstance) -> SandboxSpec | None:
        network = str(instance.hidden["network"])
        return SandboxSpec(
            image=str(instance.hidden["image"]),
            user="agent",
            workdir="/home/agent",
            network="full" if network == "full" else "none",
            resources=self._resources(instance.id),
            read_only_root=False,  # METR tasks expect a writable system, as in their own driver
            services=self._services(),
        )

    async def _run(
        self, sandbox: Sandbox, command: str, instance: TaskInstance, stdin: str | None = None
    ) -> dict[str, Any]:
        res = await sandbox.exec(
            ["python3", "-I", RUNNER_PATH, command, self.name, instance.id],
            user="root", input=stdin, timeout=SETUP_TIMEOUT_S, cwd="/root",
        )
        out = _marked(res.stdout)
        if out is None or "error" in out:
            why = out["error"] if out else ("timed out" if res.timed_out else res.stderr[-500:])
            method = out["method"] if out else f"TaskFamily.{command}"
            raise MetrError(f"{self.module_path}: {method}({instance.id!r}) failed: {why}")
        return out

    async def setup(self, sandbox: Sandbox | None, instance: TaskInstance) -> None:
        """Run ``start`` as root, then hand /home/agent to the agent user."""
        if sandbox is None:
            raise ConfigError(f"METR family {self.name}: runs only in the docker sandbox")
        # The hardened profile drops every capability, so root cannot write into the agent's
        # directory: open it for the duration of start, then give everything back.
        await sandbox.exec("chmod 777 /home/agent", user="agent", timeout=30)
        if sandbox.name != "docker":  # known only once a (lazily acquired) sandbox exists
            raise ConfigError(f"METR family {self.name}: runs only in the docker sandbox, not {sandbox.name}")
        await self._run(sandbox, "start", instance)
        await sandbox.exec(_HANDOVER_ROOT, user="root", timeout=120)
        res = await sandbox.exec(_HANDOVER_AGENT, user="agent", timeout=120)
        if not res.ok:
            raise MetrError(f"{self.module_path}: handing /home/agent to agent after start failed: {res.stderr[-300:]}")

    async def score(
        self, sandbox: Sandbox | None, instance: TaskInstance, submission: str | None
    ) -> Score:
        if sandbox is None:
            raise ConfigError(f"METR family {self.name}: scoring needs the task's sandbox")
        out = await self._run(sandbox, "score", instance, stdin=submission or "")
        value = out["score"]
        if value is None:
            return Score(value=None, explanation="needs manual scoring")
        v = float(value)
        clipped = min(1.0, max(0.0, v))
        note = "" if clipped == v else f" (clipped from {v:g})"
        return Score(value=clipped, explanation=f"TaskFamily.score returned {v:g}{note}")

    async def intermediate_score(self, sandbox: Sandbox, instance: TaskInstance) -> JsonValue:
        """The family's ``intermediate_score`` result, run as root in the sandbox."""
        return (await self._run(sandbox, "intermediate_score", instance))["result"]

    async def aggregate_scores(self, sandbox: Sandbox, instance: TaskInstance, scores: list[float]) -> float | None:
        """The family's ``aggregate_scores`` over ``scores``, run as root in the sandbox."""
        return (await self._run(sandbox, "aggregate_scores", instance, stdin=json.dumps(scores)))["score"]


# Root may chmod what it owns (no capability needed); the agent then copies each root-owned
# entry and replaces it, so it owns everything in its home (group/other write, opened only for
# the copy, is removed again). With CAP_CHOWN, chown suffices.
_HANDOVER_ROOT = (
    "chown -R agent:agent /home/agent 2>/dev/null || "
    "find /home/agent -mindepth 1 -user root -exec chmod a+rwX {} + 2>/dev/null; true"
)
_HANDOVER_AGENT = r"""set -e
cd /home/agent
find . -mindepth 1 -maxdepth 1 ! -user agent -print0 | while IFS= read -r -d '' e; do
  cp -a --no-preserve=ownership "$e" "$e.ptebench-tmp"
  rm -rf "$e"
  mv "$e.ptebench-tmp" "$e"
  chmod -R go-w "$e"
done
chmod 755 /home/agent
"""


def load_metr_family(folder: Path, allow_full_internet: bool = False) -> MetrFamily:
    """The family in ``folder`` (statically checked; images are built on first use).

    Raises:
        ConfigError: no such folder, or a malformed module or manifest (every problem named).
    """
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such METR family folder")
    return MetrFamily(folder, allow_full_internet=allow_full_internet)
