"""The simulated model family: a known capability law, for validating the pipeline.

**It is not a language model and its numbers are never results.** It exists so that the
whole pipeline — scaffolds, sandboxes, runner, accounting, CEG estimation — can be run and
checked end to end against a known truth, with no GPU and no API key. Every episode it plays
is marked ``simulated`` and every report labels it.

The law
-------
Each sim model has a training compute C (sim/1e20 … sim/1e24). Its competence at one
*decision* of difficulty d (in logits; 0 = average) is

    p(C, d) = σ(α · (log10 C − c0) − d),   α = 1.0 per order of magnitude, c0 = 22.

A decision is the final answer, one tool action, one intermediate step, one judgment. The
task instance's hidden ``Reference`` supplies the correct answer, the solving actions /
steps and their difficulties (``difficulty`` for the final answer, ``action_difficulty`` for
each action or step). The **decomposition rule** is what makes scaffolds matter: once all the
reference steps or actions are visible in the transcript (the model reasoned step by step,
or ran the tool and saw the result), the final answer costs only ``action_difficulty``;
otherwise it costs the full ``difficulty``. Hence a one-shot answer succeeds with
p(C, d_answer), a tool-using agent with roughly p(C, d_action)^k but with retries, and
best-of-n with a perfect selector with 1 − (1 − p)^n — closed forms the tests check.

The hidden channel
------------------
The reference reaches the model only through ``bind(EpisodeBinding)``, called by the runner
with the instance's hidden part; a scaffold holds the ``MeteredModel`` wrapper and never sees
the binding. A sim model that is not bound knows no answers (competence applies to nothing
and every answer is wrong) — scaffolds cannot make it cheat.

What it is asked (read from the messages, as a model would)
------------------------------------------------------------
The sim never reads ``request.role`` (an accounting label no real model sees). It reads the
request's instructions — the system message and the last user message — and recognises, in
this order: a vote (``Candidate N:`` blocks and a request to name the best), a request for
unit tests, for a diagnosis/reflection, for a judgment (sure/likely/impossible, or a rating
from 1 to 10), for proposals (``propose N``, "next steps"), for a ReAct step (a Thought/Action
format), else for an answer. Each kind of request gets:

* answer: optional reasoning lines, then the answer; for code, a ```python block.
* act: a thought, then an action; ``submit`` with the answer when the work is done. With no
  static answer (a per-episode secret), it submits the last line of the latest observation.
  The sim recognises its own earlier actions in the transcript in every form it writes.
* propose: one candidate per line (k lines, k from "N candidates" in the prompt, else 5).
  For step-wise puzzles whose reference steps end in ``(left: ...)`` (Game of 24), it reads
  the state the prompt names last (``Numbers:``/``Input:`` or the latest ``(left: ...)``):
  on the reference path it proposes the next reference step (with p(C, d_action)), off the
  path only wrong steps; at the goal it gives the answer at ``action_difficulty``.
* value: judges the text of the last message: ``sure``/``likely``/``impossible`` if the
  prompt names them, else a score ``N`` out of 10. Correct with p(C, d_action). For puzzle states,
  "correct" means the state lies on the reference path.
* tests: ``assert`` lines from the reference tests, each wrong with probability 1 − p.
* vote: reads ``Candidate N:`` blocks, names one.
* reflection: a short lesson text.

Output style
------------
``options: {style: varied}`` (the default) writes each reply in one of the forms real models
use, as collected in tests/data/parsing_corpus: plain ``Action: tool: input`` lines, markdown
labels (``**Action:** bash: ls``), numbered ReAct lines (``Action 2: tool[input]``), a fenced
command after a line of prose (SWE-agent style), JSON tool calls (bare, fenced, after
``Action:``), ``Action`` + ``Action Input`` (LangChain style), ``submit("X")``, ``**Answer:**``
and ``Final Answer:``, code with prose around it and a later "example usage" block, verdicts
after a line of working, scores as ``N/10``, ``N out of 10``, ``Rating: [[N]]``. It honours
stop sequences as an API does, except on one reply in ten, where an invented
``Observation:`` may follow the action. ``style: plain`` writes the canonical forms only
(``Thought:``/``Action: tool: input``, ``Answer: X``, a bare verdict or number). The style
draw uses its own random stream, so what the sim decides (right or wrong) does not depend on
the style; only how it writes it does.

Determinism: outputs are a pure function of (episode seed, episode id, the kind of request,
request text, sample index, and — only when temperature > 0 — the number of earlier calls in
the episode).

Tokens are counted as ⌈characters / 4⌉; FLOPs come from the sim cards (N = C / (6·20·N) by
Chinchilla-style sizing D = 20·N, so N = sqrt(C / 120)).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re

from ptebench.models import sim_styles as styles
from ptebench.models.base import (
    Choice,
    EpisodeBinding,
    GenerateRequest,
    GenerateResponse,
    ModelConfig,
)
from ptebench.models.catalog import ModelCard
from ptebench.records import Usage
from ptebench.registry import register

ALPHA = 1.0
"""Slope of competence in logits per order of magnitude of training compute."""
C0 = 22.0
"""log10 training compute at which an average decision (d = 0) succeeds half the time."""
SIZES: tuple[float, ...] = (1e20, 1e21, 1e22, 1e23, 1e24)
"""Training compute of the shipped sim models (catalog names sim/1e20 ... sim/1e24)."""


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def competence(train_flop: float, difficulty: float, alpha: float = ALPHA, c0: float = C0) -> float:
    """p(C, d) = σ(α·(log10 C − c0) − d): the probability one decision is right."""
    return sigmoid(alpha * (math.log10(train_flop) - c0) - difficulty)


def size_name(train_flop: float) -> str:
    return f"{train_flop:.0e}".replace("e+", "e")


def sim_cards() -> list[ModelCard]:
    """Catalog cards of the sim family: Chinchilla-sized (D = 20·N, C = 6·N·D)."""
    cards = []
    for c in SIZES:
        n = math.sqrt(c / 120.0)
        name = size_name(c)
        cards.append(
            ModelCard(
                name=f"sim/{name}",
                provider="sim",
                model=name,
                family="sim",
                params_total=n,
                params_active=n,
                train_tokens=20 * n,
                train_flop=c,
                train_flop_source="simulated family: defined, C = 6·N·D with D = 20·N",
                simulated=True,
                notes="ptebench simulated model: a pipeline check, not a language model",
            )
        )
    return cards


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().lower())


def _perturb(text: str, rng: random.Random) -> str:
    """A plausibly wrong variant: change a number, or mangle the end of the string."""
    nums = list(re.finditer(r"-?\d+", text))
    if nums:
        m = rng.choice(nums)
        delta = rng.choice([-3, -2, -1, 1, 2, 3, 7, 10])
        return text[: m.start()] + str(int(m.group()) + delta) + text[m.end() :]
    if not text:
        return "I don't know"
    return text[: max(1, len(text) - 2)] + rng.choice(["x", "q", "zz"])


def _wrong_program(program: str, rng: random.Random) -> str:
    """Plausibly wrong code: the reference with one constant or operator changed, else a stub."""
    swaps = [("<=", "<"), (">=", ">"), (" + 1", " + 2"), (" - 1", ""), ("==", "!="), (" and ", " or ")]
    rng.shuffle(swaps)
    for a, b in swaps:
        if a in program:
            return program.replace(a, b, 1)
    m = re.search(r"def (\w+)\(([^)]*)\)", program)
    if m:
        return f"def {m.group(1)}({m.group(2)}):\n    return None\n"
    return _perturb(program, rng)


class SimEpisodeModel:
    """A sim model bound to one episode's hidden reference."""

    def __init__(self, parent: SimModel, binding: EpisodeBinding | None) -> None:
        self.parent = parent
        self.binding = binding
        hidden = binding.hidden if binding else {}
        self.answer: str | None = _str_or_none(hidden.get("answer"))
        raw_actions = hidden.get("actions") or []
        self.actions: list[tuple[str, str]] = [
            (str(a.get("tool", "bash")), str(a.get("input", "")))
            for a in (raw_actions if isinstance(raw_actions, list) else [])
            if isinstance(a, dict)
        ]
        raw_steps = hidden.get("steps") or []
        self.steps: list[str] = [str(s) for s in raw_steps] if isinstance(raw_steps, list) else []
        raw_tests = hidden.get("tests") or []
        self.tests: list[str] = [str(t) for t in raw_tests] if isinstance(raw_tests, list) else []
        self.d_answer = _float(hidden.get("difficulty"), 0.0)
        self.d_action = _float(hidden.get("action_difficulty"), -1.0)
        self.known = binding is not None and (self.answer is not None or bool(self.actions))
        self.calls = 0
        self.style = styles.Style(parent.style, "")
        self.path = self._path_states()
        """Puzzle states along the reference path ([] unless the steps end in ``(left: ...)``)."""

    # -- helpers -------------------------------------------------------------------------
    def p(self, difficulty: float) -> float:
        if not self.known:
            return 0.0
        return competence(self.parent.train_flop, difficulty, self.parent.alpha, self.parent.c0)

    def _key(self, request: GenerateRequest, kind: str, sample: int) -> str:
        b = self.binding
        counter = self.calls if request.temperature > 0 else 0
        return "|".join(
            [
                str(b.seed if b else 0),
                b.episode_id if b else "",
                kind,
                hashlib.sha256(request.text().encode()).hexdigest(),
                str(sample),
                str(counter),
                self.parent.size,
            ]
        )

    def _rng(self, request: GenerateRequest, kind: str, sample: int) -> random.Random:
        return random.Random(hashlib.sha256(self._key(request, kind, sample).encode()).hexdigest())

    def _is_code(self) -> bool:
        return self.answer is not None and "def " in self.answer

    def _work_visible(self, text: str) -> bool:
        """Decomposition rule: all reference steps/actions appear in the transcript."""
        if self.actions:
            return self._actions_done(text) >= len(self.actions)
        if self.steps:
            t = _norm(text)
            return all(_norm(s) in t for s in self.steps)
        return False

    def _actions_done(self, text: str) -> int:
        """How many reference actions, in order, appear as Action lines of the transcript."""
        done, pos = 0, 0
        flat = _norm(text)
        for tool, inp in self.actions:
            hits = [
                (i, len(n))
                for n in (_norm(x) for x in _action_forms(tool, inp))
                if (i := flat.find(n, pos)) >= 0
            ]
            if not hits:
                break
            idx, size = min(hits)
            done, pos = done + 1, idx + size
        return done

    def _final_answer(self, text: str, rng: random.Random, last: str) -> str:
        d = self.d_action if self._work_visible(text) else self.d_answer
        if self.answer is None:
            # Per-episode secret: the answer is whatever the last observation revealed.
            lines = [ln.strip() for ln in last.strip().splitlines() if ln.strip()]
            seen = re.sub(r"^observation\s*\d*\s*:\s*", "", lines[-1], flags=re.I) if lines else ""
            return seen if rng.random() < self.p(self.d_action) else _perturb(seen, rng)
        if rng.random() < self.p(d):
            return self.answer
        return _wrong_program(self.answer, rng) if self._is_code() else _perturb(self.answer, rng)

    # -- roles ---------------------------------------------------------------------------
    def _answer(self, request: GenerateRequest, rng: random.Random) -> str:
        text = request.text()
        reasoning: list[str] = []
        if re.search(r"step[- ]by[- ]step|reason|think", text, re.I) and self.steps:
            for s in self.steps:
                ok = rng.random() < self.p(self.d_action)
                reasoning.append(s if ok else _perturb(s, rng))
        answer = self._final_answer(text + "\n" + "\n".join(reasoning), rng, _last(request))
        if self._is_code():
            return styles.code_reply(reasoning, answer, self.style)
        return styles.answer_reply(reasoning, answer, self.style)

    def _act(self, request: GenerateRequest, rng: random.Random) -> str:
        text = request.text()
        k = self._actions_done(text)
        if k < len(self.actions):
            tool, inp = self.actions[k]
            if rng.random() < self.p(self.d_action):
                return styles.action_reply(f"Next I will use {tool} for this step.", tool, inp, self.style)
            if rng.random() < 0.5:
                return styles.action_reply("Let me look around first.", "bash", "ls -la", self.style)
            return styles.action_reply("I will try this.", tool, _perturb(inp, rng), self.style)
        answer = self._final_answer(text, rng, _last(request))
        return styles.action_reply("I have what I need.", "submit", answer, self.style)

    def _path_states(self) -> list[list[str]]:
        """For step-wise puzzles whose steps end in ``(left: ...)`` (Game of 24): the numbers
        at the start (from the reference expression) and after each reference step."""
        lefts = [m.group(1) for st in self.steps if (m := _LEFT_RE.search(st))]
        if not lefts or len(lefts) != len(self.steps) or self.answer is None:
            return []
        start = re.findall(r"\d+(?:\.\d+)?", self.answer.split("=")[0])
        return [sorted(start)] + [_numbers(x) for x in lefts]

    def _path_position(self, text: str) -> int | None:
        """Index into ``self.path`` of the state the prompt names last, or None when the
        prompt names no state or the state is off the reference path."""
        current = _current_state(text)
        if current is None or current not in self.path:
            return None
        return self.path.index(current)

    def _propose(self, request: GenerateRequest, rng: random.Random) -> str:
        text = request.text()
        m = re.search(r"(\d+)\s+(?:candidates|options|next steps|proposals|lines)", text, re.I)
        k = int(m.group(1)) if m else 5
        t = _norm(text)
        off_path = False
        if self.path and _STATE_RE.search(text):
            pos = self._path_position(text)
            off_path = pos is None
            nxt = self.steps[pos] if pos is not None and pos < len(self.steps) else None
        else:
            nxt = next((s for s in self.steps if _norm(s) not in t), None)
        lines: list[str] = []
        for _ in range(max(1, min(k, 20))):
            if off_path:  # no step from a dead end reaches the goal
                cand = _perturb(rng.choice(self.steps), rng)
            elif nxt is None:
                # At the goal state on the reference path the work is done: the answer is easy.
                seen = text + ("\n" + "\n".join(self.steps) if self.path else "")
                cand = f"Answer: {self._final_answer(seen, rng, _last(request))}"
            elif rng.random() < self.p(self.d_action):
                cand = nxt
            else:
                cand = _perturb(nxt, rng)
            if cand not in lines:
                lines.append(cand)
        return styles.proposal_reply(lines, self.style)

    def _judge_correct(self, candidate: str) -> bool:
        """The truth the value role reports (with noise): is this candidate on track?"""
        c = _norm(candidate)
        if not c:
            return False
        if self.path and _STATE_RE.search(candidate) and not re.search(r"answer\s*:", candidate, re.I):
            return self._path_position(candidate) is not None
        if self.answer is not None and _norm(self.answer) in c:
            return True
        last_line = _norm(candidate.strip().splitlines()[-1]) if candidate.strip() else ""
        if any(_norm(s) == last_line for s in self.steps):
            return True
        return bool(self.actions) and self._actions_done(candidate) > 0

    def _value(self, request: GenerateRequest, rng: random.Random) -> str:
        truth = self._judge_correct(_last(request))
        said = truth if rng.random() < self.p(self.d_action) else not truth
        if re.search(r"\bsure\b.*\bimpossible\b|\bimpossible\b.*\bsure\b", request.text(), re.I | re.S):
            word = "sure" if said else rng.choice(["impossible", "impossible", "likely"])
            return styles.verdict_reply(word, self.style)
        return styles.score_reply(rng.randint(7, 10) if said else rng.randint(1, 4), self.style)

    def _test_gen(self, request: GenerateRequest, rng: random.Random) -> str:
        out = []
        for t in self.tests or ([f"assert True  # {self.answer!r}"] if self.answer else []):
            out.append(t if rng.random() < self.p(self.d_action) else _perturb(t, rng))
        return styles.tests_reply(out or ["assert True"], self.style)

    def _vote(self, request: GenerateRequest, rng: random.Random) -> str:
        blocks = re.split(r"^Candidate\s+(\d+)\s*:", request.text(), flags=re.M)
        cands = {int(blocks[i]): blocks[i + 1] for i in range(1, len(blocks) - 1, 2)}
        if not cands:
            return styles.vote_reply(1, self.style)
        good = [i for i, c in cands.items() if self._judge_correct(c)]
        if good and rng.random() < self.p(self.d_action):
            return styles.vote_reply(rng.choice(good), self.style)
        return styles.vote_reply(rng.choice(sorted(cands)), self.style)

    def _reflect(self, request: GenerateRequest, rng: random.Random) -> str:
        return rng.choice(
            [
                "Reflection: my answer was not checked carefully; verify each step before submitting.",
                "Reflection: I skipped a step; work through the task one action at a time.",
                "Reflection: the tests I wrote disagreed with my program; fix the logic, not the tests.",
            ]
        )

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        handlers = {
            "act": self._act,
            "propose": self._propose,
            "value": self._value,
            "tests": self._test_gen,
            "vote": self._vote,
            "reflect": self._reflect,
            "answer": self._answer,
        }
        kind = asked_for(request)
        texts = []
        for i in range(request.n):
            key = self._key(request, kind, i)
            self.style = styles.Style(self.parent.style, key)
            text = handlers[kind](request, self._rng(request, kind, i))
            texts.append(self.style.apply_stop(text, request.stop))
        self.calls += 1
        usage = Usage(
            prompt_tokens=_tokens(request.text()),
            completion_tokens=sum(_tokens(t) for t in texts),
        )
        return GenerateResponse(
            choices=[Choice(text=t, finish_reason="stop") for t in texts],
            usage=usage,
            model=f"sim/{self.parent.size}",
        )


