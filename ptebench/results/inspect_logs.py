"""Inspect AI ``.eval`` logs in and out (the optional extra ``ptebench[inspect]``).

In: ``load_logs(dir)`` turns a folder of Inspect logs (an eval run across a model ladder) into
the CEG contract table. Each log's model is matched to a model card for its training compute
(a ``--cards`` file first, then the compute a ptebench export recorded, then the catalog), each
solver or agent becomes a scaffold label, each scored sample one row.

Out: ``export_run(run, out)`` writes one ``.eval`` log per model × scaffold of a ptebench run,
samples = episodes (messages, score, model usage, metadata), through inspect_ai's own log API,
so ``inspect view`` and ``read_eval_log`` open them.

The mapping of fields is documented in docs/results.md ("Inspect AI logs").
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import pandas as pd

from ptebench.errors import UserError, require
from ptebench.models import accounting
from ptebench.models.base import Message, ToolCall
from ptebench.models.catalog import ModelCard, default_catalog, load_cards
from ptebench.models.transcript import Transcript
from ptebench.records import Episode, RunManifest, Usage

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalSample
    from inspect_ai.model import ChatMessage

    from ptebench.results.table import LoadedTable

EXTRA = "inspect"
SCORE_NAME = "ptebench"
"""Name of the score an export writes (and the metric group of its results)."""
META_KEY = "ptebench"
"""Key of ptebench's own block in an exported log's (and sample's) metadata."""

_SCORE_WORDS = {"c", "i", "p", "n", "yes", "no", "true", "false"}
_STAMPED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}[:-]\d{2}[:-]\d{2}")
"""How Inspect names its logs (a .json log is recognised by this prefix, as Inspect does)."""
_REDUCERS = re.compile(r"^(mean|at_least_1|pass_at_[1-9][0-9]*)$")


class InspectLogError(UserError):
    """An Inspect log that cannot give a CEG row: unreadable, unscored, no card, no usage."""


def _require() -> None:
    require("inspect_ai.log", EXTRA)


def _local(name: str) -> Path:
    """A listing name (``file:///…`` URI or a path) as a local path, for messages."""
    return Path(unquote(urlparse(name).path)) if name.startswith("file://") else Path(name)


def log_files(path: Path) -> list[Path]:
    """The Inspect logs (``.eval``, and ``.json`` logs with Inspect's timestamped names) under
    ``path`` — a folder, searched recursively, or one log file — sorted by path."""
    _require()
    from inspect_ai.log import list_eval_logs

    if path.is_file():
        return [path]
    return sorted(_local(i.name) for i in list_eval_logs(str(path), recursive=True))


def is_inspect_source(path: Path) -> bool:
    """True for an ``.eval`` file, or a folder that holds Inspect logs and no ptebench run."""
    if path.is_file():
        return path.suffix == ".eval"
    if not path.is_dir() or (path / "episodes.jsonl").exists():
        return False
    return any(path.rglob("*.eval")) or any(_STAMPED.match(f.name) for f in path.rglob("*.json"))


# -- in: Inspect logs -> the CEG contract table --------------------------------------------------
def _read(path: Path) -> EvalLog:
    from inspect_ai.log import read_eval_log

    try:
        return read_eval_log(str(path), exclude_fields={"events", "messages", "store",
                                                        "attachments"})
    except Exception as e:  # a foreign reader: any failure is a broken input file
        raise InspectLogError(f"{path}: not a readable Inspect log (torn or corrupt?): "
                              f"{type(e).__name__}: {e}") from e


def _card_matches(model: str, cards: Iterable[ModelCard]) -> ModelCard | None:
    """The card for an Inspect model string ``provider/name``: by card name (whole string, then
    without the provider), then by the card's provider model name."""
    cards = list(cards)
    rest = model.split("/", 1)[1] if "/" in model else model
    return (next((c for c in cards if c.name == model), None)
            or next((c for c in cards if c.name == rest), None)
            or next((c for c in cards if (c.model or c.name) in (rest, model)), None))


def _recorded_card(log: EvalLog) -> ModelCard | None:
    """The card a ptebench export recorded in the log's metadata, if any."""
    meta = (log.eval.metadata or {}).get(META_KEY)
    card = meta.get("card") if isinstance(meta, dict) else None
    if not isinstance(card, dict):
        return None
    try:
        return ModelCard.model_validate(card)
    except ValueError:
        return None


