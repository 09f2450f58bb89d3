"""The model calls each scaffold's paper prescribes, as functions of its parameters.

Tests compare a recorded episode's roles with these, not with a list copied from our own
output: a change in the implementation that departs from the paper's procedure fails.
Roles: ``answer`` (a solution or a trial), ``act`` (one agent step), ``propose`` /
``value`` (thought generation / state evaluation), ``reflect`` (verbal self-reflection),
``test_gen`` (self-written unit tests), ``vote`` (choosing among samples).
"""

from __future__ import annotations


def react(turns: int) -> list[str]:
    """ReAct (Yao et al. 2022, §2): one model call per Thought/Action turn, the last turn
    being the one that emits ``submit`` (Finish[answer]); a reply that parses to no action is
    one more turn."""
    return ["act"] * turns


def self_consistency(n: int, one_request: bool) -> list[str]:
    """CoT with self-consistency (Wang et al. 2023, §2): n sampled reasoning paths, then a
    majority over their answers — no extra model call. Sampled in one request (n samples) or
    as n separate runs of the inner scaffold."""
    return ["answer"] if one_request else ["answer"] * n


def best_of_n(distinct: int, code: bool) -> list[str]:
    """Best-of-n: n samples in one request, then a selector. For code, the selector runs
    self-written tests (one ``test_gen``, as CodeT, Chen et al. 2022); for text, one ``vote``
    over the candidates (universal self-consistency, Chen et al. 2023) — skipped when all n
    samples agree."""
    if code:
        return ["answer", "test_gen"]
    return ["answer"] + (["vote"] if distinct > 1 else [])


def reflexion(trials: int, code: bool) -> list[str]:
    """Reflexion (Shinn et al. 2023, Alg. 1): per trial the Actor answers and the Evaluator
    scores; after a failed trial that is not the last, Self-Reflection writes a lesson. For
    programming (§4.2) the unit tests are written once, up front, and evaluation runs them
    (no model call); for reasoning the evaluator is a model call (``value``)."""
    roles = ["test_gen"] if code else []
    for t in range(trials):
        roles.append("answer")
        if not code:
            roles.append("value")
        if t < trials - 1:
            roles.append("reflect")
    return roles


def tot_bfs(frontier_sizes: list[int], children: list[int]) -> list[str]:
    """Tree of Thoughts, BFS (Yao et al. 2023, Alg. 1): at step t, one proposal per state of
    the frontier S_{t-1}, then one evaluation per new candidate in S'_t; the b best form S_t."""
    roles: list[str] = []
    for states, kids in zip(frontier_sizes, children, strict=True):
        roles += ["propose"] * states + ["value"] * kids
    return roles


def tot_dfs(expanded: list[int]) -> list[str]:
    """Tree of Thoughts, DFS (Yao et al. 2023, Alg. 2): at each visited state one proposal,
    then one evaluation per child; children below the threshold are pruned (not visited)."""
    roles: list[str] = []
    for kids in expanded:
        roles += ["propose"] + ["value"] * kids
    return roles


def lats_code(iterations: int, n: int, failing_children: list[int] | None = None) -> list[str]:
    """LATS for programming (Zhou et al. 2024, §4 and App. on HumanEval): the self-tests are
    written once; the root program is generated, fails its tests and is reflected on; then
    per MCTS iteration one expansion samples n children, and each child is evaluated
    (``value``, the LM score mixed with the test pass rate) and, if it fails its tests,
    reflected on. Search stops when a child passes its self-tests. ``failing_children`` gives
    per iteration how many children were evaluated before a pass (default: all n fail)."""
    roles = ["test_gen", "answer", "reflect"]
    for i in range(iterations):
        roles.append("answer")
        if failing_children is None:
            roles += ["value", "reflect"] * n
            continue
        roles += ["value", "reflect"] * failing_children[i] + ["value"]
    return roles
