"""Experiment YAML → a validated ``Experiment``.

The file format is the contract other parts build on: extend it, never break it.

    name: quickstart
    out: runs/quickstart
    models: [sim/1e20, {id: local, provider: openai, model: qwen, base_url: ...}]
    scaffolds: [direct, {name: react, params: {max_steps: 7}}]
    tasks: [{name: arith, limit: 20}, {path: tasks/my_family}, {metr: {path: DIR}}, {harbor: {path: DIR}}]
    epochs: 3
    seed: 0
    baseline: direct
    sandbox: docker            # or local (no isolation: the user's explicit choice)
    limits: {steps: 30, tokens: 100000, wall_s: 600}
    concurrency: {episodes: 16}

Every error names the file, the field and what is accepted; no traceback for user errors.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from ptebench import registry
from ptebench.errors import ConfigError
from ptebench.models.base import ModelConfig
from ptebench.models.catalog import default_catalog
from ptebench.records import Limits

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MAX_EPISODES = 200_000
"""Default cap on the planned episodes of one run (``max_episodes`` raises it)."""
MAX_COUNT = 10_000
"""Default cap on a scaffold's integer parameters (``max_count`` raises it)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScaffoldEntry(_Strict):
    """One scaffold of the matrix."""

    name: str
    """Registered scaffold name (see `ptebench scaffolds list`)."""
    params: dict[str, JsonValue] = Field(default_factory=dict)
    """Scaffold parameters; unknown keys are an error."""
    label: str | None = None
    """Name to report this variant under (default: the name, plus params if the name repeats)."""


class MetrRef(_Strict):
    path: str
    """Folder of a METR Task Standard family."""


class HarborRef(_Strict):
    path: str
    """A Harbor task folder (task.toml, instruction.md, environment/, tests/) or a folder of them."""
    image_map: dict[str, str] = Field(default_factory=dict)
    """FROM / compose images → local images, for images no registry can supply
    (e.g. {ubuntu:24.04: ptebench/base}); entries of PTEBENCH_IMAGE_MAP apply too."""
    build_network: bool = False
    """Give the Dockerfiles' RUN steps a network at build time (default: offline builds)."""


