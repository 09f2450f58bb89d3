"""The one parser of model outputs: actions, answers, code, verdicts, scores, votes, tests.

Every scaffold reads model text through this module (and only this module), so a reply is
read the same way whichever scaffold asked for it. The rules are hardened against a corpus
of real outputs of real models (tests/data/parsing_corpus, its README names the sources);
docs/scaffolds.md lists them. In short:

* **Labels** are found with or without markdown: ``Action:``, ``**Action:**``, ``**Action**:``,
  ``### Action:``, ``Action 3:``; the same for ``Thought``, ``Answer``/``Final Answer``.
* **Actions**: ``Action: tool: input``, ``tool[input]``, ``tool(input)``, ``Action: tool`` +
  ``Action Input: ...``, ``Action: tool`` followed by a fenced block, a JSON object (whole
  reply, fenced ``json`` block or after ``Action:``; keys tool/name/action and
  input/arguments/action_input), and — with no label at all — one fenced block (``bash``/
  ``sh``/unlabelled → bash, ``python`` → python). Several actions on one line: the first.
  The argument ends at an ``Observation:`` line the model invented (no stop sequence
  honoured), at the end of its fence, and loses quotes or backticks wrapped around all of it.
  ``Answer: X`` with no action is ``submit: X``.
* **Answers**: the last ``Answer:`` (or ``Finish[X]``/``submit: X``), emphasis, backticks and
  wrapping quotes removed, a trailing remark in words in parentheses dropped.
* **Code**: among the fenced blocks (python first), the last that defines the entry point —
  not a later "example usage" block; an unterminated final block counts; bare code counts.
* **Scores** (→ [0, 1]): an explicit ``N/10``, ``N out of 10``, ``score: N``, ``[[N]]`` wins;
  else a verdict word (sure/likely/impossible); else a number standing alone (a line of its
  own or the reply's first token). A number inside prose (``(4+4)*3 = 24``) is never a score.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, cast

from ptebench.records import Action
from ptebench.tasks.base import TaskView

ACT_STOP = ["\nObservation"]
"""Stop sequence for act calls: the model must not write the tool's output itself."""


class ParseError(ValueError):
    """The model's output holds no usable action; the message becomes the observation."""


# --- shared pieces --------------------------------------------------------------------------

_LABELS = r"(?:thought|action[ _]input|action|final[ _]answer|answer|observation)"
_LABEL_RE = re.compile(
    rf"^[ \t>]*(?:(?:[-•]|\d+[.)])[ \t]+)?(?:#+[ \t]*)?(?:[*_]{{1,3}}[ \t]*)?({_LABELS})(?:[ \t]*\d+)?[ \t]*(?:[*_]{{1,3}})?[ \t]*:[ \t]*(?:[*_]{{1,3}}(?=[ \t]|$))?[ \t]*",
    re.I | re.M,
)
_FENCE_RE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.S | re.M)
_OBS_RE = re.compile(r"^[ \t*_]*Observation(?:[ \t]*\d+)?[ \t*_]*:", re.I | re.M)
_PY_LANGS = ("python", "py", "python3", "py3")
_SH_LANGS = ("", "bash", "sh", "shell", "console", "zsh", "mswea_bash_command")


def normalise_labels(text: str) -> str:
    """Rewrite markdown-decorated labels (``**Action:**``, ``### Thought 2:``) as plain
    ``Action: `` / ``Thought: `` at the start of their line."""

    def canon(m: re.Match[str]) -> str:
        name = re.sub(r"[ _]+", " ", m.group(1).lower())
        return {
            "thought": "Thought: ",
            "action": "Action: ",
            "action input": "Action Input: ",
            "answer": "Answer: ",
            "final answer": "Answer: ",
            "observation": "Observation: ",
        }[name]

    return _LABEL_RE.sub(canon, text)