def _card(log: EvalLog, path: Path, extra: list[ModelCard], cards_file: Path | None) -> ModelCard:
    model = log.eval.model
    card = (_card_matches(model, extra) or _recorded_card(log)
            or _card_matches(model, default_catalog().cards()))
    hint = (f"add a card named {model!r} with train_flop to {cards_file}" if cards_file
            else f"pass --cards FILE with a card named {model!r} (name, family, train_flop; "
                 "the format of ptebench/models/cards/*.yaml)")
    if card is None:
        raise InspectLogError(f"{path}: model {model!r} has no model card, so its training "
                              f"compute is unknown; {hint}")
    if card.train_flop is None:
        raise InspectLogError(f"{path}: model {model!r} matches card {card.name!r}, which has no "
                              f"train_flop; {hint}")
    return card


def _name(solver: str) -> str:
    return solver.removeprefix("inspect_ai/")


def _scaffold(log: EvalLog) -> tuple[str, dict[str, Any]]:
    """(label, params) of a log's solver: the eval's named solver/agent when it has one, else
    its plan's steps without the closing ``generate``; a plan of ``generate`` alone is
    ``direct`` (the bare model, ptebench's default baseline)."""
    if log.eval.solver:
        return _name(log.eval.solver), dict(log.eval.solver_args or {})
    steps = list(log.plan.steps)
    if len(steps) > 1 and _name(steps[-1].solver) == "generate":
        steps = steps[:-1]
    names = [_name(s.solver) for s in steps]
    if names in ([], ["generate"]):
        return "direct", {}
    if len(steps) == 1:
        return names[0], dict(steps[0].params)
    return ",".join(names), {f"{n}.{k}": v for n, s in zip(names, steps, strict=True)
                             for k, v in s.params.items()}


