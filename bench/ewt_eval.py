"""Evaluate the wait estimator on simulated branch days against the common baselines.

    .venv/bin/python bench/ewt_eval.py [--days 10] [--runs 100] [--seed 1000] [--kind multi]
        [--load 1.0] [--history-days 5] [--knowledge log --knowledge live ...]

Simulates N days of each kind (queue_app/waits/simulator.py, fixed seeds: single queue;
multi-skill with specialised counters; multi-skill with generalist counters), replays each
(queue_app/waits/replay.py: every prediction from what was known at the ticket's arrival) and
prints, per kind and per knowledge, the pooled RMSE, MAE, bias and share within
+-max(2 min, 20%) of the estimator and of each baseline (queue length, last-to-enter-service,
head-of-line), the median of the daily RMSEs, the ratio of the estimator's RMSE to the best
baseline's, and how often the actual wait fell above the quoted range's high end (and below its
low end). The knowledge given to the replay, estimator and baselines alike:

- `log`: the columns of the replay format only (DESIGN.md): no priority classes, no
  appointments, staffing inferred from the log;
- `live`: what the live system also knows: each ticket's priority class and appointment time
  (the optional columns; the queue-length baseline then counts the tickets really ahead) and
  `--history-days` earlier days (the same spec on the days before, seeds `seed x 100 + 50 + k`),
  as the live model learns from the last weeks;
- `plan`: `live` and the counters' planned breaks and hours (the optional `absences` column),
  which a branch with a staff plan would know;
- `oracle`: `plan` and the simulator's own model instead of a learned one (service-time
  distributions, arrival rates per hour, the share of priority arrivals, the give-up hazard):
  no branch knows it; what is left of the error is the randomness still to come (the service
  times of the tickets ahead, arrivals, give-ups), so this bounds what better learning could
  gain.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from queue_app.waits.metrics import (
    METHODS,
    accuracy,
    coverage,
    format_table,
    method_pairs,
)
from queue_app.waits.replay import ReplayOptions, read_counter_file, read_visits, replay
from queue_app.waits.simulator import (
    generalist_spec,
    multi_skill_spec,
    single_queue_spec,
    true_model,
    write_day,
)

KINDS = {"single": single_queue_spec, "multi": multi_skill_spec, "generalists": generalist_spec}
KNOWLEDGE = ("log", "live", "plan", "oracle")


def read_day(visits_path: str, counters_path: str):
    counters, schedule = read_counter_file(counters_path)
    return read_visits(visits_path, counters), counters, schedule


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--runs", type=int, default=100, help="simulation runs per estimate")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first day")
    parser.add_argument("--kind", choices=sorted(KINDS), action="append")
    parser.add_argument("--knowledge", choices=KNOWLEDGE, action="append")
    parser.add_argument("--history-days", type=int, default=5)
    parser.add_argument("--tmp", default="/tmp/ewt_eval")
    parser.add_argument("--load", type=float, default=1.0, help="scale every arrival rate")
    args = parser.parse_args(argv)
    Path(args.tmp).mkdir(parents=True, exist_ok=True)
    opts = ReplayOptions(runs=args.runs)
    knowledge = args.knowledge or list(KNOWLEDGE)
    for kind in args.kind or list(KINDS):
        make = KINDS[kind]
        per_day = {k: {m: [] for m in METHODS} for k in knowledge}
        pooled = {k: {m: [] for m in METHODS} for k in knowledge}
        ranges = {k: [] for k in knowledge}
        started = time.perf_counter()
        tickets = 0
        for d in range(args.days):
            seed = args.seed + d
            files = {}
            for recorded in (False, True):
                vp = f"{args.tmp}/{kind}-{seed}-{int(recorded)}.csv"
                cp = f"{args.tmp}/{kind}-{seed}-{int(recorded)}-counters.csv"
                write_day(make(args.load), seed, vp, cp, recorded=recorded)
                files[recorded] = read_day(vp, cp)
            history = []
            if set(knowledge) - {"log"}:
                for k in range(1, args.history_days + 1):
                    past = (date.fromisoformat(make().day) - timedelta(days=k)).isoformat()
                    vp = f"{args.tmp}/{kind}-{seed}-h{k}.csv"
                    cp = f"{args.tmp}/{kind}-{seed}-h{k}-counters.csv"
                    write_day(make(args.load, day=past), seed * 100 + 50 + k, vp, cp, recorded=True)
                    history += read_day(vp, cp)[0]
            for k in knowledge:
                visits, counters, schedule = files[k != "log"]
                kw = {}
                if k != "log" and history:
                    kw["history"] = history
                if k in ("plan", "oracle"):
                    kw["schedule"] = schedule
                if k == "oracle":
                    kw["known_model"] = true_model(make(args.load), seed=seed)
                predictions = replay(visits, counters, opts, **kw)
                if k == knowledge[0]:
                    tickets += len(predictions)
                pairs = method_pairs(predictions)
                for m in METHODS:
                    per_day[k][m].append(accuracy(pairs[m]).rmse_s)
                    pooled[k][m].extend(pairs[m])
                ranges[k].extend(
                    (p.low_s, p.high_s, p.actual_s) for p in predictions if p.actual_s is not None
                )
        elapsed = time.perf_counter() - started
        print(
            f"== {kind}: {args.days} days (seeds {args.seed}..{args.seed + args.days - 1}), "
            f"load {args.load}, {tickets} tickets, {args.runs} runs per estimate, "
            f"history {args.history_days} days, {elapsed:.0f} s"
        )
        for k in knowledge:
            table = {m: accuracy(pooled[k][m]) for m in METHODS}
            print(f"-- knowledge: {k} (pooled)")
            print("\n".join(format_table(table)))
            best = min(METHODS[1:], key=lambda m: table[m].rmse_s)
            ratio = table["estimator"].rmse_s / table[best].rmse_s
            vs_ql = table["estimator"].rmse_s / table["queue_length"].rmse_s
            medians = {m: statistics.median(per_day[k][m]) for m in METHODS}
            best_median = min(medians[m] for m in METHODS[1:])
            print(
                f"{k}: estimator RMSE / best baseline ({best}) = {ratio:.3f} pooled, "
                f"{medians['estimator'] / best_median:.3f} median of days; "
                f"/ queue length = {vs_ql:.3f}"
            )
            above, below = coverage(ranges[k])
            print(
                f"{k}: range (q{opts.low_q:.2f}-q{opts.high_q:.2f}): actual above the high end "
                f"{above:.1%}, below the low end {below:.1%}"
            )
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
