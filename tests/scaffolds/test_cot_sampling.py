"""cot, majority and best_of_n: call counts, roles, selection, oracle honesty."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptebench.errors import ConfigError
from ptebench.registry import get
from tests.scaffolds import formulas, kit
from tests.scaffolds.kit import ADD_BAD, ADD_OK, roles, run_one


def test_cot_one_call_extracts_answer(tmp_path: Path) -> None:
    ep = run_one(tmp_path, "cot", ["6 * 7: six sevens are 42.\nAnswer: 42"], "qa")
    assert roles(ep) == formulas.self_consistency(1, one_request=True)  # CoT: one path
    assert ep.submission == "42" and ep.score is not None and ep.score.value == 1.0


def test_cot_code_submission_is_a_program(tmp_path: Path) -> None:
    ep = run_one(tmp_path, "cot", ["Think.\n```python\n    return a + b\n```"], "code")
    assert ep.submission is not None and ep.submission.startswith("def add(a, b):")
    assert "return a + b" in ep.submission and ep.score is not None and ep.score.value == 1.0


def test_cot_empty_output_is_a_wrong_answer(tmp_path: Path) -> None:
    ep = run_one(tmp_path, "cot", [""], "qa")
    assert ep.status == "ok" and ep.submission is None
    assert ep.score is not None and ep.score.value == 0.0


def test_majority_one_request_with_n_samples(tmp_path: Path) -> None:
    outs = ["Answer: 41", "Answer: 42", "Answer: 42.0", "Answer: 7", "Answer:  42 "]
    ep = run_one(tmp_path, {"name": "majority", "params": {"n": 5}}, outs, "qa")
    assert roles(ep) == formulas.self_consistency(5, one_request=True) and ep.calls[0].n == 5
    assert ep.submission == "42" and ep.metrics["distinct_answers"] == 3


def test_majority_over_multi_call_inner_runs_it_n_times(tmp_path: Path) -> None:
    # direct has no n-sample path: n separate episodes of the inner scaffold.
    outs = ["Answer: 1", "Answer: 2", "Answer: 2"]
    ep = run_one(tmp_path, {"name": "majority", "params": {"n": 3, "inner": {"name": "direct"}}}, outs, "qa")
    assert roles(ep) == formulas.self_consistency(3, one_request=False) and ep.submission == "2"


def test_best_of_n_vote_selector(tmp_path: Path) -> None:
    outs = ["Answer: 41", "Answer: 42", "Answer: 41", "I compared them.\nAnswer: 2"]
    ep = run_one(tmp_path, {"name": "best_of_n", "params": {"n": 3}}, outs, "qa")
    # n samples in one request + one vote over the 2 distinct candidates
    assert roles(ep) == formulas.best_of_n(distinct=2, code=False) and ep.submission == "42"


def test_best_of_n_skips_vote_when_all_agree(tmp_path: Path) -> None:
    ep = run_one(tmp_path, {"name": "best_of_n", "params": {"n": 2}}, ["Answer: 5", "Answer: 5"], "qa")
    assert roles(ep) == formulas.best_of_n(distinct=1, code=False) and ep.submission == "5"


def test_best_of_n_tests_selector_on_code(tmp_path: Path) -> None:
    outs = [f"```python\n{ADD_BAD}```", f"```python\n{ADD_OK}```", "assert add(2, 3) == 5\nassert add(0, 0) == 0"]
    ep = run_one(tmp_path, {"name": "best_of_n", "params": {"n": 2}}, outs, "code")
    assert roles(ep) == formulas.best_of_n(distinct=2, code=True)
    assert ep.metrics["selector"] == "tests" and ep.metrics["selector_pass_fraction"] == 1.0
    assert ep.submission is not None and "a + b" in ep.submission
    assert len(ep.steps) == 2  # each candidate's test run is a recorded sandbox step
    assert ep.score is not None and ep.score.value == 1.0


def test_best_of_n_over_reflexion_call_formula(tmp_path: Path) -> None:
    # n = 2 runs of reflexion(code, max_iters 1): each = test_gen + one implementation.
    outs = ["assert add(2, 2) == 4", f"```python\n{ADD_BAD}```"] * 2
    params = {"n": 2, "inner": {"name": "reflexion", "params": {"max_iters": 1}}}
    ep = run_one(tmp_path, {"name": "best_of_n", "params": params}, outs, "code")
    # calls = n × calls(inner) + selector = 2 × 2 + 0 (both candidates identical: no selection)
    assert roles(ep) == formulas.reflexion(trials=1, code=True) * 2


def test_oracle_selector_needs_the_flag() -> None:
    cls = get("scaffold", "best_of_n")
    with pytest.raises(ConfigError, match="oracle_feedback"):
        cls.Params.model_validate({"selector": "oracle"})
    with pytest.raises(ConfigError, match="outer scaffold"):
        cls.Params.model_validate({"inner": {"name": "reflexion", "params": {"oracle_feedback": True}}})
    with pytest.raises(ConfigError, match="inner scaffold 'cot'"):
        cls.Params.model_validate({"inner": {"name": "cot", "params": {"nonsense": 1}}})


def test_oracle_selector_is_counted_and_recorded(tmp_path: Path) -> None:
    kit.SCORER_CALLS.clear()
    outs = ["Answer: 41", "Answer: 42", "Answer: 40"]
    params = {"n": 3, "selector": "oracle", "oracle_feedback": True}
    ep = run_one(tmp_path, {"name": "best_of_n", "params": params}, outs, "qa")
    assert ep.submission == "42" and ep.oracle_feedback is True
    assert ep.oracle_calls == 2  # stopped at the first perfect score
    assert len(kit.SCORER_CALLS) == ep.oracle_calls + 1  # + the runner's final scoring