class TaskEntry(_Strict):
    """One task family of the matrix, with its selection options."""

    name: str | None = None
    """A shipped or registered family (see `ptebench tasks list`)."""
    path: str | None = None
    """A native task folder holding task.yaml."""
    metr: MetrRef | None = None
    """A METR Task Standard family folder."""
    harbor: HarborRef | None = None
    """Harbor (Terminal-Bench 2) task folder(s)."""
    limit: int | None = Field(default=None, ge=1)
    """At most this many instances."""
    ids: list[str] | None = None
    """Only these instance ids."""
    seed: int | None = None
    """Shuffle instances with this seed before `limit`."""
    split: str | None = None
    """A family-defined split (e.g. game24 'test')."""
    options: dict[str, JsonValue] = Field(default_factory=dict)
    """Family-specific options."""

    @model_validator(mode="after")
    def _one_source(self) -> TaskEntry:
        given = [k for k in ("name", "path", "metr", "harbor") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of name, path, metr, harbor (got {given or 'none'})")
        return self


class Concurrency(_Strict):
    episodes: int = Field(default=8, ge=1)
    """Episodes in flight at once."""


class RaySettings(_Strict):
    address: str | None = None
    """Ray cluster to join (``ray://host:10001``, ``host:6379`` or ``auto``); None starts a
    local one-machine cluster. ``ptebench run --address`` overrides."""
    num_cpus: float = Field(default=1.0, ge=0)
    """CPUs one episode reserves on its node: a node runs (its CPUs / num_cpus) episodes at once."""
    resources: dict[str, float] = Field(default_factory=dict)
    """Custom Ray resources every episode needs (e.g. {docker: 1} on nodes started with
    ``ray start --resources '{"docker": 8}'``)."""
    max_retries: int = Field(default=3, ge=0)
    """Re-runs of an episode whose worker or node died; it is recorded once either way."""
    model_resources: dict[str, dict[str, Annotated[float, Field(gt=0)]]] = Field(default_factory=dict)
    """Pin a model's episodes to the nodes that serve it: model id → Ray resources a node
    must declare (``ray start --resources '{"serves_llama": 1}'``), e.g.
    ``{llama-70b: {serves_llama: 1}}``. Models not named run on any node that passed the check."""
    check_timeout_s: float = Field(default=300.0, gt=0)
    """How long a node may take to start its ptebench worker and answer the node check
    (engine, base image, version) before it is reported and skipped."""


class Experiment(_Strict):
    """A scaffold × model × task matrix and how to run it."""

    name: str = Field(pattern=NAME_PATTERN, max_length=200)
    """Name of the experiment (and default run folder name, so a plain name: letters,
    digits, ``.``, ``_``, ``-``; no path)."""
    out: str | None = None
    """Run folder (default runs/<name>); `--out` overrides."""
    models: list[str | dict[str, JsonValue]] = Field(min_length=1)
    """Catalog names (e.g. sim/1e22, gpt-4o-mini) or {id, provider, model, ...} configs."""
    scaffolds: list[str | ScaffoldEntry] = Field(min_length=1)
    """Scaffold names or {name, params, label}."""
    tasks: list[str | TaskEntry] = Field(min_length=1)
    """Family names or {name|path|metr|harbor, limit, ids, seed, split, options}."""
    epochs: int = Field(default=1, ge=1)
    """Repetitions of every (model, scaffold, instance). When the experiment leaves it out,
    a task family that declares its own (a native task's ``scoring.epochs.n``) gets that
    many and the others 1; when the experiment sets it, it applies to every family."""
    seed: int = 0
    """Root seed: every episode's seed derives from it and the episode's ids."""
    baseline: str = "direct"
    """Scaffold label CEG is measured against."""
    sandbox: str = "docker"
    """Sandbox backend: docker (isolated, default) or local (runs on the host: trusted tasks only)."""
    sandbox_options: dict[str, JsonValue] = Field(default_factory=dict)
    """Backend options (e.g. docker max_sandboxes)."""
    allow_full_internet: bool = False
    """Let tasks that ask for network: full have it (off: such tasks are refused)."""
    limits: Limits = Field(default_factory=Limits)
    """Episode budgets; fields set here override the tasks' own defaults."""
    concurrency: Concurrency = Field(default_factory=Concurrency)
    executor: Literal["local", "ray"] = "local"
    """local: one asyncio process; ray: episodes as Ray tasks on a cluster (``ptebench[ray]``)."""
    ray: RaySettings = Field(default_factory=RaySettings)
    """Settings of the ray executor."""
    cache: bool = False
    """Reuse model responses for identical requests (reproducible re-runs)."""
    max_episodes: int = Field(default=MAX_EPISODES, ge=1)
    """Refuse a plan of more episodes (models × scaffolds × instances × epochs) at load time;
    raise it to run a bigger matrix."""
    max_count: int = Field(default=MAX_COUNT, ge=1)
    """Largest integer a scaffold parameter may take (n, iterations, max_steps, ...;
    ``*_tokens`` parameters may take up to 1000 × this); raise it for a bigger search."""
    spend_cap_usd: float | None = Field(default=None, gt=0)
    """Run-level spend cap in dollars: once the run has spent this much, no new episode
    starts (those in flight finish), and the run says so. Needs priced models."""

    def model_configs(self) -> list[ModelConfig]:
        return [resolve_model(m, i) for i, m in enumerate(self.models)]

    def scaffold_entries(self) -> list[ScaffoldEntry]:
        entries = [ScaffoldEntry(name=s) if isinstance(s, str) else s for s in self.scaffolds]
        counts: dict[str, int] = {}
        for e in entries:
            counts[e.name] = counts.get(e.name, 0) + 1
        out = []
        for e in entries:
            label = e.label
            if label is None:
                label = e.name
                if counts[e.name] > 1 and e.params:
                    label += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(e.params.items())) + "]"
            out.append(e.model_copy(update={"label": label}))
        return out

    def task_entries(self) -> list[TaskEntry]:
        return [TaskEntry(name=t) if isinstance(t, str) else t for t in self.tasks]


def resolve_model(entry: str | dict[str, JsonValue], index: int) -> ModelConfig:
    """A catalog name or a provider dict → ModelConfig.

    Raises:
        ConfigError: unknown catalog name or invalid provider config.
    """
    cat = default_catalog()
    if isinstance(entry, str):
        card = cat.get(entry)
        if card is None:
            raise ConfigError(
                f"models[{index}]: unknown model {entry!r}; catalog names: "
                f"{', '.join(cat.names())} (or give {{id, provider, model}})"
            )
        return ModelConfig(id=entry, provider=card.provider, model=card.model or entry, card=entry)
    data = dict(entry)
    data.setdefault("id", str(data.get("model") or f"model{index}"))
    try:
        cfg = ModelConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format(e, f"models[{index}]")) from e
    if cfg.card is None and cat.get(cfg.id) is not None:
        cfg = cfg.model_copy(update={"card": cfg.id})
    elif cfg.card is None and cfg.model and cat.get(cfg.model) is not None:
        cfg = cfg.model_copy(update={"card": cfg.model})
    return cfg