def _instructions(request: GenerateRequest) -> str:
    """What the request asks, as a model reads it: the system message and the last user
    message (or the whole raw prompt)."""
    if request.prompt is not None:
        return request.prompt
    system = "\n".join(m.content for m in request.messages if m.role == "system")
    users = [m.content for m in request.messages if m.role in ("user", "tool")]
    return system + "\n" + (users[-1] if users else "")


_ASKS: list[tuple[str, re.Pattern[str]]] = [
    ("tests", re.compile(r"\bwrite\b[^.\n]{0,40}\btests?\b|\bassert\b statements", re.I)),
    (
        "reflect",
        re.compile(r"\bdiagnose\b|\breflect(?:ion)? on\b|\bwhat went wrong\b|\bwhy\b[^.\n]{0,30}\bfailed\b", re.I),
    ),
    (
        "value",
        re.compile(
            r"\bsure\b.*\bimpossible\b|\bimpossible\b.*\bsure\b|\b(?:rate|score|grade)\b.{0,80}?\b1\b.{0,30}?\b10\b",
            re.I | re.S,
        ),
    ),
    ("propose", re.compile(r"\bpropose\b|\bnext steps?\b", re.I)),
    ("act", re.compile(r"^\s*Action\s*\d*\s*:\s*<|\bThought\b.{0,40}\bAction\b", re.I | re.M | re.S)),
]