def fences(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block; an unterminated last block runs to the end."""
    return [(lang.lower(), body) for lang, body in _FENCE_RE.findall(text)]


def _unwrap(s: str) -> str:
    """Drop emphasis, backticks or quotes wrapped around the whole string."""
    s = s.strip()
    for _ in range(3):
        m = re.fullmatch(r"(\*\*|__|\*|`+|\"|')(.+)\1", s, re.S)
        if m is None or m.group(1) in m.group(2) and m.group(1) in ('"', "'"):
            break
        s = m.group(2).strip()
    return s


def _strip_fence(s: str) -> str:
    s = s.strip()
    m = re.match(r"^```[^\n]*\n(.*?)\n?[ \t]*```(.*)$", s, re.S)
    if m:
        return m.group(1)
    m = re.match(r"^```[^\n]*\n(.*)$", s, re.S)  # unterminated
    return m.group(1) if m else s


def cut_observation(text: str) -> str:
    """The reply up to an ``Observation:`` line the model wrote itself (a stop sequence not
    honoured): what follows is invented, not the tool's output."""
    m = _OBS_RE.search(text)
    return text[: m.start()] if m else text


# --- actions --------------------------------------------------------------------------------

_THOUGHT_RE = re.compile(r"^Thought: (.*?)(?=^Action: |^Answer: |^```|\Z)", re.S | re.M)
_ACTION_RE = re.compile(r"^Action: (.*)$", re.M)
_TOOL_RE = re.compile(r"^[`*]*([A-Za-z_][\w-]*)[`*]*[ \t]*(\[|\(|:|$|\n)")
_JSON_KEYS_TOOL = ("tool", "name", "action", "tool_name", "function")
_JSON_KEYS_ARG = ("input", "arguments", "action_input", "args", "parameters", "tool_input", "command", "code")


def parse_action(text: str, tools: list[str]) -> tuple[str | None, Action]:
    """(thought, Action) from a ReAct-style reply; the rules are in the module docstring.

    Raises:
        ParseError: no action, an unknown tool, or malformed JSON — with a message the model
            can act on.
    """
    tools = [t.lower() for t in tools]
    body = normalise_labels(cut_observation_after_action(text))
    thought_m = _THOUGHT_RE.search(body)
    thought = thought_m.group(1).strip() or None if thought_m else None
    found = _json_action(body, tools)
    if found is not None:
        return thought or _prose_before(body), found
    m = _ACTION_RE.search(body)
    if m is not None:
        return thought, _labelled_action(body[m.start(1) :], tools)
    blocks = [(lang, b) for lang, b in fences(body) if lang in _SH_LANGS + _PY_LANGS]
    ans_m = list(_ANSWER_RE.finditer(body))
    last_fence = body.rfind("```")
    if blocks and not (ans_m and ans_m[-1].start() > last_fence and "submit" in tools):
        lang, code = blocks[-1]
        tool = "python" if lang in _PY_LANGS and "python" in tools else "bash"
        if tool in tools:
            return thought or _prose_before(body), Action(tool=tool, input=code.rstrip("\n"))
    ans = find_answer(body)
    if ans is not None and "submit" in tools:
        return thought, Action(tool="submit", input=ans)
    raise ParseError(
        "could not parse action: write 'Thought: ...' then 'Action: <tool>: <input>' "
        f"with a tool among {', '.join(tools)}"
    )


def cut_observation_after_action(text: str) -> str:
    """Like :func:`cut_observation`, but an ``Observation:`` before the first action label
    (a model quoting the last one) is kept."""
    first = re.search(r"^[ \t>#*_]*action\b", text, re.I | re.M)
    start = first.end() if first else 0
    m = _OBS_RE.search(text, start)
    return text[: m.start()] if m else text


def _prose_before(body: str) -> str | None:
    cut = re.search(r"^```|^\{|^Action: ", body, re.M)
    prose = (body[: cut.start()] if cut else "").strip()
    prose = re.sub(r"^Thought: ", "", prose)
    return prose or None


def _labelled_action(rest: str, tools: list[str]) -> Action:
    """``tool: input`` / ``tool[input]`` / ``tool(input)`` / ``tool`` + Action Input / fence."""
    rest = rest.strip()
    tm = _TOOL_RE.match(rest)
    if tm is None:
        raise ParseError(f"could not parse action {rest[:80]!r}: expected '<tool>: <input>'")
    tool, sep = tm.group(1).lower(), tm.group(2)
    after = rest[tm.end() :]
    if sep in ("[", "("):
        arg = _balanced(after, "[" if sep == "[" else "(")
        if arg is None:  # unbalanced: everything to the end of the line
            arg = after.split("\n", 1)[0].rstrip("])")
        arg = _unwrap(arg)
    elif sep == ":":
        arg = after.lstrip(" \t").split("\nAction Input: ", 1)[0]
        stripped = arg.strip()
        if stripped.startswith("```"):
            arg = _strip_fence(stripped)
        else:
            arg = _cut_prose(arg).strip("\n")
            if "\n" not in arg.strip():
                arg = _unwrap(arg)
    else:  # 'Action: tool' alone on its line: Action Input or a fenced block follows
        ai = re.search(r"^Action Input: (.*)", after, re.S | re.M)
        if ai is not None:
            arg = _unwrap(_strip_fence(ai.group(1).strip()))
        else:
            blocks = fences(after)
            arg = blocks[0][1].rstrip("\n") if blocks else after.strip()
    arg = arg.rstrip()
    if tool not in tools:
        raise ParseError(
            f"could not parse action: unknown tool {tool!r}; available: {', '.join(tools)}"
        )
    return Action(tool=tool, input=arg)


_PROSE_RE = re.compile(r"\n[ \t]*\n(?=[A-Z][a-z]+(?: [\w',\-]+){2,}[^=()\n{}\[\]]*[.!?:]?[ \t]*(?:\n|$))")


def _cut_prose(arg: str) -> str:
    """An input up to a blank line followed by a sentence of prose (the model explaining
    its action), or the whole input: programs and scripts span lines."""
    m = _PROSE_RE.search(arg)
    return arg[: m.start()] if m else arg


def _balanced(s: str, open_ch: str) -> str | None:
    """The text up to the bracket closing an already-opened ``open_ch``; None if unclosed."""
    close = "]" if open_ch == "[" else ")"
    depth, quote = 1, ""
    for i, ch in enumerate(s):
        if quote:
            if ch == quote and s[i - 1] != "\\":
                quote = ""
            continue
        if ch in "\"'" and open_ch == "(" and (i == 0 or s[i - 1] in " ,(=["):
            quote = ch
        elif ch == open_ch:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return s[:i]
    return None


def _json_action(body: str, tools: list[str]) -> Action | None:
    """A JSON tool call: the whole reply, a fenced block that is one JSON object, or the
    object right after ``Action:``. JSON inside a program is never a tool call."""
    stripped = body.strip()
    after = re.search(r"^Action: (?=\{)", body, re.M)
    candidates: list[tuple[str, bool]] = []
    if after is not None:
        candidates.append((body[after.end() :], True))
    if stripped.startswith("{"):
        candidates.append((stripped, True))
    for lang, b in fences(body):
        b = b.strip()
        if lang in ("json", "", "json5") and b.startswith("{") and b.endswith("}"):
            candidates.append((b, False))
    dec = json.JSONDecoder()
    for cand, strict in candidates:
        try:
            obj, _ = dec.raw_decode(cand.strip())
        except json.JSONDecodeError as e:
            if strict:
                raise ParseError(f"could not parse action: invalid JSON ({e.msg})") from e
            continue
        if isinstance(obj, dict):
            act = _json_to_action(obj, tools)
            if act is not None:
                return act
        if strict:
            raise ParseError('could not parse action: JSON needs {"tool": ..., "input": ...}')
    return None


def _json_to_action(obj: dict[str, Any], tools: list[str]) -> Action | None:
    tool = next((obj[k] for k in _JSON_KEYS_TOOL if isinstance(obj.get(k), str)), None)
    if tool is None:
        fn = obj.get("function")
        if isinstance(fn, dict):
            return _json_to_action({"name": fn.get("name"), "arguments": fn.get("arguments")}, tools)
        return None
    tool = tool.lower()
    arg: Any = next((obj[k] for k in _JSON_KEYS_ARG if k in obj), "")
    if isinstance(arg, str) and arg.strip().startswith("{"):
        with contextlib.suppress(json.JSONDecodeError):
            arg = json.loads(arg)
    if isinstance(arg, dict):
        arg = _argument_value(arg, tool)
    if not isinstance(arg, str):
        arg = json.dumps(arg)
    if tool not in tools:
        raise ParseError(
            f"could not parse action: unknown tool {tool!r}; available: {', '.join(tools)}"
        )
    return Action(tool=tool, input=arg)


def _argument_value(args: dict[str, Any], tool: str = "") -> Any:
    """The one string argument of a tool from its arguments object: ``input`` or a usual
    name for it (``command``, ``cmd``, ``code``, ...), else the only argument whatever its
    name, "" for no argument; several unknown arguments stay the whole object as JSON."""
    if "input" in args:
        return args["input"]
    for k in ("command", "cmd", "code", "script", "answer", "query", "text"):
        if k in args and not _selects_subcommand(args, k):
            return args[k]
    if len(args) == 1:
        return next(iter(args.values()))
    if not args:
        return ""
    return json.dumps(args)


def _selects_subcommand(args: dict[str, Any], key: str) -> bool:
    """``{"command": "create", "path": "...", "file_text": "..."}`` (an editor tool): the
    key holds one bare word beside other text arguments, so it names an operation, not the
    input. A flag beside it (``"is_input": "false"``) does not count."""
    value = args[key]
    if not isinstance(value, str) or not re.fullmatch(r"[a-z_]+", value):
        return False
    return any(
        isinstance(v, str) and v.lower() not in ("true", "false") and not v.isdigit()
        for k, v in args.items()
        if k != key
    )


def tool_call_input(arguments: str | None) -> str:
    """The input of a native tool call from the raw arguments text the model wrote (the
    OpenAI ``function.arguments`` string, or an Anthropic ``tool_use`` input as JSON).

    Raises:
        ParseError: arguments that are not JSON.
    """
    raw = (arguments or "").strip()
    if not raw:
        return ""
    try:
        args: Any = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ParseError(f"could not parse action: tool arguments are not JSON ({e.msg})") from e
    value = _argument_value(cast("dict[str, Any]", args)) if isinstance(args, dict) else args
    return value if isinstance(value, str) else json.dumps(value)


# --- answers --------------------------------------------------------------------------------

_ANSWER_RE = re.compile(r"^Answer: (.*)$", re.M)
_FINISH_RE = re.compile(r"\b(?:Finish|submit)\[(.*)\]\s*$|^Action: submit\s*[:(](.*)$", re.I | re.M)
_REMARK_RE = re.compile(r"\s*\((?=[^)]*[A-Za-z]{3,}[ ,]+[A-Za-z]{2,})[^()]*\)\s*\.?$")


def clean_answer(ans: str) -> str:
    """An answer without decoration: emphasis, backticks, wrapping quotes, a trailing
    parenthesised remark in words, a trailing full stop after a number."""
    s = _unwrap(ans.strip())
    s = _REMARK_RE.sub("", s).strip()
    s = _unwrap(s)
    if re.fullmatch(r"-?[\d.,]+\.", s):
        s = s[:-1]
    return s


def find_answer(text: str) -> str | None:
    """The last labelled final answer (``Answer:``, ``**Final Answer:**``, ``Finish[X]``,
    ``submit: X``), cleaned; None when the text names none (strict: used to tell complete
    solutions from partial ones)."""
    body = normalise_labels(text)
    best: tuple[int, str] | None = None
    for m in _ANSWER_RE.finditer(body):
        ans = m.group(1).strip()
        if not _unwrap(ans).strip("*_ "):  # label alone on its line: the answer follows
            nxt = body[m.end() :].strip().split("\n", 1)[0] if body[m.end() :].strip() else ""
            ans = nxt
        best = (m.start(), ans)
    for m in _FINISH_RE.finditer(body):
        if best is None or m.start() > best[0]:
            raw = m.group(1) if m.group(1) is not None else (m.group(2) or "").rstrip(")")
            best = (m.start(), raw)
    if best is None:
        return None
    ans = clean_answer(best[1])
    return ans or None


def extract_answer(text: str) -> str:
    """The final answer in a model's text: :func:`find_answer`, else the last non-empty line
    (cleaned). An empty output gives an empty answer (which scores as wrong)."""
    ans = find_answer(text)
    if ans is not None:
        return ans
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.strip().startswith("```")]
    return clean_answer(lines[-1]) if lines else ""


