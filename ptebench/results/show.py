"""Reading one episode: its whole conversation, turn by turn (``ptebench show``).

``render_markdown`` is the one renderer: the terminal view is the same document drawn by
rich (the system prompt elided), ``--format markdown`` writes it with the system prompt in a
collapsible ``<details>`` block, and the HTML report embeds it. ``--format json`` gives the
episode record and its stored transcript.

A call shows only the messages it added to the history (earlier ones were shown with the
call that first sent them), then its parameters, the exact prompt string of a
completion-mode call (as the part added to an earlier call's prompt), every choice and its
tokens, FLOPs, cost and latency. An action shows what ran, its exit status, its full size
before truncation and what the agent was shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from ptebench.errors import UserError
from ptebench.models.base import Message
from ptebench.models.transcript import Transcript, TranscriptAction, TranscriptCall
from ptebench.records import Episode, ModelCall

SYSTEM_LINES = 4
"""Lines of a system prompt shown when it is elided."""


def _fence(text: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text.rstrip(chr(10))}\n{ticks}"


def _si(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _cost(x: float | None) -> str:
    return "n/a" if x is None else f"${x:.5f}"


def task_label(e: Episode) -> str:
    return f"{e.spec.task_family}/{e.spec.task_id}"


def one_line_reason(e: Episode) -> str:
    """Why an episode did not pass, in one line."""
    if e.status != "ok" and e.reason:
        return f"{e.status}: {e.reason.splitlines()[0] if e.reason.strip() else e.reason}"
    if e.score is None:
        return "not scored"
    if e.submission is None:
        return "no submission"
    expl = e.score.explanation.strip().splitlines()
    return f"score {e.score.value:g}: {expl[0]}" if expl else f"score {e.score.value}"


def passed(e: Episode) -> bool:
    return e.status == "ok" and e.score is not None and e.score.value is not None and e.score.value >= 1.0


def _message_md(m: Message, collapsible: bool, full: bool) -> str:
    head = f"**{m.role}**" + (f" (tool call {m.tool_call_id})" if m.tool_call_id else "")
    body = _fence(m.content) if m.content else "*(empty)*"
    calls = "".join(f"\n\ntool call `{tc.name}` {tc.id}: {_fence(tc.arguments, 'json')}"
                    for tc in m.tool_calls)
    if m.role == "system" and not full:
        lines = m.content.splitlines()
        if collapsible:
            return (f"<details><summary><b>{m.role}</b>: system prompt ({len(lines)} lines, "
                    f"{len(m.content)} chars)</summary>\n\n{body}\n\n</details>")
        if len(lines) > SYSTEM_LINES:
            shown = "\n".join(lines[:SYSTEM_LINES])
            return (f"{head} ({len(lines)} lines; {len(lines) - SYSTEM_LINES} more elided, "
                    f"`--full` shows them)\n\n{_fence(shown)}")
    return f"{head}\n\n{body}{calls}"


def _call_header(c: TranscriptCall, mc: ModelCall | None) -> str:
    u = c.usage
    bits = [f"{u.prompt_tokens:,} prompt + {u.completion_tokens:,} completion tokens"]
    if u.cached_prompt_tokens:
        bits.append(f"{u.cached_prompt_tokens:,} cached")
    if mc is not None:
        bits += [f"{_si(mc.flops_epoch)} FLOP", _cost(mc.cost_usd), f"{mc.latency_s:.2f}s"]
        if mc.retries:
            bits.append(f"{mc.retries} retries")
    if c.cache_hit:
        bits.append("cache hit")
    return f"### call {c.index} · {c.role} · " + " · ".join(bits)


def _params(c: TranscriptCall, t: Transcript) -> str:
    p = [f"temperature {c.temperature:g}", f"n {c.n}"]
    if c.max_tokens is not None:
        p.append(f"max_tokens {c.max_tokens}")
    if c.stop:
        p.append("stop " + ", ".join(json.dumps(s) for s in c.stop))
    if c.seed is not None:
        p.append(f"seed {c.seed}")
    if c.cue:
        p.append(f"cue {json.dumps(c.cue)}")
    if c.tools_id is not None:
        p.append("tools " + ", ".join(ts.name for ts in t.tool_sets[c.tools_id]))
    return "*" + " · ".join(p) + "*"


def _prompt_md(t: Transcript, c: TranscriptCall, label: str, pid: int, full: bool) -> str:
    d = t.prompts[pid]
    text = t.prompt(pid) or ""
    if d.base is not None and not full:
        src = next((x.index for x in t.calls if pid_of(x) == d.base), None)
        where = f"call {src}'s prompt" if src is not None else "an earlier prompt"
        return (f"{label} ({len(text):,} chars; the first {d.keep:,} are {where}, then):"
                f"\n\n{_fence(d.tail)}")
    return f"{label} ({len(text):,} chars):\n\n{_fence(text)}"


def pid_of(c: TranscriptCall) -> int | None:
    return c.sent_prompt_id if c.sent_prompt_id is not None else c.prompt_id


def _call_md(t: Transcript, c: TranscriptCall, mc: ModelCall | None, shown: set[int],
             collapsible: bool, full: bool) -> list[str]:
    out = [_call_header(c, mc), _params(c, t)]
    new = [i for i in c.message_ids if i not in shown]
    if c.message_ids:
        kept = len(c.message_ids) - len(new)
        out.append(f"sent {len(c.message_ids)} messages" +
                   (f" ({kept} shown above, {len(new)} new):" if kept else ":"))
    for i in new:
        shown.add(i)
        out.append(_message_md(t.messages[i], collapsible, full))
    if c.prompt_id is not None:
        out.append(_prompt_md(t, c, "**raw prompt**", c.prompt_id, full))
    if c.sent_prompt_id is not None:
        out.append(_prompt_md(t, c, "**exact prompt sent** (completion mode)", c.sent_prompt_id, full))
    if c.error is not None:
        out.append(f"**call failed**: {c.error}")
    for k, ch in enumerate(c.choices):
        tag = "**reply**" if len(c.choices) == 1 else f"**reply {k + 1}/{len(c.choices)}**"
        if ch.reasoning:
            out.append(f"{tag} thinking:\n\n" + _fence(ch.reasoning))
        out.append(f"{tag} (finish: {ch.finish_reason or 'n/a'})\n\n"
                   + (_fence(ch.text) if ch.text else "*(no text)*"))
        for tc in ch.tool_calls:
            out.append(f"tool call `{tc.name}` {tc.id}:\n\n{_fence(tc.arguments, 'json')}")
    return out


def _action_md(a: TranscriptAction) -> list[str]:
    where = f" · branch {a.branch}" if a.branch else ""
    if a.tool is None:
        return [f"### step {a.step}: nothing ran{where}", _fence(a.shown)]
    lang = "python" if a.tool == "python" else "bash" if a.tool == "bash" else ""
    size = a.stdout_bytes + a.stderr_bytes
    status = ("timed out" if a.timed_out else f"exit {a.exit_code}") if a.exit_code is not None or a.timed_out else "no exit code"
    return [
        f"### step {a.step}: {a.tool}{where} · {status} · {size:,} bytes of output"
        f" ({a.stdout_bytes:,} stdout, {a.stderr_bytes:,} stderr)"
        f"{', truncated' if a.truncated else ''} · {a.duration_s:.2f}s",
        _fence(a.input or "", lang),
        "shown to the agent:\n\n" + _fence(a.shown),
    ]


def render_markdown(e: Episode, t: Transcript, collapsible: bool = True, full: bool = False) -> str:
    """The episode as one markdown document, turn by turn."""
    s, tot = e.spec, e.totals
    head = [
        f"# episode {s.episode_id}",
        f"model **{s.model}** · scaffold **{s.scaffold_label}** · task **{task_label(e)}** · "
        f"epoch {s.epoch} · seed {s.seed}" + (" · SIMULATED model" if e.simulated else ""),
        f"status **{e.status}**" + (f" ({e.reason})" if e.reason else "")
        + f" · score **{_score(e)}** · {tot.calls} calls · {tot.steps} steps · "
        f"{tot.prompt_tokens + tot.completion_tokens:,} tokens · {_si(tot.flops_epoch)} FLOP · "
        f"{_cost(tot.cost_usd)} · {tot.wall_s:.1f}s",
    ]
    calls = {c.index: c for c in e.calls if c.index is not None}
    events: list[tuple[int, TranscriptCall | TranscriptAction]] = []
    events += [(c.seq, c) for c in t.calls]
    events += [(a.seq, a) for a in t.actions]
    shown: set[int] = set()
    body: list[str] = []
    for _, ev in sorted(events, key=lambda x: x[0]):
        if isinstance(ev, TranscriptCall):
            mc = calls.get(ev.index) or (e.calls[ev.index] if ev.index < len(e.calls) else None)
            body += _call_md(t, ev, mc, shown, collapsible, full)
        else:
            body += _action_md(ev)
    end = ["## outcome",
           "**submission**\n\n" + (_fence(t.submission) if t.submission is not None else "*(none)*")]
    if t.score is not None:
        end.append(f"**score {_score(e)}**: {t.score.explanation or '(no explanation)'}")
    if t.expected is not None:
        end.append("**expected**\n\n" + _fence(t.expected))
    if e.reason:
        end.append(f"**{e.status}**: {e.reason}")
    if t.traceback:
        end.append("**traceback**\n\n" + _fence(t.traceback, "pytb"))
    return "\n\n".join(head + ["## conversation"] + body + end) + "\n"


def _score(e: Episode) -> str:
    if e.score is None or e.score.value is None:
        return "n/a"
    return f"{e.score.value:g}"


def to_json(e: Episode, t: Transcript) -> str:
    return json.dumps({"episode": e.model_dump(mode="json"),
                       "transcript": t.model_dump(mode="json")}, indent=2)


def select(episodes: list[Episode], episode_id: str | None = None, model: str | None = None,
           scaffold: str | None = None, task: str | None = None,
           epoch: int | None = None) -> list[Episode]:
    """Episodes matching an id (or a unique prefix of one) and the given fields."""
    out = episodes
    if episode_id:
        exact = [e for e in out if e.spec.episode_id == episode_id]
        out = exact or [e for e in out if e.spec.episode_id.startswith(episode_id)]
    if model is not None:
        out = [e for e in out if e.spec.model == model]
    if scaffold is not None:
        out = [e for e in out if scaffold in (e.spec.scaffold_label, e.spec.scaffold)]
    if task is not None:
        out = [e for e in out if task in (e.spec.task_id, task_label(e))]
    if epoch is not None:
        out = [e for e in out if e.spec.epoch == epoch]
    return out


@dataclass
class FailGroup:
    reason: str
    episodes: list[Episode]


def failed_groups(episodes: Iterable[Episode]) -> list[FailGroup]:
    """Failing episodes grouped by their one-line reason, the largest group first."""
    groups: dict[str, list[Episode]] = {}
    for e in episodes:
        if not passed(e):
            groups.setdefault(one_line_reason(e), []).append(e)
    return sorted((FailGroup(r, g) for r, g in groups.items()),
                  key=lambda g: (-len(g.episodes), g.reason))


def check_selection(found: list[Episode], where: str, episode_id: str | None) -> None:
    if not found:
        what = f"episode {episode_id!r}" if episode_id else "episode matching the selection"
        raise UserError(f"{where}: no {what} (`ptebench show RUN` lists the episodes)")