def asked_for(request: GenerateRequest) -> str:
    """The kind of reply a request asks for, read from its text (never ``request.role``):
    vote, tests, reflect, value, propose, act or answer."""
    text = _instructions(request)
    last = request.messages[-1] if request.prompt is None and request.messages else None
    if last is not None and (last.role == "tool" or re.match(r"\s*Observation\b", last.content)):
        return "act"  # a tool's output came back: the next ReAct step
    if re.search(r"^Candidate\s+\d+\s*:", text, re.M) and re.search(
        r"\bbest\b|\bchoose\b|\bpick\b", text, re.I
    ):
        return "vote"
    for kind, rx in _ASKS:
        if rx.search(text):
            return kind
    if _open_steps(text):
        return "propose"
    return "answer"


def _open_steps(text: str) -> bool:
    """Does the prompt end in a list of steps left open (``Steps:`` then step lines, no
    answer yet), for the model to continue with the next step or the answer?"""
    at = text.rfind("Steps:")
    if at < 0 or (at > 0 and text[at - 1] != "\n"):
        return False
    rest = [ln for ln in text[at + len("Steps:") :].splitlines() if ln.strip()]
    return not any(re.match(r"\s*(?:answer|input|numbers)\s*:", ln, re.I) for ln in rest)


def _action_forms(tool: str, inp: str) -> list[str]:
    """Every way the sim writes an action (and the scaffolds echo it): for recognising its own
    earlier actions in a transcript."""
    return [
        f"{tool}: {inp}",
        f"{tool}[{inp}]",
        f"```{styles.fence_lang(tool)}\n{inp}\n```",
        json.dumps({"tool": tool, "input": inp}),
        f"Action: {tool}\nAction Input: {inp}",
        f"{tool}({json.dumps(inp)})",
    ]


