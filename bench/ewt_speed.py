"""Per-call time of the wait estimator on a live-sized branch: 8 counters (multi-skill), 40
waiting, a new ticket of each service, learned service times, arrivals and abandonment.

    .venv/bin/python bench/ewt_speed.py [--runs 50] [--calls 30] [--shape large|typical]

`--shape typical`: the load bench's branch (bench/load_day.py): 6 counters (teller; teller and
customer service; teller; teller; customer service; customer service and loans), 15-25 waiting,
3 services, the strict policy.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from queue_app.waits.estimator import estimate
from queue_app.waits.model import (
    BUSY,
    Abandonment,
    ArrivalRates,
    BranchState,
    CounterState,
    ServiceTimes,
    WaitingTicket,
    WaitModel,
)

SHAPES = {
    # counters' service lists, number of waiting tickets (lowest, highest)
    "large": (
        [("teller",)] * 4 + [("teller", "cs"), ("cs", "teller"), ("cs", "loans"), ("loans", "cs")],
        (40, 40),
    ),
    "typical": (
        [("teller",), ("teller", "cs"), ("teller",), ("teller",), ("cs",), ("cs", "loans")],
        (15, 25),
    ),
}


def branch(
    rng: random.Random, now: datetime, shape: str = "large"
) -> tuple[BranchState, WaitModel]:
    services = ["teller", "cs", "loans"]
    lists, (fewest, most) = SHAPES[shape]
    n_waiting = fewest if fewest == most else rng.randint(fewest, most)
    counters = tuple(
        CounterState(
            f"C{j}",
            svcs,
            BUSY,
            busy_since=now - timedelta(seconds=rng.randint(0, 600)),
            busy_service=svcs[0],
        )
        for j, svcs in enumerate(lists)
    )
    waiting = tuple(
        WaitingTicket(
            i,
            rng.choices(services, weights=[6, 3, 1])[0],
            now - timedelta(seconds=rng.randint(0, 1800)),
            rank=1 if rng.random() < 0.05 else 0,
        )
        for i in range(n_waiting)
    )
    st = ServiceTimes({"teller": 240.0, "cs": 540.0, "loans": 1080.0})
    for s, mean in (("teller", 240.0), ("cs", 540.0), ("loans", 1080.0)):
        for _ in range(200):
            st.add(s, rng.gammavariate(2.0, mean / 2.0), hour=rng.randint(8, 14))
    model = WaitModel(
        st,
        ArrivalRates(flat={"teller": 40.0, "cs": 12.0, "loans": 4.0}),
        Abandonment(1 / 2400),
        utc_offset_s=7 * 3600,
    )
    return BranchState(now=now, counters=counters, waiting=waiting), model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)  # EWT_RUNS' default
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="large")
    args = parser.parse_args(argv)
    rng = random.Random(1)
    now = datetime(2026, 3, 2, 3, 30, tzinfo=UTC)
    times, cpu = [], []
    for k in range(args.calls):
        state, model = branch(rng, now, args.shape)
        started, started_cpu = time.perf_counter(), time.process_time()
        estimate(state, model, runs=args.runs, seed=k)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    times.sort()
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    lists, (fewest, most) = SHAPES[args.shape]
    waiting = f"{fewest}" if fewest == most else f"{fewest}-{most}"
    # the CPU time of this process: less disturbed by other work on the machine than the clock
    print(
        f"estimate, {len(lists)} counters, {waiting} waiting, {args.runs} runs: median "
        f"{statistics.median(times) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms over {args.calls} "
        f"calls (CPU median {statistics.median(cpu) * 1000:.1f} ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
