"""Do the live dashboard and the reports stay fast as history grows? (issue 6, "Scale")

Loads a year of history for 50 branches into a PostgreSQL database of its own, first about
50 thousand tickets, measures, then grows the same database to about 5 million tickets and
measures again, and prints for each read:

- the median and the p95 time of `--runs` calls (after `--warm` calls that are not counted),
- the p95 ratio 5 million / 50 thousand (the aim: under 2);

and, for each size, the time the snapshot job took (`reports.jobs.snapshot_closed_periods`,
run once after loading, as production runs it after each night's close: it stores the
report of the day, the week and the month just closed of every branch).

The reads are the code the pages run, called as the pages call them:

- `overview`: the network overview of the live dashboard (`dashboard.queries`, every branch:
  waiting, longest wait, average wait over the last hour, open counters, served today,
  today's NPS, open alerts);
- `month`: the monthly report of one branch (`reports.queries.report`: tickets, waits with
  their median and 90th percentile, service times, abandonment, no-shows, share within
  target, by day, service, counter and staff member, the heat map) for the last full month:
  a closed period, so it is read from the figures the job stored (`reports/snapshots.py`);
- `month-live`: the same report worked out from its tickets (`reports.queries.compute`, on
  PostgreSQL the one statement of `reports/aggregate.py`), bypassing the store: what the
  first read of a closed period, and every read of an open one, costs.

The history is written with set-based SQL (`generate_series`), not the ORM: every ticket is
a finished visit step like the ones the engine leaves (94% served, 3% no-show, 3% left before
the call), spread over the opening hours of a branch's days in its time zone, one number
sequence per service and day; today each branch also has waiting tickets and open counters,
so the live figures have something to count. The stored reports are deleted whenever the
history is (re)written. Run:

    .venv/bin/python bench/history_scale.py                 # 50 k, then 5 M
    .venv/bin/python bench/history_scale.py --small 50000 --large 5000000 --runs 30

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust); database `queue_app_bench_scale`
is dropped and created (`--database-url`). Loading 5 million tickets takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

BRANCHES = 50
DAYS = 365
SERVICES = [("teller", "A", 240), ("cs", "B", 720), ("loans", "C", 1200), ("cards", "D", 480)]
COUNTERS = [
    ("Teller 1", ["teller"]),
    ("Teller 2", ["teller", "cards"]),
    ("Teller 3", ["teller"]),
    ("CS 1", ["cs", "cards"]),
    ("CS 2", ["cs", "loans"]),
    ("Kredit", ["loans", "cs"]),
]


def make_app(url: str):
    from queue_app import create_app

    return create_app("testing", SQLALCHEMY_DATABASE_URI=url)


def recreate_database(url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def build_network(app) -> list[int]:
    """50 branches in three Indonesian time zones, each with four services and six
    counters, a manager and six members of staff."""
    import flask_migrate

    from queue_app.accounts.models import Role
    from queue_app.extensions import db
    from tests import factories

    zones = ["Asia/Jakarta"] * 30 + ["Asia/Makassar"] * 15 + ["Asia/Jayapura"] * 5
    with app.app_context():
        flask_migrate.upgrade()
        ids = []
        for i in range(BRANCHES):
            b = factories.branch(
                f"B{i:03d}", timezone=zones[i], services=SERVICES, counters=COUNTERS
            )
            b.name = f"Cabang {i:03d}"
            factories.user(f"mgr{i:03d}", role=Role.BRANCH_MANAGER, branches=[b])
            for s in range(len(COUNTERS)):
                factories.user(f"staff{i:03d}-{s}", branches=[b])
            db.session.flush()
            ids.append(b.id)
        db.session.commit()
        return ids


# One statement per batch of days: every (branch, day) gets `per_day` tickets. Ticket k of a
# day arrives at 08:00 local + k x (7 h / per_day), waits 1-25 minutes and is served for 2-14
# minutes (pseudo-random from hashes of its ids, the same on every run).
HISTORY = text(
    """
WITH days AS (
  SELECT b.id AS branch_id, b.timezone AS tz, d::date AS day
  FROM branches b, generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') d
  WHERE b.code LIKE 'B%' AND extract(isodow FROM d) < 7
),
slots AS (
  SELECT days.*, k,
         ((days.day + time '08:00') AT TIME ZONE days.tz)
           + make_interval(secs => k * 25200.0 / :per_day) AS arrived,
         abs(hashtext(days.branch_id || ':' || days.day || ':' || k)) AS h
  FROM days, generate_series(1, :per_day) k
),
v AS (
  INSERT INTO visits (branch_id, token, arrived_at, closed_at)
  SELECT branch_id, md5(branch_id || ':' || day || ':' || k) || md5(k || ':' || day),
         arrived, arrived + interval '40 minutes'
  FROM slots
  RETURNING id, branch_id, arrived_at, token
)
INSERT INTO tickets (visit_id, step, branch_id, service_id, business_day, sequence, number,
                     priority, source, status, issued_at, queue_since, called_at,
                     last_called_at, started_at, finished_at, recall_count, counter_id,
                     staff_id, outcome_code, arrival_confirmed, moved_back_count, quoted_wait_s)
