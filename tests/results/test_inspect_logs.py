"""Inspect AI logs in and out: `ptebench ceg` on logs inspect_ai wrote itself (its mock model
on a planted ladder), `ptebench export --format inspect` read back by inspect_ai's reader and
served by a real `inspect view`, and bad logs → a clear message, exit 2."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest

pytest.importorskip("inspect_ai")

from inspect_ai.log import (  # noqa: E402
    list_eval_logs,
    read_eval_log,
    read_eval_log_sample,
    read_eval_log_sample_summaries,
    write_eval_log,
)

from ptebench.errors import UserError  # noqa: E402
from ptebench.results.inspect_logs import InspectLogError  # noqa: E402
from ptebench.results.store import load_episodes  # noqa: E402
from ptebench.results.table import load_input  # noqa: E402
from ptebench.results.transcript import load_transcript  # noqa: E402
from tests.results import inspect_ladder as L  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ptebench.cli", *args], capture_output=True,
                          text=True, env=_env(), cwd=ROOT)


def _flat(text: str) -> str:
    """Without whitespace: the CLI wraps long messages (and paths) to the terminal width."""
    return "".join(text.split())


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(folder of the six .eval logs inspect_ai wrote, the ladder's --cards file)."""
    base = tmp_path_factory.mktemp("inspect")
    logs = base / "logs"
    proc = subprocess.run([sys.executable, "-m", "tests.results.inspect_ladder", str(logs)],
                          capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cards = base / "cards.yaml"
    cards.write_text(L.CARDS_YAML)
    return logs, cards


def test_inspect_logs_become_the_planted_contract_table(ladder: tuple[Path, Path]) -> None:
    logs, cards = ladder
    assert len(list(logs.glob("*.eval"))) == len(L.SIZES) * len(L.SKILL)
    loaded = load_input(logs, cards=cards)
    t = loaded.table
    assert len(t) == len(L.SIZES) * len(L.SKILL) * L.N_SAMPLES and loaded.excluded_errors == 0
    assert set(t["scaffold"]) == set(L.SKILL), "generate alone is direct; cot keeps its name"
    assert set(t["family"]) == {"ladder"}
    for (model, scaffold), g in t.groupby(["model", "scaffold"]):
        assert g["score"].mean() == pytest.approx(L.SKILL[scaffold][model] / L.N_SAMPLES)
        assert (g["train_flop"] == L.SIZES[model]).all()
        per_call = L.PROMPT_TOKENS + L.OUTPUT_TOKENS[scaffold]
        assert g["inference_flop"].tolist() == pytest.approx(
            [2 * L.PARAMS_ACTIVE[model] * per_call] * L.N_SAMPLES)
        assert g["task_id"].nunique() == L.N_SAMPLES


def test_ceg_cli_on_inspect_logs_gives_the_planted_bounds(ladder: tuple[Path, Path]) -> None:
    logs, cards = ladder
    proc = _cli("ceg", str(logs), "--cards", str(cards), "--method", "bound", "--boot", "200",
                "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["model"]: r for r in json.loads(proc.stdout)["rows"] if r["row"] == "model"}
    assert set(rows) == set(L.SIZES)
    for model, r in rows.items():
        assert r["scaffold"] == "chain_of_thought" and r["baseline"] == "direct"
        assert r["p_enhanced"] == pytest.approx(L.SKILL["chain_of_thought"][model] / L.N_SAMPLES)
        assert r["inference_multiple"] == pytest.approx(
            (L.PROMPT_TOKENS + L.OUTPUT_TOKENS["chain_of_thought"])
            / (L.PROMPT_TOKENS + L.OUTPUT_TOKENS["direct"]))
    # cot on each of the two smaller sizes beats direct on the next size up (10× compute)
    for model in ("mockllm/ladder-1e21", "mockllm/ladder-1e22"):
        assert rows[model]["bound"] == "lower" and rows[model]["ceg"] == pytest.approx(10.0)
    text = _cli("ceg", str(logs), "--cards", str(cards), "--boot", "100")
    assert text.returncode == 0 and "chain_of_thought" in text.stdout, text.stderr


def _cli_error(*args: str) -> str:
    proc = _cli(*args)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return _flat(proc.stderr)


def _has(msg: str, *parts: str) -> bool:
    return all(_flat(p) in msg for p in parts)


def test_bad_inspect_logs_are_clear_user_errors(ladder: tuple[Path, Path], tmp_path: Path) -> None:
    logs, cards = ladder
    one = sorted(logs.glob("*.eval"))[0]
    # a model no card knows
    msg = _cli_error("ceg", str(logs), "--boot", "0")
    assert _has(msg, ".eval:", "has no model card", "--cards", "mockllm/ladder-1e2")
    # a torn log (cut mid-write)
    torn = tmp_path / "torn"
    torn.mkdir()
    data = one.read_bytes()
    (torn / one.name).write_bytes(data[: len(data) // 2])
    msg = _cli_error("ceg", str(torn), "--cards", str(cards), "--boot", "0")
    assert _has(msg, str(torn / one.name), "not a readable Inspect log")
    # a log whose samples carry no usage (rewritten through inspect_ai's own API)
    bare = tmp_path / "bare"
    bare.mkdir()
    log = read_eval_log(str(one))
    assert log.samples
    for s in log.samples:
        s.model_usage = {}
    write_eval_log(log, str(bare / one.name))
    msg = _cli_error("ceg", str(bare), "--cards", str(cards), "--boot", "0")
    assert _has(msg, str(bare / one.name), "no model usage recorded for",
                f"sample '{log.samples[0].id}'")
    # an empty folder
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = _cli_error("ceg", str(empty))
    assert _has(msg, str(empty), "no .eval files", "episodes.jsonl")
    # the same cell in two logs (a retried eval left beside the first)
    dup = tmp_path / "dup"
    (dup / "retry").mkdir(parents=True)
    shutil.copy(one, dup / one.name)
    shutil.copy(one, dup / "retry" / one.name)
    with pytest.raises(InspectLogError, match="both hold model 'mockllm/ladder-1e2"):
        load_input(dup, cards=cards)
    # a card without training compute
    nocompute = tmp_path / "nocompute.yaml"
    nocompute.write_text(L.CARDS_YAML.replace("  train_flop: 1e+21\n", ""))
    with pytest.raises(InspectLogError, match="matches card 'mockllm/ladder-1e21', which has no "
                                              "train_flop"):
        load_input(logs, cards=nocompute)
    with pytest.raises(InspectLogError, match="no score named 'accuracy'"):
        load_input(logs, cards=cards, scorer="accuracy")


# -- export ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(sim_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export")
    proc = _cli("export", str(sim_run), "--format", "inspect", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_exported_logs_read_back_with_inspects_reader(sim_run: Path, exported: Path) -> None:
    episodes = load_episodes(sim_run)
    cells: dict[tuple[str, str], list] = {}
    for e in episodes:
        cells.setdefault((e.spec.model, e.spec.scaffold_label), []).append(e)
    infos = list_eval_logs(str(exported))
    assert len(infos) == len(cells) == 6, "one log per model × scaffold"
    seen = set()
    for info in infos:
        log = read_eval_log(info.name, resolve_attachments=True)
        assert log.status == "success" and log.samples is not None
        key = (log.eval.model, log.eval.solver or "")
        seen.add(key)
        eps = {e.spec.episode_id: e for e in cells[key]}
        assert len(log.samples) == len(eps)
        for s in log.samples:
            e = eps[s.metadata["episode_id"]]
            assert s.id == f"{e.spec.task_family}/{e.spec.task_id}" and s.epoch == e.spec.epoch + 1
            if e.status == "error":
                assert s.error is not None and s.error.message == e.reason
                assert "Traceback" in s.error.traceback
            if e.score is not None and e.score.value is not None:
                assert s.scores is not None and s.scores["ptebench"].value == e.score.value
            usage = s.model_usage[log.eval.model]
            assert usage.input_tokens + (usage.input_tokens_cache_read or 0) == e.totals.prompt_tokens
            assert usage.output_tokens == e.totals.completion_tokens
            tr = load_transcript(sim_run, e.spec.episode_id)
            answered = [c for c in tr.calls if c.error is None and c.choices]
            if answered:
                sent = tr.call_messages(answered[-1].index)
                assert [(m.role, m.text) for m in s.messages[: len(sent)]] == [
                    (m.role, m.content) for m in sent]
                assert s.messages[len(sent)].role == "assistant"
                assert s.messages[len(sent)].text == answered[-1].choices[0].text
            assert s.target == (tr.expected or "")
            model_events = [ev for ev in s.events if ev.event == "model"]
            assert [ev.output.usage.output_tokens for ev in model_events] == [
                c.usage.completion_tokens for c in tr.calls], "one ModelEvent per call"
            assert [ev.result for ev in s.events if ev.event == "tool"] == [
                a.shown for a in tr.actions if a.tool is not None]
        scored = [s.scores["ptebench"].as_float() for s in log.samples if s.scores]
        assert log.results is not None
        assert log.results.scores[0].metrics["mean"].value == pytest.approx(
            sum(scored) / len(scored))
        first = log.samples[0]
        assert read_eval_log_sample(info.name, first.id, first.epoch).uuid == first.uuid
        assert len(read_eval_log_sample_summaries(info.name)) == len(log.samples)
    assert seen == set(cells)


def test_export_round_trip_gives_the_same_ceg(sim_run: Path, exported: Path) -> None:
    a = _cli("ceg", str(sim_run), "--boot", "200", "--format", "json")
    b = _cli("ceg", str(exported), "--boot", "200", "--format", "json")
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    ra, rb = json.loads(a.stdout), json.loads(b.stdout)
    assert ra["excluded_error_episodes"] == rb["excluded_error_episodes"] > 0
    exact = ("scaffold", "model", "row", "flags", "simulated", "n_episodes", "bound")
    assert [{k: r[k] for k in exact} for r in ra["rows"]] == [
        {k: r[k] for k in exact} for r in rb["rows"]]
    # FLOPs are summed per call in the run, per episode in the export: equal up to rounding
    for x, y in zip(ra["rows"], rb["rows"], strict=True):
        for k in ("ceg", "ceg_lo", "ceg_hi", "p_enhanced", "p_baseline", "inference_multiple"):
            assert (x[k] is None) == (y[k] is None), (x["model"], k)
            if x[k] is not None:
                assert x[k] == pytest.approx(y[k], rel=1e-9), (x["model"], k)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_inspect_view_serves_the_exported_logs(exported: Path) -> None:
    port = _free_port()
    view = subprocess.Popen([sys.executable, "-m", "inspect_ai", "view", "--log-dir",
                             str(exported), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env())
    try:
        base = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 180
        listing = None
        while listing is None:
            assert view.poll() is None, view.stdout.read().decode() if view.stdout else ""
            assert time.monotonic() < deadline, "inspect view did not come up"
            try:
                listing = httpx.get(f"{base}/logs", timeout=10).json()
            except httpx.TransportError:
                time.sleep(0.5)  # the server is still starting
        names = [f["name"] for f in listing["files"]]
        assert len(names) == 6 and all(n.endswith(".eval") for n in names)
        log = httpx.get(f"{base}/logs/{urllib.parse.quote(names[0], safe='')}", timeout=60).json()
        assert log["status"] == "success" and len(log["samples"]) == log["results"]["total_samples"]
    finally:
        view.terminate()
        view.wait(timeout=30)


def test_cards_and_scorer_are_refused_for_a_ptebench_run(sim_run: Path, tmp_path: Path) -> None:
    cards = tmp_path / "cards.yaml"
    cards.write_text(L.CARDS_YAML)
    with pytest.raises(UserError, match="--cards and --scorer apply to Inspect logs"):
        load_input(sim_run, cards=cards)
    with pytest.raises(UserError, match="--cards and --scorer apply to Inspect logs"):
        load_input(sim_run, scorer="match")