# --- code -----------------------------------------------------------------------------------


def _defines(code: str, name: str | None) -> bool:
    if name is None:
        return bool(re.search(r"^\s*(?:async\s+)?def \w+\s*\(", code, re.M))
    return bool(re.search(rf"^\s*(?:async\s+)?def {re.escape(name)}\s*\(", code, re.M))


def extract_code(text: str, entry_point: str | None = None) -> str | None:
    """The program in a reply: of the fenced blocks (python ones first), the last that
    defines ``entry_point`` (else any function, else the last block); with no block, the
    text itself if it defines a function. None when the output holds no code."""
    blocks = fences(text)
    py = [b for lang, b in blocks if lang in _PY_LANGS]
    pool = py or [b for lang, b in blocks if lang in ("",)] or [b for _, b in blocks]
    chosen: str | None = None
    for name in (entry_point, None, ""):
        hits = [b for b in pool if b.strip() and (name == "" or _defines(b, name))]
        if hits:
            chosen = hits[-1]
            break
    if chosen is None and not blocks and _defines(text, None):
        chosen = _code_start(text)
    if chosen is None or not chosen.strip():
        return None
    return chosen.strip("\n") + "\n"


def _code_start(text: str) -> str:
    """Bare code with a line of prose before it: from the first line that looks like code."""
    lines = text.splitlines()
    for i, ln in enumerate(lines):
        if re.match(r"^(?:from |import |def |async def |class |@|#)", ln):
            return "\n".join(lines[i:])
    return text


