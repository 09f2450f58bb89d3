"""The parsers over the whole corpus of real model outputs (tests/data/parsing_corpus).

Each case holds a model's reply and the value a careful reader takes from it (README.md
there says how each source was labelled). The test prints extraction accuracy per parser —
on cases whose intended value is unambiguous, on the ambiguous rest, and on the few
constructed cases quoted from issue #12 — and requires every unambiguous case to parse.
Cases are never removed: one that once failed stays (``failed_on`` names the parser
version it failed on).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from ptebench.models.base import Choice, ToolCall
from ptebench.scaffolds import parsing
from ptebench.scaffolds.react import choice_actions

CORPUS = Path(__file__).resolve().parents[1] / "data" / "parsing_corpus"


def _cases() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in sorted(CORPUS.glob("*.jsonl")):
        for n, line in enumerate(f.read_text().splitlines()):
            if line.strip():
                case = json.loads(line)
                case["_where"] = f"{f.name}:{n + 1}"
                out.append(case)
    return out


def _same_code(a: str | None, b: str | None) -> bool:
    def norm(s: str | None) -> str:
        return "\n".join(ln.rstrip() for ln in (s or "").strip("\n").splitlines()).strip()

    return norm(a) == norm(b)


def extract(case: dict[str, Any]) -> tuple[str, bool, object]:
    """(parser name, correct?, what it returned) for one case."""
    kind, exp, text = case["parser"], case["expected"], case["text"]
    if kind == "action":
        try:
            _, a = parsing.parse_action(text, case["tools"])
        except parsing.ParseError as e:
            return "parse_action", False, f"ParseError: {e}"
        got = {"tool": a.tool, "input": a.input}
        return "parse_action", a.tool == exp["tool"] and _same_code(a.input, exp["input"]), got
    if kind == "tool_call":
        choice = Choice(
            text=text,
            tool_calls=[ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"]) for c in case["tool_calls"]],
        )
        try:
            _, pairs = choice_actions(choice, case["tools"])
        except parsing.ParseError as e:
            return "choice_actions", False, f"ParseError: {e}"
        read: list[object] = []
        ok = len(pairs) == len(exp)
        for (_, a), e in zip(pairs, exp, strict=False):
            if isinstance(a, parsing.ParseError):
                read.append(f"ParseError: {a}")
                ok = ok and bool(e.get("error"))
                continue
            read.append({"tool": a.tool, "input": a.input})
            if "input_json" in e:
                try:
                    same = json.loads(a.input) == e["input_json"]
                except json.JSONDecodeError:
                    same = False
            else:
                same = a.input == e.get("input")
            ok = ok and not e.get("error") and a.tool == e["tool"] and same
        return "choice_actions", ok, read
    if kind == "answer":
        if exp is None:
            found = parsing.find_answer(text)
            return "find_answer", found is None, found
        ans = parsing.extract_answer(text)
        return "extract_answer", ans == exp, ans
    if kind == "code":
        code = parsing.extract_code(text, case.get("entry_point"))
        ok = code is None if exp is None else _same_code(code, exp)
        return "extract_code", ok, code
    if kind == "score":
        score = parsing.parse_score(text)
        return "parse_score", score is not None and abs(score - float(exp)) < 1e-9, score
    if kind == "verdict":
        v = parsing.parse_verdict(text)
        return "parse_verdict", v == exp, v
    if kind == "index":
        i = parsing.parse_index(text, int(case["n"]))
        return "parse_index", i == exp, i
    raise AssertionError(f"{case['_where']}: unknown parser {kind!r}")


def test_corpus_is_large_attributed_and_real() -> None:
    cases = _cases()
    real = [c for c in cases if not c.get("constructed")]
    assert len(real) >= 300, len(real)
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    for c in real:
        src = c["source"]
        assert src.get("repo") and len(src.get("commit", "")) == 40 and src.get("path"), c["_where"]
        assert c.get("model"), c["_where"]
    assert {c["parser"] for c in real} >= {"action", "answer", "code", "score"}


def test_corpus_extraction_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    failures: list[str] = []
    for case in _cases():
        name, ok, got = extract(case)
        group = "constructed" if case.get("constructed") else (
            "ambiguous" if case.get("ambiguous") else "unambiguous"
        )
        tally[(name, group)][0] += ok
        tally[(name, group)][1] += 1
        if not ok and group != "ambiguous":
            failures.append(f"{case['_where']} {case['id']}: expected {case['expected']!r}, got {got!r}")
    with capsys.disabled():
        print("\nparser accuracy on the corpus (tests/data/parsing_corpus)")
        print(f"{'parser':<16}{'unambiguous':>16}{'ambiguous':>14}{'constructed':>14}")
        for name in sorted({n for n, _ in tally}):
            cells = []
            for group in ("unambiguous", "ambiguous", "constructed"):
                ok, n = tally.get((name, group), [0, 0])
                cells.append(f"{ok}/{n} ({100 * ok / n:.0f}%)" if n else "-")
            print(f"{name:<16}{cells[0]:>16}{cells[1]:>14}{cells[2]:>14}")
    assert not failures, "\n".join(failures[:20])


def test_cases_that_once_failed_are_kept() -> None:
    record = json.loads((CORPUS / "once_failed.json").read_text())
    ids = {c["id"] for c in _cases()}
    recorded = list(record["ids"]) + [i for later in record.get("later", []) for i in later["ids"]]
    missing = [i for i in recorded if i not in ids]
    assert record["ids"] and not missing, missing[:10]