def _format(e: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"  {where}: {msg}")
    return "\n".join(parts)


def load_experiment(path: Path) -> tuple[Experiment, dict[str, Any]]:
    """Read and validate an experiment file; returns (experiment, the raw mapping as given).

    Raises:
        ConfigError: unreadable file, invalid YAML, a wrong field, an unknown name.
    """
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read experiment file: {e.strerror or e}") from e
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: an experiment must be a YAML mapping (name, models, scaffolds, tasks, ...)")
    return parse_experiment(raw, str(path)), raw


def parse_experiment(raw: dict[str, Any], source: str = "<experiment>") -> Experiment:
    """Validate a mapping as an Experiment and check every name against the registry."""
    try:
        exp = Experiment.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{source}: invalid experiment:\n{_format(e)}") from e
    try:
        check_names(exp)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from e
    return exp


def check_names(exp: Experiment) -> None:
    """Resolve every model, scaffold (with params), task and sandbox name now, not mid-run."""
    for cfg in exp.model_configs():
        _known("model", cfg.provider, f"models[{cfg.id}].provider")
    for i, s in enumerate(exp.scaffold_entries()):
        cls = _known("scaffold", s.name, f"scaffolds[{i}]")
        try:
            cls.Params.model_validate(s.params)
        except ValidationError as e:
            raise ConfigError(f"invalid params for scaffold {s.name!r}:\n{_format(e, f'scaffolds[{i}].params')}") from e
    for i, t in enumerate(exp.task_entries()):
        if t.name is not None:
            _known("task", t.name, f"tasks[{i}].name")
        elif t.path is not None and not Path(t.path).exists():
            raise ConfigError(f"tasks[{i}].path: no such folder {t.path!r}")
        elif t.metr is not None and not Path(t.metr.path).exists():
            raise ConfigError(f"tasks[{i}].metr.path: no such folder {t.metr.path!r}")
        elif t.harbor is not None and not Path(t.harbor.path).exists():
            raise ConfigError(f"tasks[{i}].harbor.path: no such folder {t.harbor.path!r}")
    for i, s in enumerate(exp.scaffold_entries()):
        for k, v in s.params.items():
            cap = exp.max_count * (1000 if k.endswith("_tokens") else 1)
            if isinstance(v, int | float) and not isinstance(v, bool) and v > cap:
                raise ConfigError(f"scaffolds[{i}].params.{k}: {v} is above the maximum {cap} "
                                  "(set max_count in the experiment to allow more)")
    check_sandbox_options(exp)
    labels = [s.label for s in exp.scaffold_entries()]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"scaffolds: two entries report under the same label {labels}; give each a `label`")
    if exp.baseline not in labels:
        raise ConfigError(f"baseline: {exp.baseline!r} is not one of the scaffolds ({', '.join(str(x) for x in labels)})")
    ids = [m.id for m in exp.model_configs()]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"models: duplicate ids {ids}; give each model a distinct `id`")
    unknown = [m for m in exp.ray.model_resources if m not in ids]
    if unknown:
        raise ConfigError(f"ray.model_resources: {', '.join(map(repr, unknown))} is not a model id "
                          f"of the experiment; its models: {', '.join(ids)}")
    for mid, res in exp.ray.model_resources.items():
        if not res:
            raise ConfigError(f"ray.model_resources.{mid}: name at least one Ray resource "
                              "(e.g. {serves_llama: 1}), or leave the model out")


def check_sandbox_options(exp: Experiment) -> None:
    """The sandbox backend exists and accepts ``sandbox_options`` (names and values), now."""
    cls = _known("sandbox", exp.sandbox, "sandbox")
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(exp.sandbox_options) - set(params))
        if unknown:
            raise ConfigError(f"sandbox_options: unknown option(s) {', '.join(unknown)} for the "
                              f"{exp.sandbox} sandbox; accepted: {', '.join(params) or 'none'}")
    try:
        made = cls(**exp.sandbox_options)  # providers connect lazily: this only validates
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"sandbox_options: {e}") from e
    del made


def _known(kind: registry.Kind, name: str, field: str) -> Any:
    try:
        return registry.get(kind, name)
    except registry.UnknownComponent as e:
        raise ConfigError(f"{field}: {e}") from e