def as_program(code: str, task: TaskView) -> str:
    """A complete program: the model's code if it defines the entry point, else the task's
    prompt followed by the code (a model that wrote only the function body)."""
    spec = task.code
    if spec is None or _defines(code, spec.entry_point):
        return code
    body = (
        code if code.startswith((" ", "\t")) else "\n".join("    " + ln for ln in code.splitlines())
    )
    return spec.prompt.rstrip("\n") + "\n" + body.rstrip("\n") + "\n"


def extract_submission(text: str, task: TaskView, raw_fallback: bool = False) -> str | None:
    """The submission a final-answer output carries: a program for code tasks, the answer
    otherwise (the last line when no answer is labelled). None when there is none; with
    ``raw_fallback`` a code reply without fences or ``def`` is taken as the function's body
    (a base model continuing the prompt)."""
    if task.kind == "code":
        ep = task.code.entry_point if task.code is not None else None
        code = extract_code(text, ep)
        if code is None and raw_fallback and text.strip():
            code = text.strip("\n") + "\n"
        return as_program(code, task) if code is not None else None
    return extract_answer(text) or None


# --- verdicts and scores --------------------------------------------------------------------

_VALUE_WORDS = {"sure": 20.0, "likely": 1.0, "impossible": 0.001}
"""ToT's value map for sure/likely/impossible verdicts (princeton-nlp/tree-of-thought-llm)."""
_VERDICT_RE = re.compile(r"(?<!not )(?<!not\s)\b(sure|likely|impossible)\b", re.I)
_NUM = r"(10(?:\.0+)?|\d(?:\.\d+)?)"
_EXPLICIT_SCORE_RES = [
    re.compile(rf"\[\[\s*{_NUM}\s*\]\]"),
    re.compile(rf"(?<![\w.]){_NUM}\s*(?:/|out of)\s*10\b", re.I),
    re.compile(
        rf"\b(?:score|rating|rate|rated|grade|value|give it|give this|assign)\b[^\n\d]{{0,24}}?\**\s*{_NUM}(?![\d.]*\s*[-+*/x×=(])(?!\.\d)\b",
        re.I,
    ),
]
_ALONE_RE = re.compile(rf"^[ \t*_#>`]*{_NUM}[ \t*_`.!]*$", re.M)
_VERDICT_LINE_RE = re.compile(
    r"^[ \t*_#>`\"']*(?:(?:verdict|judgment|judge|answer|evaluation|value)[ \t*_]*:[ \t*_]*)?(sure|likely|impossible)\b",
    re.I,
)


