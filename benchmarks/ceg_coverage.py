"""Planted-family coverage study of the CEG estimator (issue 13).

Families are drawn from the sim law (ptebench.models.sim) by ptebench.results.synthetic
.planted_table: five sizes 1e20..1e24, tasks with difficulty δ ~ N(0, 1), each size's
effective log10 C deviating from the law by N(0, size_sd) (0 or 0.2), and four planted
enhancements with known CEG (compute shifts of −0.5, +0.5, +1.5 OOM and best-of-4 with a
perfect selector). Per method and deviation it prints: the median log10 error of the
estimate where the truth lies inside the measured sizes, the coverage of the 95% interval
inside and outside the range, how often a printed bound ('> x' / '< x') is violated by the
truth, and how often it would have been had the fitted extrapolation been printed as the
bound (ptebench before issue 13).

    python benchmarks/ceg_coverage.py                 # 40 replications, B = 400 (~15 min)
    python benchmarks/ceg_coverage.py --reps 10 --boot 200 --methods fit-logit
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from ptebench.results.synthetic import coverage_study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--boot", type=int, default=400)
    ap.add_argument("--methods", default="fit-logit,fit-loglinear,isotonic,bound")
    ap.add_argument("--settings", default="100x2,400x4",
                    help="tasks x epochs per size, comma-separated")
    ap.add_argument("--no-between", action="store_true",
                    help="also run fit-logit without the between-size term, for contrast")
    args = ap.parse_args()
    methods = tuple(m for m in args.methods.split(",") if m)
    frames = []
    t0 = time.perf_counter()
    for setting in args.settings.split(","):
        n_tasks, epochs = (int(v) for v in setting.split("x"))
        summary, _ = coverage_study(args.reps, args.boot, methods, (0.0, 0.2), n_tasks=n_tasks,
                                    epochs=epochs)
        frames.append(summary.assign(tasks=f"{n_tasks}x{epochs}"))
        if args.no_between:
            off, _ = coverage_study(args.reps, args.boot, ("fit-logit",), (0.0, 0.2),
                                    n_tasks=n_tasks, epochs=epochs, between_sizes=False)
            frames.append(off.assign(tasks=f"{n_tasks}x{epochs}", method="fit-logit (no LoF)"))
    table = pd.concat(frames, ignore_index=True)
    cols = ["tasks", "method", "size_sd", "rows", "bias_log10_inside", "coverage_inside",
            "n_inside", "coverage_outside", "n_outside", "bound_rows", "bound_violated",
            "naive_violated", "na_rows"]
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.float_format", "{:.3f}".format):
        print(f"planted-family CEG study: {args.reps} replications per setting, B = {args.boot}, "
              f"95% intervals, 4 planted enhancements x 5 sizes per family")
        print(table[cols].to_string(index=False))
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