def _distinct_labels(found: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Labels made unique: a label used with different params across logs gets the params that
    differ appended, ``react[attempts=3]``, so two variants never pool into one cell."""
    variants: dict[str, set[str]] = defaultdict(set)
    for label, params in found:
        variants[label].add(json.dumps(params, sort_keys=True, default=str))
    out: list[str] = []
    for label, params in found:
        if len(variants[label]) < 2:
            out.append(label)
            continue
        all_params = [json.loads(v) for v in variants[label]]
        keys = sorted({k for p in all_params for k in p
                       if len({json.dumps(q.get(k), sort_keys=True) for q in all_params}) > 1})
        out.append(f"{label}[{','.join(f'{k}={json.dumps(params.get(k), default=str)}' for k in keys)}]")
    return out


def _score_name(log: EvalLog, path: Path, scorer: str | None) -> str | None:
    names = [s.name for s in (log.results.scores if log.results else [])]
    for sample in log.samples or []:
        names += [n for n in (sample.scores or {}) if n not in names]
    if scorer is not None:
        if scorer.split(".", 1)[0] not in names:
            raise InspectLogError(f"{path}: no score named {scorer.split('.', 1)[0]!r}; the log "
                                  f"has {names or 'no scores'}")
        return scorer
    return names[0] if names else None


def _to_float(value: object, where: str) -> float:
    from inspect_ai.scorer import value_to_float

    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            if value.lower() not in _SCORE_WORDS:
                raise InspectLogError(f"{where}: score value {value!r} is not a number nor one of "
                                      "C, I, P, N, yes, no, true, false") from None
    elif not isinstance(value, int | float):
        raise InspectLogError(f"{where}: score value {value!r} is not a scalar; choose one entry "
                              "with --scorer NAME.KEY")
    v = value_to_float()(value)
    if not 0.0 <= v <= 1.0 or math.isnan(v):
        raise InspectLogError(f"{where}: score {v} lies outside [0, 1]")
    return v


def _sample_score(sample: EvalSample, score: str, where: str) -> float | None:
    name, _, key = score.partition(".")
    got = (sample.scores or {}).get(name)
    if got is None:
        return None
    value: object = got.value
    if key:
        if not isinstance(value, dict) or key not in value:
            raise InspectLogError(f"{where}: score {name!r} has no entry {key!r}")
        value = value[key]
    return _to_float(value, where)


def _usage(sample: EvalSample, model: str, where: str) -> tuple[Usage, float | None]:
    got = sample.model_usage.get(model)
    if got is None:
        other = sorted(sample.model_usage)
        raise InspectLogError(f"{where}: no model usage recorded for {model!r}"
                              f"{f' (only for {other})' if other else ''}; CEG's inference-cost "
                              "columns need the tokens of every sample")
    read, write = got.input_tokens_cache_read or 0, got.input_tokens_cache_write or 0
    # Inspect's input_tokens exclude cache reads and writes; ptebench's prompt includes both
    usage = Usage(prompt_tokens=got.input_tokens + read + write,
                  completion_tokens=got.output_tokens, cached_prompt_tokens=read,
                  reasoning_tokens=got.reasoning_tokens or 0, cache_write_prompt_tokens=write)
    return usage, got.total_cost


def _reducer(log: EvalLog, notes: list[str], path: Path) -> str:
    given = list(log.eval.config.epochs_reducer or [])
    if not given:
        return "mean"
    name = given[0]
    if not _REDUCERS.match(name):
        notes.append(f"{path.name}: epochs reducer {name!r} is not one ptebench applies "
                     "(mean, at_least_1, pass_at_<k>); its epochs are averaged")
        return "mean"
    if len(given) > 1:
        notes.append(f"{path.name}: several epochs reducers {given}; {name!r} applied")
    return name


def load_logs(path: Path, cards: Path | None = None, scorer: str | None = None) -> LoadedTable:
    """The CEG contract table of a folder of Inspect logs (or one ``.eval`` file).

    Rows: one per scored sample and epoch; samples with an error are left out and counted.
    ``cards``: a card file (ptebench/models/cards format) searched before the catalog.
    ``scorer``: which score to use (``NAME`` or ``NAME.KEY`` for a dict-valued score);
    default: the log's first.

    Raises:
        InspectLogError: no logs, an unreadable log, a model without card or train_flop, a
            sample without usage or score, a score outside [0, 1], two logs with one cell.
        MissingExtra: inspect_ai is not installed.
    """
    from ptebench.results.table import LoadedTable, reduce_epochs, validate_table

    files = log_files(path)
    if not files:
        raise InspectLogError(f"{path}: no Inspect logs here (no .eval files) and no ptebench "
                              "run (no episodes.jsonl)")
    extra = load_cards(cards) if cards is not None else []
    logs = [(f, _read(f)) for f in files]
    labels = _distinct_labels([_scaffold(log) for _, log in logs])
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    n_err = 0
    for (f, log), label in zip(logs, labels, strict=True):
        if log.samples is None:
            raise InspectLogError(f"{f}: the log holds no samples (written with "
                                  "--no-log-samples?); CEG needs every sample's score")
        card = _card(log, f, extra, cards)
        score = _score_name(log, f, scorer)
        if log.status != "success":
            notes.append(f"{f.name}: log status {log.status!r}, {len(log.samples)} sample(s) read")
        reducer = _reducer(log, notes, f)
        # a ptebench export keeps each episode's task family in its samples: read it back
        own = META_KEY in (log.eval.metadata or {})
        for s in log.samples:
            where = f"{f}: sample {s.id!r} epoch {s.epoch}"
            if s.error is not None:
                n_err += 1
                continue
            value = _sample_score(s, score, where) if score is not None else None
            if value is None and s.limit is None:
                raise InspectLogError(f"{where}: no score{f' {score!r}' if score else ''}; "
                                      "score the log first (inspect score)")
            usage, cost = _usage(s, log.eval.model, where)
            rows.append({
                "family": card.family or card.name, "model": log.eval.model,
                "train_flop": card.train_flop,
                "train_flop_sigma_log10": card.train_flop_sigma_log10, "scaffold": label,
                "task_family": str(s.metadata.get("task_family", log.eval.task)) if own
                else log.eval.task,
                "task_id": str(s.id) if own else f"{log.eval.task}/{s.id}",
                "epoch": s.epoch, "score": 0.0 if value is None else value,
                "inference_flop": accounting.flops_epoch(card, usage),
                "cost_usd": cost if cost is not None else accounting.cost_usd(card, usage),
                "simulated": card.simulated, "_file": str(f), "_reducer": reducer,
            })
        if score is not None and scorer is None and log.results and len(log.results.scores) > 1:
            notes.append(f"{f.name}: scored by {score!r} (first of "
                         f"{[x.name for x in log.results.scores]}; choose with --scorer)")
    if not rows:
        raise InspectLogError(f"{path}: no scored samples in {len(files)} log(s) "
                              f"({n_err} errored)")
    df = pd.DataFrame(rows)
    dup = df.duplicated(["model", "scaffold", "task_id", "epoch"], keep=False)
    if dup.any():
        cell = df.loc[dup].iloc[0]
        both = sorted(set(df.loc[dup & (df["model"] == cell["model"])
                                 & (df["scaffold"] == cell["scaffold"]), "_file"]))
        raise InspectLogError(f"logs {both} both hold model {cell['model']!r}, scaffold "
                              f"{cell['scaffold']!r}, sample {cell['task_id']!r} epoch "
                              f"{cell['epoch']}: keep one of them (a retried eval?)")
    reducers = df.pop("_reducer").to_numpy()
    df = reduce_epochs(df.drop(columns="_file"), reducers)
    return LoadedTable(validate_table(df, str(path)), str(path), n_err, notes)


# -- out: a ptebench run -> Inspect logs ---------------------------------------------------------
def _inspect_model(model: str, manifest: RunManifest | None) -> str:
    """Inspect names models ``provider/name``; a ptebench id without a slash gets its provider."""
    if "/" in model:
        return model
    entry = next((m for m in (manifest.models if manifest else []) if m.id == model), None)
    return f"{entry.provider}/{model}" if entry else f"ptebench/{model}"


def _card_of(model: str, manifest: RunManifest | None, ep: Episode) -> dict[str, Any]:
    entry = next((m for m in (manifest.models if manifest else []) if m.id == model), None)
    card = default_catalog().get(model)
    if card is None:
        card = ModelCard(name=model, provider=entry.provider if entry else "openai",
                         model=entry.model if entry else model, family=ep.model_family,
                         params_active=entry.params_active if entry else None,
                         train_flop=ep.train_flop, simulated=ep.simulated)
    return card.model_copy(update={"name": _inspect_model(model, manifest)}).model_dump(mode="json")


def _chat(m: Message, model: str) -> ChatMessage:
    """A ptebench chat message as Inspect's (tool-call arguments parsed from their JSON text)."""
    from inspect_ai.model import (
        ChatMessageAssistant,
        ChatMessageSystem,
        ChatMessageTool,
        ChatMessageUser,
    )

    if m.role == "system":
        return ChatMessageSystem(content=m.content)
    if m.role == "user":
        return ChatMessageUser(content=m.content)
    if m.role == "tool":
        return ChatMessageTool(content=m.content, tool_call_id=m.tool_call_id)
    return ChatMessageAssistant(content=m.content, tool_calls=_tool_calls(m.tool_calls) or None,
                                model=model, source="generate")


def _tool_calls(calls: list[ToolCall]) -> list[Any]:
    from inspect_ai.tool import ToolCall as InspectToolCall

    out: list[Any] = []
    for c in calls:
        try:
            args = json.loads(c.arguments)
            error = None if isinstance(args, dict) else "arguments are not a JSON object"
        except json.JSONDecodeError as e:
            args, error = None, f"malformed JSON arguments: {e}"
        out.append(InspectToolCall(id=c.id, function=c.name, parse_error=error,
                                   arguments=args if isinstance(args, dict) else {"raw": c.arguments}))
    return out


def _transcript_messages(t: Transcript, model: str) -> list[ChatMessage] | None:
    """The conversation of the episode's last answered call: what it was sent, what the model
    said (first choice), then what any later actions showed. None when no call was answered."""
    from inspect_ai.model import ChatMessageAssistant, ChatMessageTool, ChatMessageUser

    answered = [c for c in t.calls if c.error is None and c.choices]
    if not answered:
        return None
    last = answered[-1]
    out: list[ChatMessage]
    if last.message_ids:
        out = [_chat(m, model) for m in t.call_messages(last.index)]
    else:  # a text-completion call: the exact prompt sent
        out = [ChatMessageUser(content=t.prompt_sent(last.index) or "")]
    choice = last.choices[0]
    out.append(ChatMessageAssistant(content=choice.text, model=model, source="generate",
                                    tool_calls=_tool_calls(choice.tool_calls) or None))
    for a in t.actions:
        if a.seq > last.seq and a.tool is not None:
            out.append(ChatMessageTool(content=a.shown, function=a.tool))
    return out


def _events(t: Transcript, model: str, started: str) -> list[Any]:
    """Every model call as a ModelEvent (what it was sent, every choice, usage) and every
    action as a ToolEvent (input, shown output), in the order they happened: the Transcript
    tab of Inspect View, for scaffolds whose calls are not one linear conversation."""
    import datetime as dt

    from inspect_ai.event import ModelEvent, ToolEvent
    from inspect_ai.model import (
        ChatCompletionChoice,
        ChatMessageAssistant,
        ChatMessageUser,
        GenerateConfig,
        ModelOutput,
    )
    from inspect_ai.tool import ToolInfo, ToolParams

    try:
        t0 = dt.datetime.fromisoformat(started)
    except ValueError:
        t0 = dt.datetime.now(dt.UTC)

    def params(schema: dict[str, Any]) -> ToolParams:
        try:
            return ToolParams.model_validate(schema)
        except ValueError:
            return ToolParams()

    events: list[tuple[int, Any]] = []
    for c in t.calls:
        sent: list[ChatMessage] = ([_chat(m, model) for m in t.call_messages(c.index)]
                                   if c.message_ids else
                                   [ChatMessageUser(content=t.prompt_sent(c.index) or "")])
        tools = [ToolInfo(name=x.name, description=x.description, parameters=params(x.parameters))
                 for x in (t.tool_sets[c.tools_id] if c.tools_id is not None else [])]
        choices = [ChatCompletionChoice(
            message=ChatMessageAssistant(content=ch.text, model=model, source="generate",
                                         tool_calls=_tool_calls(ch.tool_calls) or None),
            stop_reason=_STOP.get(ch.finish_reason or "", "unknown")) for ch in c.choices]
        events.append((c.seq, ModelEvent(
            model=model, input=sent, tools=tools, tool_choice="auto",
            config=GenerateConfig(temperature=c.temperature, max_tokens=c.max_tokens,
                                  stop_seqs=list(c.stop) or None, num_choices=c.n, seed=c.seed),
            output=ModelOutput(model=c.model or model, choices=choices,
                               usage=_inspect_usage(c.usage, None), error=c.error),
            error=c.error, retries=c.retries or None, cache="read" if c.cache_hit else None,
            timestamp=t0 + dt.timedelta(seconds=c.t_start), working_start=c.t_start,
            metadata={"role": c.role, "call_index": c.index})))
    for a in t.actions:
        if a.tool is None:
            continue
        events.append((a.seq, ToolEvent(
            id=f"action{a.seq}", function=a.tool, arguments={"input": a.input or ""},
            result=a.shown, timestamp=t0 + dt.timedelta(seconds=a.t_start),
            working_start=a.t_start, working_time=a.duration_s,
            metadata={"step": a.step, "exit_code": a.exit_code, "timed_out": a.timed_out,
                      "stdout_bytes": a.stdout_bytes, "stderr_bytes": a.stderr_bytes,
                      "truncated": a.truncated, "branch": a.branch})))
    return [e for _, e in sorted(events, key=lambda x: x[0])]


_STOP: dict[str, Any] = {"stop": "stop", "length": "max_tokens", "tool_calls": "tool_calls",
         "content_filter": "content_filter", "max_tokens": "max_tokens", "end_turn": "stop",
         "tool_use": "tool_calls", "stop_sequence": "stop"}
"""Providers' finish reasons as Inspect's stop reasons."""


def _step_messages(ep: Episode) -> list[ChatMessage]:
    """The conversation rebuilt from the episode's steps (runs recorded before transcripts):
    each action an assistant turn with its thought and a tool call, each observation the tool's
    reply, then the submission."""
    from inspect_ai.model import ChatMessageAssistant, ChatMessageTool
    from inspect_ai.tool import ToolCall as InspectToolCall

    out: list[ChatMessage] = []
    for st in ep.steps:
        call_id = f"step{st.index}"
        calls = ([InspectToolCall(id=call_id, function=st.action.tool,
                                  arguments={"input": st.action.input})] if st.action else None)
        out.append(ChatMessageAssistant(content=st.thought or "", tool_calls=calls,
                                        model=ep.spec.model, source="generate"))
        if st.action is not None:
            out.append(ChatMessageTool(content=st.observation, tool_call_id=call_id,
                                       function=st.action.tool))
    if ep.submission is not None:
        out.append(ChatMessageAssistant(content=ep.submission, model=ep.spec.model))
    return out


def _limit(reason: str | None) -> Any:
    from inspect_ai.log import EvalSampleLimit

    m = re.match(r"^(tokens|steps|cost_usd|wall_s) limit reached.*?(?:≥ \$?|\()([0-9.eE+]+)",
                 reason or "")
    if m is None:
        return None
    kind = {"tokens": "token", "steps": "custom", "cost_usd": "cost", "wall_s": "time"}[m[1]]
    return EvalSampleLimit(type=kind, limit=float(m[2].rstrip(".")))  # pyright: ignore[reportArgumentType]


def _usage_of(ep: Episode, cost: float | None) -> Any:
    u = Usage()
    for c in ep.calls:
        u = u + c.usage
    return _inspect_usage(u, cost)


def _inspect_usage(u: Usage, cost: float | None) -> Any:
    from inspect_ai.model import ModelUsage

    return ModelUsage(
        # Inspect's input_tokens exclude the cached prefix and cache writes
        input_tokens=max(u.prompt_tokens - u.cached_prompt_tokens - u.cache_write_prompt_tokens, 0),
        output_tokens=u.completion_tokens, total_tokens=u.total_tokens,
        input_tokens_cache_read=u.cached_prompt_tokens or None,
        input_tokens_cache_write=u.cache_write_prompt_tokens or None,
        reasoning_tokens=u.reasoning_tokens or None, total_cost=cost)


def _sample(ep: Episode, model: str, tr: Transcript | None) -> EvalSample:
    from inspect_ai.log import EvalError, EvalSample
    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import Score

    s, t = ep.spec, ep.totals
    scores = None
    if ep.score is not None and ep.score.value is not None:
        scores = {SCORE_NAME: Score(value=ep.score.value, answer=ep.submission,
                                    explanation=ep.score.explanation)}
    messages = (_transcript_messages(tr, model) if tr is not None else None) or _step_messages(ep)
    first_user = next((m.text for m in messages if m.role == "user"), None)
    return EvalSample(
        id=f"{s.task_family}/{s.task_id}", epoch=s.epoch + 1,
        input=first_user if first_user is not None else
        f"(ptebench task {s.task_family}/{s.task_id}: no prompt recorded)",
        target=(tr.expected or "") if tr is not None else "", messages=messages,
        events=_events(tr, model, ep.started_at) if tr is not None else [],
        output=ModelOutput.from_content(model=model, content=ep.submission or ""),
        scores=scores, model_usage={model: _usage_of(ep, t.cost_usd)},
        metadata={
            "episode_id": s.episode_id, "task_family": s.task_family, "task_id": s.task_id,
            "scaffold": s.scaffold, "scaffold_params": s.scaffold_params, "seed": s.seed,
            "score_reducer": s.score_reducer, "status": ep.status, "reason": ep.reason,
            "calls": t.calls, "steps": t.steps, "flops_epoch": t.flops_epoch,
            "flops_physical": t.flops_physical, "cost_usd": t.cost_usd, "model_s": t.model_s,
            "sandbox_s": t.sandbox_s, "sandbox": ep.sandbox, "simulated": ep.simulated,
            "oracle_feedback": ep.oracle_feedback, "oracle_calls": ep.oracle_calls,
            "metrics": ep.metrics,
        },
        started_at=ep.started_at or None, completed_at=ep.finished_at or None,
        total_time=t.wall_s, working_time=t.model_s + t.sandbox_s, uuid=s.episode_id,
        error=(EvalError(message=ep.reason or "error",
                         traceback=(tr.traceback or "") if tr is not None else "",
                         traceback_ansi=(tr.traceback or "") if tr is not None else "")
               if ep.status == "error" else None),
        limit=_limit(ep.reason) if ep.status == "limit" else None,
    )


_STATUS = {"finished": "success", "running": "started", "interrupted": "cancelled",
           "failed": "cancelled"}


def _log(run: Path, manifest: RunManifest | None, eps: list[Episode],
         transcripts: dict[str, Transcript]) -> EvalLog:
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalLog,
        EvalMetric,
        EvalPlan,
        EvalPlanStep,
        EvalResults,
        EvalScore,
        EvalSpec,
        EvalStats,
    )

    from ptebench import __version__

    first = eps[0]
    model = _inspect_model(first.spec.model, manifest)
    from inspect_ai.log import condense_sample

    # condensing stores each repeated message text once (as an attachment), as Inspect does
    samples = [condense_sample(_sample(e, model, transcripts.get(e.spec.episode_id)))
               for e in eps]
    values = [float(x.scores[SCORE_NAME].as_float()) for x in samples if x.scores]
    n = len(values)
    mean = sum(values) / n if n else 0.0
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    reducers = {e.spec.score_reducer for e in eps}
    task = manifest.name if manifest else run.name
    key = f"{first.run_id}|{first.spec.model}|{first.spec.scaffold_label}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:22]
    started = min((e.started_at for e in eps if e.started_at), default="")
    finished = max((e.finished_at for e in eps if e.finished_at), default="")
    total = samples[0].model_usage[model]
    for x in samples[1:]:
        total = total + x.model_usage[model]
    ids = sorted({str(x.id) for x in samples})
    return EvalLog(
        status=_STATUS[manifest.status] if manifest else "success",  # pyright: ignore[reportArgumentType]
        eval=EvalSpec(
            eval_id=digest, run_id=first.run_id, created=started or (manifest.started_at if manifest else ""),
            task=task, task_id=digest, solver=first.spec.scaffold_label,
            solver_args=dict(first.spec.scaffold_params),
            dataset=EvalDataset(name=",".join(sorted({e.spec.task_family for e in eps})),
                                samples=len(ids), sample_ids=ids),
            model=model,
            config=EvalConfig(epochs=max(e.spec.epoch for e in eps) + 1,
                              epochs_reducer=sorted(reducers) if reducers != {"mean"} else None),
            packages={"ptebench": __version__},
            metadata={META_KEY: {"run": str(run), "run_id": first.run_id,
                                 "model": first.spec.model,
                                 "scaffold": first.spec.scaffold,
                                 "card": _card_of(first.spec.model, manifest, first)}},
        ),
        plan=EvalPlan(steps=[EvalPlanStep(solver=first.spec.scaffold,
                                          params=dict(first.spec.scaffold_params))]),
        results=EvalResults(
            total_samples=len(samples), completed_samples=n,
            scores=[EvalScore(name=SCORE_NAME, scorer=SCORE_NAME, scored_samples=n,
                              unscored_samples=len(samples) - n,
                              metrics={"mean": EvalMetric(name="mean", value=mean),
                                       "stderr": EvalMetric(name="stderr",
                                                            value=sd / math.sqrt(n) if n else 0.0)})],
        ),
        stats=EvalStats(started_at=started, completed_at=finished, model_usage={model: total}),
        samples=samples,
    )


