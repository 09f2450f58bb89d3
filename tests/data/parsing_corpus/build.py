"""Rebuild the parsing corpus from the public repositories it was taken from.

Run from the repository root with the mirrors in /work/.mirror (``fetch`` each source)::

    python3 tests/data/parsing_corpus/build.py

Only model outputs are kept, with their source (repository, commit, path, locator) and the
model that wrote them. The value each case expects is set by the rules written next to each
source below — rules a reader applies by eye (the text inside ``Search[...]``; the command
the reference harness recorded it executed; the block that defines the entry point) — and the
non-trivial cases were read one by one (README.md). ptebench's parser is never consulted.
Sampling is seeded, so a rebuild gives the same files.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import subprocess
from pathlib import Path

MIRROR = Path("/work/.mirror")
OUT = Path(__file__).parent


def git_show(repo: str, path: str) -> tuple[str, str]:
    git = MIRROR / repo.replace("/", "+") / "repo"
    commit = subprocess.run(
        ["git", "-C", str(git), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    text = subprocess.run(
        ["git", "-C", str(git), "show", f"HEAD:{path}"], capture_output=True, text=True, check=True
    ).stdout
    return commit, text


def write(name: str, cases: list[dict]) -> None:
    seen: set[str] = set()
    out = []
    for c in cases:
        key = c["parser"] + "\0" + c["text"] + "\0" + json.dumps(c.get("tools")) + json.dumps(c.get("tool_calls"))
        if key in seen:
            continue
        seen.add(key)
        out.append(c)
    with open(OUT / f"{name}.jsonl", "w") as f:
        for c in out:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    print(f"{name}: {len(out)} cases")


# --- ReAct / CoT on HotpotQA, from Reflexion's logged runs ----------------------------------
# Reflexion's ReAct agent asks for one Thought and one Action per step (two completions of
# the ReAct prompt); the case is the two lines as the model wrote them. Expected: the tool
# named before '[' (lower-cased) and the text inside its brackets, quotes the model put
# around the whole argument dropped. A line that names several actions is ambiguous (ReAct
# runs one): expected is the first, the case is marked ambiguous.
REFLEXION = "noahshinn/reflexion"
ACTION_LINE = re.compile(r"^Action( \d+)?: (.*)$")


def react_hotpot() -> list[dict]:
    cases = []
    rng = random.Random(12)
    for path in [
        "hotpotqa_runs/root/ReAct/base/base_react_thought_log.txt",
        "hotpotqa_runs/root/ReAct/reflexion/100_questions_5_trials.txt",
        "hotpotqa_runs/root/CoT/no_context/base/100_questions_5_trials.txt",
        "hotpotqa_runs/root/CoT/context/reflexion/100_questions_5_trials.txt",
    ]:
        commit, text = git_show(REFLEXION, path)
        lines = text.splitlines()
        plain, odd = [], []
        for i, ln in enumerate(lines):
            m = ACTION_LINE.match(ln)
            if not m or i == 0 or not lines[i - 1].startswith("Thought"):
                continue
            body = m.group(2).strip()
            mm = re.fullmatch(r"(Search|Lookup|Finish)\[(.*)\]", body)
            single = mm is not None and "][" not in body and "], " not in body and "] and " not in body
            item = (i, lines[i - 1], ln, body, single)
            (plain if single else odd).append(item)
        chosen = rng.sample(plain, min(len(plain), 70)) + odd
        for i, thought, act, body, single in sorted(chosen):
            first = re.match(r"(Search|Lookup|Finish)\[(.*?)\]", body)
            if first is None:
                continue
            tool, arg = first.group(1).lower(), (re.fullmatch(r"(\w+)\[(.*)\]", body).group(2) if single else first.group(2))
            if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "\"'" and arg.count(arg[0]) == 2:
                arg = arg[1:-1]
            cases.append({
                "id": f"reflexion-hotpot-{Path(path).parent.name}-{Path(path).stem}-L{i + 1}",
                "parser": "action",
                "tools": ["search", "lookup", "finish"],
                "text": thought + "\n" + act,
                "expected": {"tool": tool, "input": arg},
                "ambiguous": not single,
                "model": "text-davinci-003 / gpt-3.5-turbo (Reflexion HotpotQA agents; the log does not say which)",
                "source": {"repo": REFLEXION, "commit": commit, "path": path, "line": i + 1},
            })
    return cases


# --- SWE-agent: prose then one fenced command ------------------------------------------------
# Expected: the command SWE-agent recorded it executed for that response (its 'action'),
# as a bash action; steps whose command is SWE-agent's own 'submit' are left out (ptebench's
# submit carries an answer).
SWE = "SWE-agent/SWE-agent"


def swe_agent() -> list[dict]:
    git = MIRROR / "SWE-agent+SWE-agent" / "repo"
    paths = subprocess.run(
        ["git", "-C", str(git), "ls-tree", "-r", "--name-only", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.split()
    cases = []
    for path in paths:
        if not path.endswith(".traj") or "function_calling" in path or "xml_sys" in path:
            continue
        commit, text = git_show(SWE, path)
        d = json.loads(text)
        model = "gpt-4 (SWE-agent run)" if path.startswith("tests/") else "SWE-agent demonstration trajectory"
        for k, step in enumerate(d.get("trajectory", [])):
            resp, action = step.get("response") or "", (step.get("action") or "").rstrip("\n")
            if not resp.strip() or action.strip() in ("submit", "") or "```" not in resp:
                continue
            cases.append({
                "id": f"swe-agent-{Path(path).stem[:40]}-{hashlib.sha1(path.encode()).hexdigest()[:6]}-{k}",
                "parser": "action",
                "tools": ["bash", "python", "submit"],
                "text": resp,
                "expected": {"tool": "bash", "input": action},
                "ambiguous": False,
                "model": model,
                "source": {"repo": SWE, "commit": commit, "path": path, "step": k},
            })
    return cases


# --- Game of 24, IO and CoT samples of GPT-4 (tree-of-thought-llm logs) ----------------------
# Expected: the text after the last 'Answer:' on its line, a trailing parenthesised remark in
# words ('(this answer is incorrect, ...)') dropped; an output that is a bare expression line
# is that line. A CoT output with no 'Answer:' that ends in a sentence ('No solution found.')
# has no answer: expected null, marked ambiguous (a last-line fallback is as defensible).
TOT = "princeton-nlp/tree-of-thought-llm"


def game24() -> list[dict]:
    rng = random.Random(24)
    cases = []
    for path, kind in [
        ("logs/game24/gpt-4_0.7_naive_standard_sample_100_start900_end1000.json", "io"),
        ("logs/game24/gpt-4_0.7_naive_cot_sample_100_start900_end1000.json", "cot"),
    ]:
        commit, text = git_show(TOT, path)
        data = json.loads(text)
        pool = [(e["idx"], j, y) for e in data for j, y in enumerate(e["ys"])]
        with_ans = [p for p in pool if "answer:" in p[2].lower()]
        without = [p for p in pool if "answer:" not in p[2].lower()]
        multi = [p for p in pool if p[2].lower().count("answer") > 1]
        chosen = rng.sample(with_ans, 45) + rng.sample(without, 25) + multi
        for idx, j, y in chosen:
            ambiguous = False
            found = list(re.finditer(r"answer:\s*(.*)", y, re.I))
            m = found[-1] if found else None
            if m is not None:
                exp = re.sub(r"\s*\((?=[^)]*[A-Za-z]{3,}\s+[A-Za-z]{2,})[^)]*\)\s*$", "", m.group(1)).strip()
            else:
                last = [ln for ln in y.strip().splitlines() if ln.strip()][-1].strip()
                if re.fullmatch(r"[\d\s()+\-*/=.]+", last):
                    exp = last
                else:
                    exp, ambiguous = None, True
            cases.append({
                "id": f"tot-game24-{kind}-{idx}-{j}",
                "parser": "answer",
                "text": y,
                "expected": exp,
                "ambiguous": ambiguous,
                "model": "gpt-4 (temperature 0.7)",
                "source": {"repo": TOT, "commit": commit, "path": path, "idx": idx, "sample": j},
            })
    return cases


# --- HumanEval answers of many chat models (simple-evals-ru results) -------------------------
# Expected: the program a reader would submit — the fenced block that defines the entry point
# (the first such block when a later one only calls it; the last when a later block rewrites
# it), or the whole reply when it is bare code. Every case with more than one block, or with
# prose after its block, was read.
EVALS = "kuk/simple-evals-ru"
FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)


def humaneval_answers() -> list[dict]:
    git = MIRROR / "kuk+simple-evals-ru" / "repo"
    rng = random.Random(164)
    paths = subprocess.run(
        ["git", "-C", str(git), "ls-tree", "-r", "--name-only", "HEAD", "data/results/humaneval/"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    _, bench = git_show(EVALS, "data/benches/humaneval.jsonl")
    entry = {}
    for line in bench.splitlines():
        d = json.loads(line)
        entry[d.get("id") or d.get("task_id")] = d.get("entry_point")
    groups: dict[str, list] = {"multi": [], "prose_after": [], "prose_before": [], "bare": [], "plain": [], "open": []}
    for path in paths:
        commit, text = git_show(EVALS, path)
        run, model = Path(path).stem.split("_", 1)
        for n, line in enumerate(text.splitlines()):
            d = json.loads(line)
            a = d.get("answer") or ""
            ep = entry.get(d["id"])
            if not a.strip() or not ep:
                continue
            n_f = a.count("```")
            blocks = FENCE.findall(a)
            if n_f == 0:
                g = "bare"
            elif n_f % 2 == 1:
                g = "open"
            elif len(blocks) > 1:
                g = "multi"
            elif a.strip().endswith("```") and not a.strip().startswith("```"):
                g = "prose_before"
            elif not a.strip().endswith("```"):
                g = "prose_after"
            else:
                g = "plain"
            groups[g].append((path, commit, model, n, d["id"], ep, a, run))
    take = {"multi": 999, "prose_after": 70, "prose_before": 30, "bare": 30, "plain": 40, "open": 14}
    cases = []
    for g, items in groups.items():
        for path, commit, model, n, tid, ep, a, run in rng.sample(items, min(len(items), take[g])):
            defn = re.compile(rf"^\s*(?:async\s+)?def {re.escape(ep)}\s*\(", re.M)
            if g == "bare":
                exp = a if defn.search(a) else None
            else:
                blocks = [b for _, b in FENCE.findall(a)]
                defining = [b for b in blocks if defn.search(b)]
                exp = defining[-1] if defining else (blocks[0] if len(blocks) == 1 else None)
            cases.append({
                "id": f"simple-evals-ru-{run}-{model}-{tid.replace('/', '_')}",
                "parser": "code",
                "entry_point": ep,
                "text": a,
                "expected": exp,
                "ambiguous": exp is None,
                "group": g,
                "model": model,
                "source": {"repo": EVALS, "commit": commit, "path": path, "line": n + 1},
            })
    return cases


# --- MT-bench single-answer grading by GPT-4 (FastChat llm_judge outputs) -------------------
# The judge explains, then rates 1-10 as "Rating: [[N]]"; prose often holds other numbers
# ("a scale of 1 to 10", "3 points"). Expected: the bracketed rating / 10, which is also the
# score FastChat recorded. The -origin file is an earlier run of the same judge.
MTB = "dreaming-panda/MTBench"


def mt_bench() -> list[dict]:
    rng = random.Random(10)
    cases = []
    for path in [
        "fastchat/llm_judge/data/mt_bench/model_judgment/gpt-4_single.jsonl",
        "fastchat/llm_judge/data/mt_bench/model_judgment/gpt-4_single-origin.jsonl",
    ]:
        commit, text = git_show(MTB, path)
        rows = [(n, json.loads(line)) for n, line in enumerate(text.splitlines()) if line.strip()]
        rows = [r for r in rows if r[1].get("score", -1) != -1]
        for n, r in rng.sample(rows, min(len(rows), 80)):
            cases.append({
                "id": f"mt-bench-{Path(path).stem}-{r['question_id']}-t{r['turn']}-{n}",
                "parser": "score",
                "text": r["judgment"],
                "expected": float(r["score"]) / 10.0,
                "ambiguous": False,
                "model": "gpt-4 (MT-bench judge, single-v1 prompt)",
                "source": {"repo": MTB, "commit": commit, "path": path, "line": n + 1},
            })
    return cases


# --- Native tool calls (OpenAI format: tool_calls[].function.{name, arguments}) --------------
# A case is one assistant turn as the provider returned it: its text content and its tool
# calls, each with the raw ``arguments`` string the model wrote. ``tools`` are the tools the
# harness offered (the names its trajectory file uses). Expected, per call, in order: the tool
# and the one string argument a reader takes from the arguments object — the value of its only
# key whatever that key is called (``command``, ``expression``, ``thought``, ``reservation_id``,
# ...), "" for a call without arguments; a call with several arguments keeps the whole object
# (expected ``input_json``: the object, compared as JSON).
TAU = "sierra-research/tau-bench"


def _call_case(cid: str, text: str, calls: list[dict], tools: list[str], model: str, src: dict) -> dict:
    expected = []
    for c in calls:
        args = json.loads(c["arguments"] or "{}")
        if len(args) == 0:
            expected.append({"tool": c["name"], "input": ""})
        elif len(args) == 1:
            value = next(iter(args.values()))
            key = "input" if isinstance(value, str) else "input_json"
            expected.append({"tool": c["name"], key: value})
        else:
            expected.append({"tool": c["name"], "input_json": args})
    return {
        "id": cid, "parser": "tool_call", "tools": tools, "text": text or "",
        "tool_calls": calls, "expected": expected, "ambiguous": False, "model": model, "source": src,
    }


def tau_bench() -> list[dict]:
    rng = random.Random(12)
    path = "historical_trajectories/gpt-4o-airline.json"
    commit, text = git_show(TAU, path)
    data = json.loads(text)
    pool = []
    for t, run in enumerate(data):
        for k, m in enumerate(run["traj"]):
            if m.get("role") == "assistant" and m.get("tool_calls"):
                pool.append((t, run, k, m))
    tools = sorted({c["function"]["name"] for _, _, _, m in pool for c in m["tool_calls"]})
    by_tool: dict[str, list] = {}
    for p in pool:
        by_tool.setdefault(p[3]["tool_calls"][0]["function"]["name"], []).append(p)
    quota = {"calculate": 20, "think": 20, "transfer_to_human_agents": 10, "get_user_details": 6,
             "get_reservation_details": 6, "cancel_reservation": 4, "search_direct_flight": 4,
             "update_reservation_flights": 3, "book_reservation": 2, "update_reservation_baggages": 2,
             "send_certificate": 2, "list_all_airports": 2}
    cases = []
    for name, n in quota.items():
        for t, run, k, m in rng.sample(by_tool[name], min(n, len(by_tool[name]))):
            calls = [{"id": c.get("id", ""), "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                     for c in m["tool_calls"]]
            cases.append(_call_case(
                f"tau-bench-airline-{run['task_id']}-t{run.get('trial', 0)}-{k}", m.get("content") or "", calls,
                tools, "gpt-4o (tau-bench airline, function calling)",
                {"repo": TAU, "commit": commit, "path": path, "trajectory": t, "message": k},
            ))
    return cases


def swe_agent_tool_calls() -> list[dict]:
    import ast

    git = MIRROR / "SWE-agent+SWE-agent" / "repo"
    paths = subprocess.run(
        ["git", "-C", str(git), "ls-tree", "-r", "--name-only", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.split()
    cases = []
    for path in paths:
        if not path.endswith(".traj"):
            continue
        commit, text = git_show(SWE, path)
        hist = json.loads(text).get("history", [])
        msgs = [(k, m) for k, m in enumerate(hist) if m.get("role") == "assistant" and m.get("tool_calls")]
        if not msgs:
            continue
        raw = [(k, m, m["tool_calls"] if isinstance(m["tool_calls"], list) else ast.literal_eval(m["tool_calls"]))
               for k, m in msgs]
        tools = sorted({c["function"]["name"] for _, _, tc in raw for c in tc})
        for k, m, tc in raw:
            calls = [{"id": c.get("id", ""), "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                     for c in tc]
            content = m["content"] if isinstance(m["content"], str) else ""
            cases.append(_call_case(
                f"swe-agent-fc-{hashlib.sha1(path.encode()).hexdigest()[:6]}-{k}", content, calls, tools,
                "gpt-4 (SWE-agent function-calling run)" if path.startswith("tests/")
                else "SWE-agent function-calling demonstration trajectory",
                {"repo": SWE, "commit": commit, "path": path, "history": k},
            ))
    return cases


# OpenHands' replayable test trajectories keep the provider's whole response for each agent
# step (claude-3-5-sonnet through LiteLLM, so Anthropic ``tool_use`` blocks arrive as OpenAI
# tool calls with ``toolu_`` ids; one gpt-4o). Expected as above, by eye: ``execute_bash``'s
# ``command`` (its other argument, ``is_input``, is a flag); ``finish`` without arguments is
# ""; ``str_replace_editor``'s ``command`` is the edit it selects (create/view) beside a path
# and a text, so the call is the whole object — marked ambiguous: ptebench's tools take one
# string, and such a call has no one-string reading.
OPENHANDS = "All-Hands-AI/OpenHands"


def openhands() -> list[dict]:
    git = MIRROR / "All-Hands-AI+OpenHands" / "repo"
    paths = subprocess.run(
        ["git", "-C", str(git), "ls-tree", "-r", "--name-only", "HEAD", "tests/runtime/trajs"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    cases = []
    for path in paths:
        commit, text = git_show(OPENHANDS, path)
        seen: set[str] = set()
        for e in json.loads(text):
            md = e.get("tool_call_metadata")
            if not md or md["model_response"]["id"] in seen:
                continue
            resp = md["model_response"]
            seen.add(resp["id"])
            m = resp["choices"][0]["message"]
            calls = [{"id": c.get("id", ""), "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                     for c in m.get("tool_calls") or []]
            case = _call_case(
                f"openhands-{Path(path).stem}-{e['id']}", m.get("content") or "", calls,
                ["execute_bash", "finish", "str_replace_editor", "think"], resp["model"],
                {"repo": OPENHANDS, "commit": commit, "path": path, "event": e["id"]},
            )
            for c, exp in zip(calls, case["expected"], strict=True):
                if c["name"] == "execute_bash":
                    exp.pop("input_json", None)
                    exp["input"] = json.loads(c["arguments"])["command"]
                elif c["name"] == "str_replace_editor":
                    case["ambiguous"] = True
            cases.append(case)
    return cases


# BFCL (gorilla) keeps each submitted system's results; the function-calling ones store every
# call as {name: arguments}, ``arguments`` the raw JSON string of the tool call. The parallel
# categories ask for several calls in one turn (one function called for several inputs, or
# several functions). Expected as above, per call in order (their functions take several
# arguments: the whole object; one argument: its value). From one submission whose results
# are in function-calling form (the other stored submissions write Python call syntax).
GORILLA = "ShishirPatil/gorilla"
GORILLA_COMMIT = "55e023f4d26b39cbaf00100fd04e792613ccff3c"  # PR "add Glyphh Ada 1.1 (HDC+FC)"


def bfcl_parallel() -> list[dict]:
    git = MIRROR / "ShishirPatil+gorilla" / "repo"
    rng = random.Random(7)
    cases = []
    for path in [
        "berkeley-function-call-leaderboard/result/glyphh-ada-1.1/non_live/BFCL_v4_parallel_result.json",
        "berkeley-function-call-leaderboard/result/glyphh-ada-1.1/non_live/BFCL_v4_parallel_multiple_result.json",
    ]:
        text = subprocess.run(
            ["git", "-C", str(git), "show", f"{GORILLA_COMMIT}:{path}"], capture_output=True, text=True, check=True
        ).stdout
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        rows = [r for r in rows if isinstance(r["result"], list) and len(r["result"]) > 1]
        for r in rng.sample(rows, min(15, len(rows))):
            calls = [{"id": f"{r['id']}-{j}", "name": name, "arguments": args}
                     for j, d in enumerate(r["result"]) for name, args in d.items()]
            cases.append(_call_case(
                f"bfcl-glyphh-ada-{r['id']}", "", calls, sorted({c["name"] for c in calls}),
                "Glyphh Ada 1.1 (BFCL v4 submission, function calling)",
                {"repo": GORILLA, "commit": GORILLA_COMMIT, "path": path, "id": r["id"]},
            ))
    return cases


if __name__ == "__main__":
    write("react_hotpot", react_hotpot())
    write("swe_agent", swe_agent())
    write("game24_answers", game24())
    write("humaneval_code", humaneval_answers())
    write("mt_bench_scores", mt_bench())
    write("tool_calls", tau_bench() + swe_agent_tool_calls() + openhands() + bfcl_parallel())
