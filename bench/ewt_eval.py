"""Evaluate the wait estimator on simulated branch days against the common baselines.

    .venv/bin/python bench/ewt_eval.py [--days 10] [--runs 100] [--seed 1000] [--kind multi]

Simulates N single-queue days and N multi-skill days (queue_app/waits/simulator.py, fixed
seeds), replays each (queue_app/waits/replay.py: every prediction from what was known at the
ticket's arrival) and prints per kind the median over days and the pooled RMSE, MAE, bias and
share within +-max(2 min, 20%) of the estimator and of each baseline, the ratio of the
estimator's RMSE to the best baseline's, and how often the actual wait fell above the quoted
range's high end (and below its low end).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from queue_app.waits.metrics import (
    METHODS,
    accuracy,
    coverage,
    format_table,
    median_accuracy,
    method_pairs,
)
from queue_app.waits.replay import ReplayOptions, read_counters, read_visits, replay
from queue_app.waits.simulator import (
    generalist_spec,
    multi_skill_spec,
    single_queue_spec,
    write_day,
)

KINDS = {"single": single_queue_spec, "multi": multi_skill_spec, "generalists": generalist_spec}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--runs", type=int, default=100, help="simulation runs per estimate")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first day")
    parser.add_argument("--kind", choices=sorted(KINDS), action="append")
    parser.add_argument("--tmp", default="/tmp/ewt_eval")
    parser.add_argument("--load", type=float, default=1.0, help="scale every arrival rate")
    args = parser.parse_args(argv)
    Path(args.tmp).mkdir(parents=True, exist_ok=True)
    opts = ReplayOptions(runs=args.runs)
    for kind in args.kind or list(KINDS):
        per_day = {m: [] for m in METHODS}
        pooled = {m: [] for m in METHODS}
        ranges = []
        started = time.perf_counter()
        tickets = 0
        for d in range(args.days):
            seed = args.seed + d
            visits_path = f"{args.tmp}/{kind}-{seed}.csv"
            counters_path = f"{args.tmp}/{kind}-{seed}-counters.csv"
            write_day(KINDS[kind](args.load), seed, visits_path, counters_path)
            counters = read_counters(counters_path)
            visits = read_visits(visits_path, counters)
            predictions = replay(visits, counters, opts)
            tickets += len(predictions)
            pairs = method_pairs(predictions)
            for m in METHODS:
                per_day[m].append(accuracy(pairs[m]))
                pooled[m].extend(pairs[m])
            ranges.extend(
                (p.low_s, p.high_s, p.actual_s) for p in predictions if p.actual_s is not None
            )
        elapsed = time.perf_counter() - started
        print(
            f"== {kind}: {args.days} days (seeds {args.seed}..{args.seed + args.days - 1}), "
            f"{tickets} tickets, {args.runs} runs per estimate, {elapsed:.0f} s"
        )
        medians = {m: median_accuracy(per_day[m]) for m in METHODS}
        pooled_acc = {m: accuracy(pooled[m]) for m in METHODS}
        print("median over days:")
        print("\n".join(format_table(medians)))
        print("pooled:")
        print("\n".join(format_table(pooled_acc)))
        for label, table in (("median", medians), ("pooled", pooled_acc)):
            best = min(METHODS[1:], key=lambda m: table[m].rmse_s)
            ratio = table["estimator"].rmse_s / table[best].rmse_s
            vs_ql = table["estimator"].rmse_s / table["queue_length"].rmse_s
            print(
                f"{label}: estimator RMSE / best baseline ({best}) = {ratio:.3f}; "
                f"/ queue length = {vs_ql:.3f}"
            )
        above, below = coverage(ranges)
        print(
            f"range (q{opts.low_q:.2f}-q{opts.high_q:.2f}): actual above the high end "
            f"{above:.1%}, below the low end {below:.1%}"
        )
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
