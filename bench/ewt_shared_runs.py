"""Estimator runs across three processes for the same sequence of branch changes, with the
estimates per process (`EWT_SHARED` off) and shared through Redis (on).

    .venv/bin/python bench/ewt_shared_runs.py [--branches 20] [--changes 10]
        [--redis redis://127.0.0.1:6379/11] [--interval 0] [--together] [--backlog 15]

The production shape in miniature: process 0 plays a gunicorn web worker (it issues the
tickets, quoting each at issue, and reads the branch after each commit as its pusher does);
processes 1 and 2 play two asyncio realtime processes (each reads the branch after every
change, as its pusher does when a screen of the branch listens there; both read at once;
`--together`: the web process reads at the same moment, so the three race for the claim). A
SQLite database in a temporary folder (migrated, 6 counters per branch as bench/load_day.py,
4 open, `--backlog` tickets waiting at the start); the Redis database given is flushed before
and after. `--interval` is EWT_MIN_INTERVAL_S (0: every change is estimated, the count is
exactly "once per change" versus "once per change per process"). Prints the runs per process
and the CPU time spent in the estimator (`time.process_time` around each call).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_day import COUNTERS  # the load bench's six counters

NOW = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Tuesday 10:00 in Jakarta: open


def _app(database: str, shared: bool, redis_url: str, interval: float):
    from queue_app import create_app

    return create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=database,
        EWT_SHARED=shared,
        REDIS_URL=redis_url,
        EWT_MIN_INTERVAL_S=interval,
        EWT_PRIOR_CV=0.8,
        ALERTS_ON_CHANGE="off",
    )


def _timed_estimator():
    """Count the CPU time spent in the estimator of this process."""
    from queue_app.waits import live

    spent = [0.0]
    inner = live.estimate

    def timed(*args, **kwargs):
        t0 = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - t0

    live.estimate = timed
    return spent, inner


def reader(conn, database, shared, redis_url, interval):
    """A realtime process: read the branch named on the pipe, as its pusher would."""
    from queue_app.branches.models import Branch
    from queue_app.core.db import read_only
    from queue_app.extensions import db
    from queue_app.waits import live

    app = _app(database, shared, redis_url, interval)
    spent, _ = _timed_estimator()
    while True:
        message = conn.recv()
        if message is None:
            conn.send({"runs": live.runs_made, "cpu_s": spent[0]})
            return
        with app.app_context():
            read_only(db.session)
            live.branch_estimates(db.session.get(Branch, message))
            db.session.rollback()
        conn.send("ok")


def run(database, shared, redis_url, interval, branches, changes, together=False):
    import redis

    from queue_app.branches.models import Branch
    from queue_app.extensions import db
    from queue_app.waits import live
    from tests import factories

    redis.Redis.from_url(redis_url).flushdb()
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for _ in range(2):
        ours, theirs = ctx.Pipe()
        p = ctx.Process(target=reader, args=(theirs, database, shared, redis_url, interval))
        p.start()
        pipes.append(ours)
        procs.append(p)
    app = _app(database, shared, redis_url, interval)
    live.clear_cache()
    before = live.runs_made
    spent, inner = _timed_estimator()
    with app.app_context():
        ids = [b.id for b in db.session.scalars(db.select(Branch).order_by(Branch.id))][:branches]
        for k in range(changes):
            for branch_id in ids:
                b = db.session.get(Branch, branch_id)
                factories.ticket(b, "teller", now=NOW + timedelta(seconds=k + 1))
                db.session.commit()
                if together:  # the realtime processes first: all three read at once
                    for conn in pipes:
                        conn.send(branch_id)
                live.branch_estimates(db.session.get(Branch, branch_id))  # its own pusher
                db.session.rollback()
                if not together:
                    for conn in pipes:
                        conn.send(branch_id)
                for conn in pipes:
                    assert conn.recv() == "ok"
    web = {"runs": live.runs_made - before, "cpu_s": spent[0]}
    results = [web]
    for conn in pipes:
        conn.send(None)
        results.append(conn.recv())
    for p in procs:
        p.join()
    live.estimate = inner
    redis.Redis.from_url(redis_url).flushdb()
    return results


def seed(database, branches, backlog):
    import flask_migrate

    from queue_app.extensions import db
    from tests import factories

    app = _app(database, False, "", 0.0)
    with app.app_context():
        flask_migrate.upgrade()
        for _ in range(branches):
            b = factories.branch(counters=COUNTERS)
            for name in ("Loket 1", "Loket 2", "Loket 3", "Loket 5"):
                staff = factories.user(branches=[b])
                factories.open_counter(factories.counter(b, name), staff, now=NOW)
            for k in range(backlog):  # waiting before the first change, as in a busy hour
                code = ("teller", "teller", "cs", "loans")[k % 4]
                factories.ticket(b, code, now=NOW - timedelta(seconds=backlog - k))
            db.session.commit()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--branches", type=int, default=20)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--backlog", type=int, default=15, help="tickets waiting at the start")
    parser.add_argument(
        "--together", action="store_true", help="the three processes read each change at once"
    )
    args = parser.parse_args()
    report = {}
    for shared in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            database = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
            seed(database, args.branches, args.backlog)
            t0 = time.perf_counter()
            results = run(
                database,
                shared,
                args.redis,
                args.interval,
                args.branches,
                args.changes,
                args.together,
            )
            wall = time.perf_counter() - t0
        name = "shared" if shared else "per process"
        report[name] = {
            "runs": [r["runs"] for r in results],
            "total_runs": sum(r["runs"] for r in results),
            "estimator_cpu_s": [round(r["cpu_s"], 2) for r in results],
            "total_estimator_cpu_s": round(sum(r["cpu_s"] for r in results), 2),
            "wall_s": round(wall, 1),
        }
    print(
        json.dumps(
            {
                "branches": args.branches,
                "changes_per_branch": args.changes,
                "backlog": args.backlog,
                **report,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