SELECT v.id, 1, s.branch_id, svc.id, s.day, s.k, svc.prefix || lpad(s.k::text, 3, '0'),
       'normal', 'kiosk',
       CASE WHEN s.h % 100 < 94 THEN 'finished' WHEN s.h % 100 < 97 THEN 'no_show'
            ELSE 'cancelled' END,
       s.arrived, s.arrived,
       CASE WHEN s.h % 100 < 97 THEN s.arrived + make_interval(secs => 60 + s.h % 1440) END,
       CASE WHEN s.h % 100 < 97 THEN s.arrived + make_interval(secs => 60 + s.h % 1440) END,
       CASE WHEN s.h % 100 < 94 THEN s.arrived + make_interval(secs => 90 + s.h % 1440) END,
       s.arrived + make_interval(secs => 90 + s.h % 1440 + 120 + (s.h / 7) % 720),
       0,
       CASE WHEN s.h % 100 < 97 THEN c.id END,
       CASE WHEN s.h % 100 < 97 THEN c.staff END,
       CASE WHEN s.h % 100 < 94 THEN 'served' END,
       true, 0, 60 + (s.h / 3) % 1200
FROM slots s
JOIN v ON v.token = md5(s.branch_id || ':' || s.day || ':' || s.k) || md5(s.k || ':' || s.day)
JOIN LATERAL (
  SELECT id, prefix FROM services WHERE branch_id = s.branch_id ORDER BY position, id
  OFFSET (s.k % 4) LIMIT 1
) svc ON true
JOIN LATERAL (
  SELECT c.id,
         (SELECT ub.user_id FROM user_branches ub WHERE ub.branch_id = s.branch_id
          ORDER BY ub.user_id OFFSET ((s.h / 11) % 6) LIMIT 1) AS staff
  FROM counters c WHERE c.branch_id = s.branch_id ORDER BY c.id OFFSET ((s.h / 5) % 6) LIMIT 1
) c ON true
"""
)


def load_history(app, tickets: int, *, until: datetime) -> int:
    """Grow the history to about `tickets` tickets over the year before `until`; returns the
    tickets per branch-day used (the whole year is rewritten at that density)."""
    from queue_app.extensions import db

    open_days = round(DAYS * 6 / 7)
    per_day = max(1, round(tickets / (BRANCHES * open_days)))
    with app.app_context():
        conn = db.session.connection()
        # the history written before (never today's live tickets, which have a journal)
        conn.execute(text("DELETE FROM report_snapshots"))  # worked out from the old history
        conn.execute(
            text("DELETE FROM tickets WHERE business_day < :today"), {"today": until.date()}
        )
        conn.execute(
            text(
                "DELETE FROM visits v"
                " WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.visit_id = v.id)"
            )
        )
        db.session.commit()
        last = (until - timedelta(days=1)).date()
        first = last - timedelta(days=DAYS - 1)
        step = 30
        day = first
        while day <= last:
            end = min(day + timedelta(days=step - 1), last)
            db.session.execute(HISTORY, {"first": day, "last": end, "per_day": per_day})
            db.session.commit()
            day = end + timedelta(days=1)
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        return per_day


def live_today(app, now: datetime) -> None:
    """Today on every branch: four counters open, 20 customers in the last 40 minutes, eight
    of them served, one at each open counter, the rest waiting."""
    from queue_app.accounts.models import User
    from queue_app.branches.models import Branch
    from queue_app.extensions import db
    from queue_app.tickets import services as engine

    with app.app_context():
        for branch in db.session.scalars(db.select(Branch).where(Branch.code.like("B%"))):
            branch.opening_hours = {str(d): [["00:00", "23:59"]] for d in range(7)}
            staff = sorted(
                (u for u in db.session.scalars(db.select(User)) if branch in u.branches),
                key=lambda u: u.id,
            )
            counters = sorted(branch.counters, key=lambda c: c.id)[:4]
            start = now - timedelta(minutes=40)
            for c, u in zip(counters, staff[1:], strict=False):
                engine.open_counter(c, u, now=start)
            services = sorted(branch.services, key=lambda s: s.id)
            for k in range(20):
                engine.issue_ticket(branch, services[k % 4], now=start + timedelta(minutes=k))
            for k in range(12):
                c = counters[k % 4]
                u = staff[1 + k % 4]
                active = engine.active_ticket(c)
                if active is not None:
                    engine.start(active, u, now=start + timedelta(minutes=20 + k))
                    engine.finish(
                        active, u, now=start + timedelta(minutes=21 + k), outcome="served"
                    )
                engine.call_next(c, u, now=start + timedelta(minutes=21 + k))
            db.session.commit()


def count(app, table: str) -> int:
    from queue_app.extensions import db

    with app.app_context():
        return db.session.scalar(text(f"SELECT count(*) FROM {table}"))


def timed(fn, runs: int, warm: int) -> list[float]:
    for _ in range(warm):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/queue_app_bench_scale"
    )
    parser.add_argument("--small", type=int, default=50_000)
    parser.add_argument("--large", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warm", type=int, default=3)
    parser.add_argument(
        "--reads",
        default="overview,month,month-live",
        help="the reads to time, comma separated",
    )
    args = parser.parse_args(argv)

    from queue_app.config import normalise_database_url

    url = normalise_database_url(args.database_url)
    recreate_database(url)
    app = make_app(url)
    build_network(app)
    now = datetime.now(UTC)
    reads = {k: v for k, v in reads_for(app, now).items() if k in args.reads.split(",")}
    results = {}
    for label, size in (("small", args.small), ("large", args.large)):
        started = time.perf_counter()
        load_history(app, size, until=now)
        if label == "small":
            live_today(app, now)
        loaded_s = time.perf_counter() - started
        n = count(app, "tickets")
        print(f"{label}: {n:,} tickets loaded in {loaded_s:.0f} s", flush=True)
        snapshot_s, stored = snapshot_job(app, now)
        print(f"{label}: snapshot job stored {stored} reports in {snapshot_s:.1f} s", flush=True)
        results[label] = {name: timed(fn, args.runs, args.warm) for name, fn in reads.items()}
        results[label]["_n"] = n
        results[label]["_job"] = snapshot_s
    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
    print(f"{'read':<10} {'tickets':>11} {'median ms':>10} {'p95 ms':>8}")
    for name in reads:
        for label in ("small", "large"):
            values = results[label][name]
            print(
                f"{name:<10} {results[label]['_n']:>11,} "
                f"{statistics.median(values):>10.1f} {p95(values):>8.1f}"
            )
        ratio = p95(results["large"][name]) / p95(results["small"][name])
        print(f"{name:<10} p95 ratio large/small: {ratio:.2f} (aim: under 2)")
    for label in ("small", "large"):
        print(
            f"snapshot job at {results[label]['_n']:>11,} tickets: "
            f"{results[label]['_job']:.1f} s ({BRANCHES} branches x day, week, month)"
        )
    return 0


def snapshot_job(app, now: datetime) -> tuple[float, int]:
    """Run the snapshot job once (every branch's day, week and month just closed); its time
    in seconds and the reports it stored."""
    from queue_app.reports.jobs import snapshot_closed_periods

    started = time.perf_counter()
    stored = snapshot_closed_periods(app, now)
    elapsed = time.perf_counter() - started
    assert stored == 3 * BRANCHES, stored
    return elapsed, stored


def reads_for(app, now: datetime):
    """The reads, each a function of nothing, run in an app context as a request has it (a
    fresh session each time: nothing cached between calls but the stored reports)."""
    from queue_app.branches.models import Branch
    from queue_app.dashboard import queries as dashboard
    from queue_app.extensions import db
    from queue_app.reports import queries as reports

    def overview():
        with app.app_context():
            branches = db.session.scalars(db.select(Branch).order_by(Branch.code)).all()
            rows = dashboard.overview(db.session, branches, now)
            assert len(rows) == BRANCHES

    last_month = (now.replace(day=1) - timedelta(days=1)).date()

    def month():
        with app.app_context():
            branch = db.session.scalars(db.select(Branch).where(Branch.code == "B007")).one()
            made = reports.report([branch], "month", last_month, now=now)
            assert made.total.issued > 0

    def month_live():
        with app.app_context():
            branch = db.session.scalars(db.select(Branch).where(Branch.code == "B007")).one()
            made = reports.compute([branch], "month", last_month)
            assert made.total.issued > 0

    return {"overview": overview, "month": month, "month-live": month_live}


if __name__ == "__main__":
    sys.exit(main())
