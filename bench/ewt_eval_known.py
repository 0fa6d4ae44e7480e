"""The wait estimator on simulated days when the replay also knows what a live branch knows
beyond the day's log: the counters' planned breaks and hours (`schedule`) and earlier days'
logs (`history`, like the live model's last weeks).

    .venv/bin/python bench/ewt_eval_known.py [--days 10] [--runs 100] [--seed 1000]
        [--kind multi] [--history-days 5] [--load 1.0] [--no-hidden]

Same days as bench/ewt_eval.py (same kinds, seeds and load); history days are the same spec on
the days before, seeds `seed x 100 + 50 + k`. Prints, per kind and per knowledge (log only,
+schedule, +history, +both), the pooled and median-over-days RMSE of the estimator and of the
baselines and the ratio estimator / best baseline. `--no-hidden`: the variant without
appointments and priority customers (the replay format cannot show them; the live state can).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from queue_app.waits.metrics import METHODS, accuracy, method_pairs
from queue_app.waits.replay import ReplayOptions, read_counters, read_visits, replay
from queue_app.waits.simulator import (
    _offset,
    generalist_spec,
    multi_skill_spec,
    single_queue_spec,
    write_day,
)

KINDS = {"single": single_queue_spec, "multi": multi_skill_spec, "generalists": generalist_spec}
NO_HIDDEN = {"appointment_share": 0.0, "no_show_rate": 0.0, "priority_share": 0.0}


def schedule_of(spec) -> dict:
    """The counters' planned absences of a simulated day: breaks, before a late opening, after an
    early closing (what the live branch has in its counter settings)."""
    tz = _offset(spec.utc_offset)
    day = date.fromisoformat(spec.day)

    def at(hm: str) -> datetime:
        return datetime.combine(day, time.fromisoformat(hm), tzinfo=tz)

    out = {}
    for c in spec.counters:
        gaps = [(at(a), at(b)) for a, b in c.breaks]
        if c.opens > spec.opens:
            gaps.append((at("00:00"), at(c.opens)))
        if c.closes < spec.closes:
            gaps.append((at(c.closes), at("23:59")))
        out[c.name] = gaps
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--kind", choices=sorted(KINDS), action="append")
    parser.add_argument("--history-days", type=int, default=5)
    parser.add_argument("--load", type=float, default=1.0)
    parser.add_argument("--no-hidden", action="store_true")
    parser.add_argument("--tmp", default="/tmp/ewt_eval_known")
    args = parser.parse_args(argv)
    Path(args.tmp).mkdir(parents=True, exist_ok=True)
    extra = NO_HIDDEN if args.no_hidden else {}
    opts = ReplayOptions(runs=args.runs)
    configs = ("log only", "+schedule", "+history", "+both")
    for kind in args.kind or list(KINDS):
        make = KINDS[kind]
        per_day = {c: {m: [] for m in METHODS} for c in configs}
        pooled = {c: {m: [] for m in METHODS} for c in configs}
        for d in range(args.days):
            seed = args.seed + d
            history = []
            for k in range(1, args.history_days + 1):
                past = (date(2026, 3, 2) - timedelta(days=k)).isoformat()
                vp, cp = (
                    f"{args.tmp}/{kind}-{seed}-h{k}.csv",
                    f"{args.tmp}/{kind}-{seed}-h{k}-c.csv",
                )
                write_day(make(args.load, day=past, **extra), seed * 100 + 50 + k, vp, cp)
                history += read_visits(vp, read_counters(cp))
            spec = make(args.load, **extra)
            vp, cp = f"{args.tmp}/{kind}-{seed}.csv", f"{args.tmp}/{kind}-{seed}-c.csv"
            write_day(spec, seed, vp, cp)
            counters = read_counters(cp)
            visits = read_visits(vp, counters)
            schedule = schedule_of(spec)
            for c in configs:
                kw = {}
                if c in ("+schedule", "+both"):
                    kw["schedule"] = schedule
                if c in ("+history", "+both") and history:
                    kw["history"] = history
                pairs = method_pairs(replay(visits, counters, opts, **kw))
                for m in METHODS:
                    per_day[c][m].append(accuracy(pairs[m]).rmse_s)
                    pooled[c][m].extend(pairs[m])
        label = f"{kind}{' (no appointments/priority)' if args.no_hidden else ''}"
        print(
            f"== {label}: {args.days} days (seeds {args.seed}..{args.seed + args.days - 1}), "
            f"load {args.load}, {args.runs} runs, history {args.history_days} days"
        )
        print(f"{'knowledge':<12}{'how':<8}" + "".join(f"{m:>14}" for m in METHODS) + "   ratio")
        for c in configs:
            for how in ("pooled", "median"):
                if how == "pooled":
                    rm = {m: accuracy(pooled[c][m]).rmse_s for m in METHODS}
                else:
                    rm = {m: statistics.median(per_day[c][m]) for m in METHODS}
                best = min(rm[m] for m in METHODS[1:])
                print(
                    f"{c:<12}{how:<8}"
                    + "".join(f"{rm[m]:>14.1f}" for m in METHODS)
                    + f"   {rm['estimator'] / best:.3f}"
                )
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