def parse_verdict(text: str) -> str | None:
    """The verdict word (sure/likely/impossible) of a judgment: the one on the last line
    that has one (ToT reads the last line), lower-cased; "not sure" is no verdict. None
    when there is none."""
    for ln in reversed(text.strip().splitlines()):
        words = _VERDICT_RE.findall(ln)
        if words:
            return words[-1].lower()
    return None


def _stated_verdict(text: str) -> str | None:
    """A verdict stated as such: a verdict word opening the reply or its last line (after an
    optional 'Verdict:'-style label), not one used in passing inside a sentence."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    for ln in (lines[-1:] + lines[:1]) if lines else []:
        m = _VERDICT_LINE_RE.match(ln)
        if m:
            return m.group(1).lower()
    return None


def _score(x: str) -> float:
    return max(0.0, min(1.0, float(x) / 10.0))


def parse_score(text: str) -> float | None:
    """A self-evaluation scaled to [0, 1] (rules in the module docstring); None when the
    output holds neither a score nor a verdict. In order: an explicit score (``[[N]]``,
    ``N/10``, ``N out of 10``, ``score: N``, ``I'd give it N``); a number alone on a line;
    a stated verdict (sure 1.0, likely 0.5, impossible 0.0); a number ending the reply
    (not the result of an equation); a number opening it."""
    for rx in _EXPLICIT_SCORE_RES:
        found = rx.findall(text)
        if found:
            return _score(found[-1])
    alone = _ALONE_RE.findall(text)
    if alone:
        return _score(alone[-1])
    v = _stated_verdict(text)
    if v is not None:
        return {"sure": 1.0, "likely": 0.5, "impossible": 0.0}[v]
    m = re.search(rf"(?<![\d.=+\-*/x×^])(?<![=+\-*/x×^]\s){_NUM}[ \t*_`]*[.!]?[ \t*_`]*$", text.strip())
    if m:
        return _score(m.group(1))
    m = re.match(rf"\s*\**{_NUM}\**(?:[.:)\s]|$)(?!\s*[-+*/x×=])", text)
    if m:
        return _score(m.group(1))
    return None


def parse_tot_value(text: str) -> float:
    """ToT's value of one sample: sure=20, likely=1, impossible=0.001; a score is mapped onto
    the same scale (10 → 20, ≥5 → 1, else 0.001); nothing parseable → 0."""
    v = parse_verdict(text)
    if v is not None:
        return _VALUE_WORDS[v]
    score = parse_score(text)
    if score is None:
        return 0.0
    if score >= 1.0:
        return 20.0
    return 1.0 if score >= 0.5 else 0.001


# --- lists, tests, votes --------------------------------------------------------------------


def parse_lines(text: str) -> list[str]:
    """Candidate lines of a proposal output: bullets and numbering stripped; fences, blank
    lines and headers (a line ending in ':' with no '=' or 'Answer') dropped."""
    out: list[str] = []
    for ln in text.splitlines():
        s = re.sub(r"^\s*(?:[-*•]|\d+[.)]|Step\s*\d+\s*:)\s*", "", ln).strip()
        s = re.sub(r"^\*\*(.*)\*\*$", r"\1", s).strip()
        if not s or s.startswith("```"):
            continue
        if s.endswith(":") and "=" not in s and "answer" not in s.lower():
            continue
        out.append(s)
    return out


def parse_tests(text: str, limit: int | None = None) -> list[str]:
    """``assert`` statements in a test-generation output (fences and prose ignored)."""
    tests = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("assert ")]
    seen: list[str] = []
    for t in tests:
        if t not in seen:
            seen.append(t)
    return seen[:limit] if limit is not None else seen


_VOTE_RES = [
    re.compile(r"best (?:choice|candidate|option|one|answer) is\s*(?:candidate|choice|option)?\s*#?\s*(\d+)", re.I),
    re.compile(r"\b(?:candidate|choice|option)\s*#?\s*(\d+)", re.I),
]


def parse_index(text: str, n: int) -> int | None:
    """A 0-based choice among ``n`` from ``Answer: <index>`` (1-based in the prompt), or
    "The best choice is N" (ToT's vote format), or the last "Candidate N" named."""
    ans = find_answer(text)
    m = re.search(r"\d+", ans) if ans is not None else None
    if m is None:
        for rx in _VOTE_RES:
            found = rx.findall(text)
            if found:
                i = int(found[-1]) - 1
                return i if 0 <= i < n else None
        m = re.search(r"\d+", text)
    if m is None:
        return None
    i = int(m.group()) - 1
    return i if 0 <= i < n else None


def normalise(answer: str | None) -> str | None:
    """A canonical form for majority voting: lower-case, whitespace collapsed, trailing
    full stop dropped, numbers in canonical form; code keeps only non-comment lines."""
    if answer is None:
        return None
    lines = [ln.split("#", 1)[0].rstrip() for ln in answer.strip().splitlines()]
    s = "\n".join(ln for ln in lines if ln.strip()) if "\n" in answer.strip() else answer.strip()
    s = re.sub(r"[ \t]+", " ", s).strip().rstrip(".").lower()
    try:
        f = float(s.replace(",", ""))
        return str(int(f)) if f.is_integer() else repr(f)
    except ValueError:
        return s or None
