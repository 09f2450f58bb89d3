"""The transcript of one episode: what the model was sent and said, what ran and came back.

Recorded at the two places where everything is metered — ``MeteredModel.generate`` (every
model call, failed ones included) and the scaffold ``Environment`` (every sandbox action) —
into the episode's ``Trace``; the runner adds the end of the episode (submission, the
scorer's explanation, the expected value, the traceback of an exception that ended it) and
the results store writes it beside ``episodes.jsonl`` (``ptebench.results.transcript``).

Scaffolds resend growing histories, so nothing is stored twice:

* ``messages`` is the episode's pool of distinct chat messages; a call lists the ids of the
  messages it sent (``message_ids``), so a 30-turn history costs 30 messages, not 465;
* ``tool_sets`` is the pool of distinct tool-spec lists, referenced by ``tools_id``;
* ``prompts`` holds text prompts (a raw-prompt call's ``prompt``, the exact string a
  completion-mode provider sent) delta-encoded: an entry keeps ``keep`` characters of an
  earlier entry ``base`` and appends ``tail``.

``calls[i]`` is the transcript of ``Episode.calls[i]`` (``ModelCall.index == i``);
``actions[j].step`` is the index of its ``Step`` in ``Episode.steps``; ``seq`` orders calls
and actions on one timeline. Use ``request(i)``, ``response(i)`` and ``prompt_sent(i)`` to
get a call back in the Model protocol's own types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from ptebench.models.base import (
    Choice,
    GenerateRequest,
    GenerateResponse,
    Message,
    ToolSpec,
)
from ptebench.records import Record, Score, Step, Usage

TRANSCRIPT_VERSION = 1
"""Version of the stored transcript format (bump on any breaking change)."""


class PromptDelta(Record):
    """A text prompt as ``prompts[base].text[:keep] + tail`` (base None: just ``tail``)."""

    base: int | None = None
    keep: int = 0
    tail: str = ""


class TranscriptCall(Record):
    """One model call: the request as sent and the response as received."""

    index: int
    """Position of the call in the episode (= its ModelCall's position and ``index``)."""
    seq: int
    """Position among the episode's calls and actions, in the order they happened."""
    t_start: float = 0.0
    """Seconds since the episode started, when the call was made."""
    role: str
    message_ids: list[int] = Field(default_factory=list)
    """The chat messages sent, as ids into ``Transcript.messages``."""
    prompt_id: int | None = None
    """A raw text-completion request's ``prompt``, as an id into ``Transcript.prompts``."""
    sent_prompt_id: int | None = None
    """The exact prompt string a completion-mode provider sent (built from the messages), an
    id into ``Transcript.prompts``; None for chat calls and when it equals ``prompt``."""
    tools_id: int | None = None
    """The tools offered, as an id into ``Transcript.tool_sets``."""
    n: int = 1
    temperature: float = 0.0
    max_tokens: int | None = None
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    cue: str | None = None
    """The text a completion-mode prompt ends with to start the model's turn (e.g. Thought:)."""
    choices: list[Choice] = Field(default_factory=list)
    """Every sample: its text, tool calls (raw argument text) and finish reason."""
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    """The provider's name for the model that answered."""
    retries: int = 0
    cache_hit: bool = False
    error: str | None = None
    """Why the call failed (then no choices)."""


class TranscriptAction(Record):
    """One environment step: an action run in the sandbox (or a step that ran nothing)."""

    seq: int
    step: int
    """Index of the Step in ``Episode.steps``."""
    t_start: float = 0.0
    duration_s: float = 0.0
    branch: str = ""
    tool: str | None = None
    """bash, python, ...; None for a step that ran nothing (e.g. an unparseable reply)."""
    input: str | None = None
    """The command or program, in full."""
    exit_code: int | None = None
    timed_out: bool = False
    stdout_bytes: int = 0
    """Size of the whole stdout before truncation."""
    stderr_bytes: int = 0
    """Size of the whole stderr before truncation."""
    truncated: bool = False
    shown: str = ""
    """The observation exactly as the agent was shown it."""


class Transcript(Record):
    """Everything one episode said and did, stored once per episode (compressed)."""

    version: int = TRANSCRIPT_VERSION
    episode_id: str = ""
    messages: list[Message] = Field(default_factory=list)
    tool_sets: list[list[ToolSpec]] = Field(default_factory=list)
    prompts: list[PromptDelta] = Field(default_factory=list)
    calls: list[TranscriptCall] = Field(default_factory=list)
    actions: list[TranscriptAction] = Field(default_factory=list)
    submission: str | None = None
    score: Score | None = None
    """The scorer's verdict with its explanation."""
    expected: str | None = None
    """The task's reference answer, recorded once the episode is over (None if it has none)."""
    traceback: str | None = None
    """The traceback of the exception that ended the episode (status error)."""

    # -- resolved views ------------------------------------------------------------------
    def prompt(self, prompt_id: int | None) -> str | None:
        """The full text of ``prompts[prompt_id]``."""
        if prompt_id is None:
            return None
        return _resolve(self.prompts, prompt_id)

    def call_messages(self, index: int) -> list[Message]:
        """The chat messages call ``index`` sent."""
        return [self.messages[m] for m in self.calls[index].message_ids]

    def request(self, index: int) -> GenerateRequest:
        """Call ``index`` as the GenerateRequest the scaffold made."""
        c = self.calls[index]
        return GenerateRequest(
            messages=self.call_messages(index), prompt=self.prompt(c.prompt_id), role=c.role,
            tools=list(self.tool_sets[c.tools_id]) if c.tools_id is not None else [],
            n=c.n, temperature=c.temperature, max_tokens=c.max_tokens, stop=list(c.stop),
            seed=c.seed, cue=c.cue,
        )

    def response(self, index: int) -> GenerateResponse | None:
        """Call ``index``'s response (None when the call failed: see ``calls[index].error``)."""
        c = self.calls[index]
        if c.error is not None:
            return None
        return GenerateResponse(choices=list(c.choices), usage=c.usage, model=c.model,
                                retries=c.retries, cache_hit=c.cache_hit,
                                prompt_sent=self.prompt(c.sent_prompt_id))

    def prompt_sent(self, index: int) -> str | None:
        """The exact text prompt call ``index`` sent (raw prompt or completion-mode rendering)."""
        c = self.calls[index]
        return self.prompt(c.sent_prompt_id if c.sent_prompt_id is not None else c.prompt_id)


def _resolve(prompts: list[PromptDelta], prompt_id: int) -> str:
    chain: list[PromptDelta] = []
    i: int | None = prompt_id
    while i is not None:
        chain.append(prompts[i])
        i = prompts[i].base
    text = ""
    for d in reversed(chain):
        text = text[: d.keep] + d.tail if d.base is not None else d.tail
    return text


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix of a and b (binary search on slices)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


PROMPT_BASES = 8
"""How many recent prompts a new prompt is delta-encoded against (tree search branches)."""


@dataclass
class TranscriptRecorder:
    """Builds one episode's Transcript as calls and actions happen (interning as it goes)."""

    transcript: Transcript = field(default_factory=Transcript)
    _seq: int = 0
    _msg_ids: dict[tuple[object, ...], int] = field(default_factory=dict)
    _tool_ids: dict[str, int] = field(default_factory=dict)
    _texts: list[tuple[int, str]] = field(default_factory=list)
    """(prompt id, full text) of the most recent prompts, for delta encoding."""

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq - 1

    def _message_id(self, m: Message) -> int:
        key = (m.role, m.content, m.tool_call_id,
               tuple((tc.id, tc.name, tc.arguments) for tc in m.tool_calls))
        got = self._msg_ids.get(key)
        if got is None:
            got = len(self.transcript.messages)
            self.transcript.messages.append(m.model_copy())
            self._msg_ids[key] = got
        return got

    def _tools_id(self, tools: list[ToolSpec]) -> int | None:
        if not tools:
            return None
        key = "\x00".join(t.model_dump_json() for t in tools)
        got = self._tool_ids.get(key)
        if got is None:
            got = len(self.transcript.tool_sets)
            self.transcript.tool_sets.append([t.model_copy() for t in tools])
            self._tool_ids[key] = got
        return got

    def _prompt_id(self, text: str | None) -> int | None:
        if text is None:
            return None
        best: tuple[int, int] | None = None  # (keep, base id)
        for pid, prev in self._texts:
            if prev == text:
                return pid
            keep = _common_prefix(prev, text)
            if keep > 0 and (best is None or keep > best[0]):
                best = (keep, pid)
        prompts = self.transcript.prompts
        if best is not None and best[0] >= 64:
            prompts.append(PromptDelta(base=best[1], keep=best[0], tail=text[best[0]:]))
        else:
            prompts.append(PromptDelta(tail=text))
        pid = len(prompts) - 1
        self._texts.append((pid, text))
        del self._texts[:-PROMPT_BASES]
        return pid

    def call(self, index: int, request: GenerateRequest, response: GenerateResponse | None,
             t_start: float, error: str | None = None) -> None:
        """Record model call ``index`` (its response, or the error that ended it)."""
        prompt_id = self._prompt_id(request.prompt)
        sent = response.prompt_sent if response is not None else None
        sent_id = self._prompt_id(sent) if sent is not None and sent != request.prompt else None
        self.transcript.calls.append(TranscriptCall(
            index=index, seq=self._next_seq(), t_start=t_start, role=request.role,
            message_ids=[self._message_id(m) for m in request.messages] if request.prompt is None else [],
            prompt_id=prompt_id, sent_prompt_id=sent_id, tools_id=self._tools_id(request.tools),
            n=request.n, temperature=request.temperature, max_tokens=request.max_tokens,
            stop=list(request.stop), seed=request.seed, cue=request.cue,
            choices=list(response.choices) if response is not None else [],
            usage=response.usage if response is not None else Usage(),
            model=response.model if response is not None else "",
            retries=response.retries if response is not None else 0,
            cache_hit=response.cache_hit if response is not None else False,
            error=error,
        ))

    def action(self, step: Step, stdout_bytes: int = 0, stderr_bytes: int = 0) -> None:
        """Record an environment step (after it ran)."""
        a = step.action
        self.transcript.actions.append(TranscriptAction(
            seq=self._next_seq(), step=step.index, t_start=step.t_start,
            duration_s=step.duration_s, branch=step.branch,
            tool=a.tool if a is not None else None, input=a.input if a is not None else None,
            exit_code=step.exit_code, timed_out=step.timed_out, stdout_bytes=stdout_bytes,
            stderr_bytes=stderr_bytes, truncated=step.truncated, shown=step.observation,
        ))

    def finish(self, episode_id: str, submission: str | None, score: Score | None,
               expected: str | None, traceback: str | None) -> Transcript:
        """The episode's transcript, completed with how it ended."""
        t = self.transcript
        t.episode_id, t.submission, t.score = episode_id, submission, score
        t.expected, t.traceback = expected, traceback
        return t