_STATE_LINE = r"^\s*(?:numbers|input)\s*:\s*([-\d./ ]+?)\s*$"
"""A puzzle state named on its own line (``Numbers: 4 6 8``)."""
_LEFT = r"\(left:\s*([^)]*)\)"
"""The state after a step (``4 + 8 = 12 (left: 6 12 13)``)."""
_LEFT_RE = re.compile(_LEFT)
_STATE_RE = re.compile(_STATE_LINE, re.I | re.M)
_ANY_STATE_RE = re.compile(f"{_STATE_LINE}|{_LEFT}", re.I | re.M)


def _current_state(text: str) -> list[str] | None:
    """The numbers of the state a prompt names last: a ``Numbers:``/``Input:`` line or the
    ``(left: ...)`` of the latest step, whichever comes later."""
    matches = list(_ANY_STATE_RE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return _numbers(last.group(1) if last.group(1) is not None else last.group(2))


def _numbers(s: str) -> list[str]:
    return sorted(s.split())


def _last(request: GenerateRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    return request.messages[-1].content if request.messages else ""


def _str_or_none(v: object) -> str | None:
    return None if v is None else str(v)


def _float(v: object, default: float) -> float:
    return float(v) if isinstance(v, int | float) else default


@register("model", "sim")
class SimModel:
    """A member of the simulated family. ``config.model`` is its size, e.g. '1e22'."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        try:
            self.train_flop = float(config.model or config.id.removeprefix("sim/"))
        except ValueError as e:
            from ptebench.errors import ConfigError

            raise ConfigError(
                f"model {config.id!r}: sim size must be a training compute like '1e22', "
                f"got {config.model!r}"
            ) from e
        self.size = size_name(self.train_flop)
        opts = config.options
        self.alpha = _float(opts.get("alpha"), ALPHA)
        self.c0 = _float(opts.get("c0"), C0)
        style = opts.get("style", "varied")
        if style not in ("varied", "plain"):
            from ptebench.errors import ConfigError

            raise ConfigError(
                f"model {config.id!r}: options.style must be 'varied' or 'plain', got {style!r}"
            )
        self.style = str(style)

    def bind(self, binding: EpisodeBinding) -> SimEpisodeModel:
        return SimEpisodeModel(self, binding)

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """Unbound use (no episode): knows no answers."""
        return await SimEpisodeModel(self, None).generate(request)
