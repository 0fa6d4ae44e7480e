#!/usr/bin/env python3
"""CPU of one visit through the API in one process, with the branch's wait estimate reused
and with it made again after every change: what the estimator costs a web process.

A round is what a busy branch does for one customer: `POST /api/v1/branches/<code>/tickets`
(anonymous), then counter `Loket 1` calls the next ticket, starts and finishes it (its staff
token). The branch (six counters, teller, customer service and loans) has `--waiting` tickets
waiting throughout: each round adds one and serves one.

Two phases, interleaved over `--batches` batches of `--rounds` rounds, in the production
profile against PostgreSQL (`--database-url`, emptied and migrated first):

- reused: `EWT_MIN_INTERVAL_S` = 1 hour: the estimate is made once and every answer reads it;
- remade: `EWT_MIN_INTERVAL_S` = 0: the issue answer's quoted wait makes a new estimate of
  the branch's state (`EWT_RUNS` simulated runs), as happens when a branch changes less often
  than the interval.

It prints the median CPU (this thread) per round of each phase, the estimates made per round,
their ratio, and what one estimate costs. Realtime pushes are not sent (no socket listens);
the realtime processes pay for their own estimates on top (see `load_day.py`).

    .venv/bin/python bench/visit_round.py [--runs 100] [--waiting 20]
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

import issue_tickets as bench  # noqa: E402  (database reset, CLI)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/queue_app_round"
COUNTERS = [
    ("Loket 1", ["teller", "cs"]),
    ("Loket 2", ["teller"]),
    ("Loket 3", ["teller"]),
    ("Loket 4", ["teller"]),
    ("Loket 5", ["cs"]),
    ("Loket 6", ["cs", "loans"]),
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=DEFAULT_URL)
    p.add_argument("--runs", type=int, default=None, help="EWT_RUNS (default: the config's)")
    p.add_argument("--waiting", type=int, default=20, help="tickets waiting throughout (20)")
    p.add_argument("--rounds", type=int, default=20, help="rounds per batch (20)")
    p.add_argument("--batches", type=int, default=7, help="batches per phase (7)")
    p.add_argument("--profile", metavar="FILE", help="cProfile (CPU) one phase into FILE")
    p.add_argument("--profile-phase", choices=("reused", "remade"), default="remade")
    p.add_argument(
        "--statements", action="store_true", help="print the SQL of one round (reused) and stop"
    )
    p.add_argument("--width", type=int, default=160, help="characters of SQL shown (160)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    url = args.database_url
    env = {
        "DATABASE_URL": url,
        "SECRET_KEY": secrets.token_urlsafe(16),
        "API_ISSUE_RATE_LIMIT": "1000000 per minute",  # one client issues every ticket
        "FORCE_HTTPS": "0",
    }
    if args.runs is not None:
        env["EWT_RUNS"] = str(args.runs)
    bench.reset_postgres(url)
    bench.run_cli(["db", "upgrade"], {**bench.base_env(), **env, "QUEUE_APP_PROFILE": "production"})
    os.environ.update(env)
    instance = tempfile.mkdtemp(prefix="queue_app_round_")
    atexit.register(shutil.rmtree, instance, ignore_errors=True)
    os.environ["QUEUE_APP_INSTANCE"] = instance

    from queue_app import create_app
    from queue_app.core.types import utcnow
    from queue_app.extensions import db
    from queue_app.tickets import services as engine
    from queue_app.waits import live
    from tests import factories

    app = create_app("production")
    with app.app_context():
        branch = factories.branch("JKT01", counters=COUNTERS)
        branch.name = "KCU Jakarta Sudirman"
        branch.opening_hours = {d: [["00:00", "23:59:59"]] for d in DAYS}
        counters = sorted(branch.counters, key=lambda c: c.position)
        staff = factories.user("jkt01.staff1", branches=[branch])
        token = factories.token(staff, now=utcnow())
        for k in range(args.waiting):
            factories.ticket(branch, ("teller", "cs", "loans")[k % 3], now=utcnow())
        counter_id = counters[0].id
        engine.open_counter(counters[0], staff, now=utcnow())
        db.session.commit()

    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}

    def post(path, *, headers=None, json=None, expect=(200, 201)):
        response = client.post(f"/api/v1{path}", headers=headers or {}, json=json or {})
        if response.status_code not in expect:
            raise SystemExit(f"{path}: {response.status_code} {response.get_data(as_text=True)}")
        return response.get_json()

    by_kind = {"issue": [], "call-next": [], "start": [], "finish": []}

    def timed(kind, path, **kwargs):
        c0 = time.thread_time()
        answer = post(path, **kwargs)
        by_kind[kind].append((time.thread_time() - c0) * 1000)
        return answer

    def one_round(k):
        timed("issue", "/branches/JKT01/tickets", json={"service": ("teller", "cs")[k % 2]})
        ticket = timed("call-next", f"/counters/{counter_id}/call-next", headers=auth)
        timed("start", f"/tickets/{ticket['id']}/start", headers=auth)
        timed("finish", f"/tickets/{ticket['id']}/finish", headers=auth)

    if args.statements:
        from sqlalchemy import event

        seen: list[str] = []
        with app.app_context():
            engine_ = db.engine
        event.listen(engine_, "before_cursor_execute", lambda *a: seen.append(a[2]))
        app.config["EWT_MIN_INTERVAL_S"] = 3600.0
        for kind in ("issue", "call-next", "start", "finish"):
            by_kind[kind].clear()
        marks = []
        original = post

        def post(path, **kwargs):  # the same, with a mark per request
            marks.append((path, len(seen)))
            return original(path, **kwargs)

        one_round(0)
        marks.append(("end", len(seen)))
        for (path, a), (_next, b) in itertools.pairwise(marks):
            print(f"{path}: {b - a} statements")
            for sql in seen[a:b]:
                print("   ", " ".join(sql.split())[: args.width])
        return 0

    phases = {"reused": 3600.0, "remade": 0.0}
    cpu = {name: [] for name in phases}
    made = dict.fromkeys(phases, 0)
    k = 0
    for _warm in range(5):  # warm-up: caches, the learned model, connections
        one_round(k)
        k += 1
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)  # CPU, not waiting
    for _batch in range(args.batches):
        for name, interval in phases.items():
            app.config["EWT_MIN_INTERVAL_S"] = interval
            before_runs = live.runs_made
            marks = {kind: len(values) for kind, values in by_kind.items()}
            for _ in range(args.rounds):
                c0 = time.thread_time()
                if profiler is not None and name == args.profile_phase:
                    profiler.runcall(one_round, k)
                else:
                    one_round(k)
                cpu[name].append((time.thread_time() - c0) * 1000)
                k += 1
            made[name] += live.runs_made - before_runs
            if name != "reused":  # per-kind figures: the reused phase only
                for kind, values in by_kind.items():
                    del values[marks[kind] :]

    total = args.batches * args.rounds
    runs = app.config.get("EWT_RUNS")
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"EWT_RUNS={runs}, {args.waiting} waiting, {total} rounds per phase, 4 requests each")
    med = {}
    for name in phases:
        med[name] = statistics.median(cpu[name])
        print(
            f"  {name:7s} CPU per round median {med[name]:6.2f} ms  "
            f"(p90 {statistics.quantiles(cpu[name], n=10)[-1]:6.2f})  "
            f"estimates per round {made[name] / total:.2f}"
        )
    kinds = ", ".join(f"{kind} {statistics.median(v):.2f}" for kind, v in by_kind.items())
    print(f"  reused: CPU per request median (ms): {kinds}")
    ratio = med["remade"] / med["reused"]
    extra = (made["remade"] - made["reused"]) / total
    per_estimate = (med["remade"] - med["reused"]) / extra if extra > 0 else float("nan")
    print(f"ratio remade / reused: {ratio:.2f}; one estimate costs about {per_estimate:.1f} ms")
    if profiler is not None:
        profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
