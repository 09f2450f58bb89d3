"""Write Inspect AI logs of a model ladder with inspect_ai itself: ``python -m
tests.results.inspect_ladder OUT_DIR``.

Three sizes of Inspect's built-in mock model (``mockllm/ladder-1e21`` … ``-1e23``) × two
solvers (``generate`` alone and ``chain_of_thought`` + ``generate``) on N_SAMPLES addition
questions scored by Inspect's ``match()``. The planted truth: a model answers question k
correctly when k < SKILL[solver][size], so the score of each cell is SKILL/N_SAMPLES, and every
call reports PROMPT_TOKENS in and OUTPUT_TOKENS[solver] out. Run in a subprocess: an Inspect
eval sets up its own event loop and logging.
"""

from __future__ import annotations

import re
import sys

N_SAMPLES = 20
SIZES = {"mockllm/ladder-1e21": 1e21, "mockllm/ladder-1e22": 1e22, "mockllm/ladder-1e23": 1e23}
SKILL = {
    # cot on each smaller size beats direct on the next size up by 6-7 of the 20 samples (the
    # same samples are right for both, so the paired margin holds in >= 95% of bootstrap
    # replicates: a data-supported "> 10"); a one-sample margin would not support it
    "direct": {"mockllm/ladder-1e21": 2, "mockllm/ladder-1e22": 5, "mockllm/ladder-1e23": 11},
    "chain_of_thought": {"mockllm/ladder-1e21": 11, "mockllm/ladder-1e22": 18,
                         "mockllm/ladder-1e23": 19},
}
PROMPT_TOKENS = 30
OUTPUT_TOKENS = {"direct": 5, "chain_of_thought": 40}
PARAMS_ACTIVE = {"mockllm/ladder-1e21": 1e8, "mockllm/ladder-1e22": 3e8, "mockllm/ladder-1e23": 1e9}

CARDS_YAML = "cards:\n" + "".join(
    f"- name: {m}\n  provider: mockllm\n  family: ladder\n  train_flop: {c:.0e}\n"
    f"  params_active: {PARAMS_ACTIVE[m]:.0e}\n"
    for m, c in SIZES.items()
)
"""A --cards file for the ladder."""


def question(k: int) -> tuple[str, str]:
    return f"Question {k}: what is {k} + {3 * k}?", str(4 * k)


def _answerer(model: str):  # type: ignore[no-untyped-def]
    from inspect_ai.model import ModelOutput, ModelUsage

    def answer(messages, tools, tool_choice, config):  # type: ignore[no-untyped-def]
        prompt = messages[-1].text
        k = int(re.search(r"Question (\d+):", prompt)[1])  # type: ignore[index]
        solver = "chain_of_thought" if "step-by-step" in prompt else "direct"
        right = k < SKILL[solver][model]
        value = str(4 * k) if right else str(4 * k + 1)
        text = (f"{k} plus {3 * k} is {value}.\nANSWER: {value}"
                if solver == "chain_of_thought" else value)
        out = ModelOutput.from_content(model=model, content=text)
        out.usage = ModelUsage(input_tokens=PROMPT_TOKENS, output_tokens=OUTPUT_TOKENS[solver],
                               total_tokens=PROMPT_TOKENS + OUTPUT_TOKENS[solver])
        return out

    return answer


def write_logs(out: str) -> None:
    from inspect_ai import Task, eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import get_model
    from inspect_ai.scorer import match
    from inspect_ai.solver import chain_of_thought, generate

    samples = [Sample(input=question(k)[0], target=question(k)[1], id=f"q{k:02d}")
               for k in range(N_SAMPLES)]
    tasks = [Task(dataset=samples, solver=[generate()], scorer=match(), name="addition"),
             Task(dataset=samples, solver=[chain_of_thought(), generate()], scorer=match(),
                  name="addition")]
    models = [get_model(m, custom_outputs=_answerer(m)) for m in SIZES]
    logs = eval(tasks, model=models, log_dir=out, display="none", ctl_server=False,
                max_tasks=6)
    bad = [(log.location, log.status, log.error) for log in logs if log.status != "success"]
    if bad:
        raise SystemExit(f"inspect eval failed: {bad}")


if __name__ == "__main__":
    write_logs(sys.argv[1])
