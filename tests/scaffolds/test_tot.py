"""tot: BFS call formula 1 + b(T−1) proposals + one value request per unique child; DFS;
prompt packs; value cache; oracle only when flagged."""

from __future__ import annotations

from pathlib import Path

from ptebench.sandbox.base import SandboxSpec
from ptebench.sandbox.local import LocalSandbox
from tests.scaffolds import formulas, kit
from tests.scaffolds.kit import play, roles, run_one


def test_tot_bfs_call_formula_and_roles(tmp_path: Path) -> None:
    b, t, k = 2, 2, 3
    outs = [
        "step a\nstep b\nstep c",  # proposal for the root
        *["sure"] * k, *["likely"] * k, *["impossible"] * k,  # values of a, b, c (k samples each)
        "Answer: 1\nAnswer: 2",  # proposal for a (the last step)
        "Answer: 3",  # proposal for b
        *["likely"] * k, *["impossible"] * k, *["sure"] * k,  # values of a/1, a/2, b/3
    ]
    params = {"steps": t, "n_select": b, "n_evaluate": k}
    ep = run_one(tmp_path, {"name": "tot", "params": params}, outs, "qa")
    proposals = [c for c in ep.calls if c.role == "propose"]
    values = [c for c in ep.calls if c.role == "value"]
    assert len(proposals) == 1 + b * (t - 1)
    assert len(values) == 3 + 3 and all(c.n == k for c in values)
    # S_0 = {root} proposes 3 children; S_1 = the b best, which propose 2 + 1 children
    assert roles(ep) == formulas.tot_bfs(frontier_sizes=[1, b], children=[3, 3])
    assert ep.submission == "3"  # the highest-valued complete solution (b/3: 3 × sure)
    assert ep.metrics["final_candidates"] == ["3", "1"]


async def test_tot_prompt_pack_and_value_cache() -> None:
    outs = [
        "1 * 2 = 2 (left: 2 3 4)\n2 * 1 = 2 (left: 2 3 4)\n3 + 4 = 7 (left: 1 2 7)",
        "sure", "impossible",  # one value per distinct prompt: 'left 2 3 4' is asked once
        "2 * 3 = 6 (left: 4 6)\nAnswer: (2 * 3) * 4 * 1",  # step-2 (last) proposal via the cot pack
        "2 * 3 = 6 (left: 4 6)\nAnswer: (2 * 3) * 4 * 1",
        "likely", "sure", "likely", "sure",
    ]
    played = await play("tot", {"steps": 2, "n_select": 2, "n_evaluate": 1}, outs, "pack")
    texts = [r.messages[-1].content for r in played.model.requests]
    assert texts[0].startswith("PROPOSE numbers: 1 2 3 4")
    assert texts[1].startswith("VALUE numbers: 2 3 4") and texts[2].startswith("VALUE numbers: 1 2 7")
    assert texts[3].startswith("COT input: 1 2 3 4") and "Steps:\n1 * 2 = 2 (left: 2 3 4)" in texts[3]
    assert any(t.startswith("VALUE-LAST puzzle 1 2 3 4 answer: (2 * 3) * 4 * 1") for t in texts)
    assert played.submission == "(2 * 3) * 4 * 1"


def test_tot_dfs_prunes_and_backtracks(tmp_path: Path) -> None:
    outs = [
        "step a\nstep b",  # root
        "impossible", "likely",  # a pruned (below 1.0), b explored
        "Answer: 5",  # proposal under b
        "sure",
    ]
    params = {"search": "dfs", "steps": 2, "n_evaluate": 1}
    ep = run_one(tmp_path, {"name": "tot", "params": params}, outs, "qa")
    # root: 2 children evaluated, a pruned; b visited: 1 child evaluated (the answer)
    assert roles(ep) == formulas.tot_dfs(expanded=[2, 1])
    assert ep.submission == "5" and ep.metrics["dfs_nodes"] == 2


def test_tot_oracle_picks_first_accepted_final_candidate(tmp_path: Path) -> None:
    kit.SCORER_CALLS.clear()
    outs = ["Answer: 41\nAnswer: 42", "sure", "likely"]
    params = {"steps": 1, "n_evaluate": 1, "oracle_feedback": True}
    ep = run_one(tmp_path, {"name": "tot", "params": params}, outs, "qa")
    assert ep.submission == "42" and ep.oracle_calls == 2 and ep.oracle_feedback
    params["oracle_feedback"] = False
    kit.SCORER_CALLS.clear()
    ep = run_one(tmp_path, {"name": "tot", "params": params}, outs, "qa")
    assert ep.submission == "41" and ep.oracle_calls == 0 and len(kit.SCORER_CALLS) == 1


async def test_tot_agentic_children_act_in_separate_forks() -> None:
    outs = [
        "bash: echo one > one.txt && ls\nbash: echo two > two.txt && ls\nnot an action!",
        "likely", "sure",
        "submit: banana", "submit: apple",
        "likely", "sure",
    ]
    root = LocalSandbox.create(SandboxSpec())
    try:
        played = await play("tot", {"steps": 2, "n_select": 2, "n_evaluate": 1}, outs, "agent", sandbox=root)
        listing = (await root.exec("ls")).stdout.split()
    finally:
        await root.close()
    obs = [s.observation for s in played.ctx.trace.steps]
    assert "one.txt" in obs[0] and "two.txt" not in obs[0]
    assert "two.txt" in obs[1] and "one.txt" not in obs[1]
    assert played.ctx.metrics["unparsed_proposals"] == 1 and played.ctx.metrics["forks"] == 2
    assert played.submission == "apple"  # the higher-valued complete state
    # the root sandbox saw no search action; the chosen state's actions were replayed into it
    assert played.ctx.metrics["adopted_actions"] == 1
    assert "one.txt" in listing and "two.txt" not in listing