def _transcripts(run: Path) -> dict[str, Transcript]:
    """episode id → transcript; empty for a run recorded before transcripts (the messages
    are then rebuilt from the steps)."""
    from ptebench.results.transcript import TRANSCRIPTS, iter_transcripts

    if not run.is_dir() or not (run / TRANSCRIPTS).exists():
        return {}
    return {t.episode_id: t for t in iter_transcripts(run)}


def export_run(run: Path, out: Path) -> list[Path]:
    """Write one Inspect ``.eval`` log per model × scaffold of a ptebench run into ``out``
    (file names as Inspect's own: ``<created>_<task>_<id>.eval``; a re-export overwrites).

    Returns:
        The paths written, sorted.

    Raises:
        UserError: no run at ``run`` (or a record that does not validate).
        MissingExtra: inspect_ai is not installed.
    """
    _require()
    from inspect_ai.log import write_eval_log

    from ptebench.results.store import RunStore, load_episodes

    episodes = load_episodes(run)
    if not episodes:
        raise UserError(f"{run}: the run has no finished episodes to export")
    manifest = RunStore(Path(run)).read_manifest() if Path(run).is_dir() else None
    cells: dict[tuple[str, str], list[Episode]] = defaultdict(list)
    for e in episodes:
        cells[(e.spec.model, e.spec.scaffold_label)].append(e)
    transcripts = _transcripts(Path(run))
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for eps in cells.values():
        log = _log(Path(run), manifest, eps, transcripts)
        stamp = re.sub(r"[^0-9A-Za-z+-]", "-", log.eval.created)
        task = re.sub(r"[^0-9A-Za-z-]", "-", log.eval.task)
        path = out / f"{stamp}_{task}_{log.eval.task_id}.eval"
        write_eval_log(log, str(path), format="eval")
        written.append(path)
    return sorted(written)
