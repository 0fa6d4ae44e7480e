"""How long one evaluation of a branch's alert rules takes (`alerts.services.evaluate_branch`,
what every committed change and the minute job run), on a busy branch.

    .venv/bin/python bench/alerts_evaluate.py [--database-url URL] [--waiting 60] [--runs 200]

The database is emptied and migrated first (default: a temporary SQLite file; give a
PostgreSQL database of your own, never a shared one). The branch has the demo's six rules,
8 counters (6 open, 4 of them serving), `--waiting` waiting tickets over three services and a
day of finished and no-show tickets behind it. Prints the median and p95 in milliseconds and
the statements per evaluation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate
from sqlalchemy import event, text

from queue_app import create_app
from queue_app.config import normalise_database_url
from queue_app.extensions import db

NOW = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)  # 13:00 in Jakarta


def reset(url: str):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url, ALERTS_ON_CHANGE="off")
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        flask_migrate.upgrade()
    return app


def build(waiting: int):
    from queue_app.accounts.models import Role
    from queue_app.accounts.services import create_user
    from queue_app.alerts.demo import seed_demo_rules
    from queue_app.branches.models import Branch, Counter, CounterService, Service
    from queue_app.tickets import services as engine

    branch = Branch(
        code="BENCH",
        name="Bench",
        timezone="Asia/Jakarta",
        country="ID",
        opening_hours={d: [["08:00", "15:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    )
    db.session.add(branch)
    services = [
        Service(branch=branch, code=c, name=c, names={}, prefix=p, expected_duration_s=d)
        for c, p, d in (("teller", "A", 240), ("cs", "B", 720), ("loans", "C", 1200))
    ]
    db.session.add_all(services)
    counters = []
    for i in range(8):
        c = Counter(branch=branch, name=f"Loket {i + 1}", position=i)
        c.service_links = [CounterService(service=services[i % 3], position=0)]
        counters.append(c)
    db.session.add_all(counters)
    db.session.flush()
    staff = [
        create_user(f"s{i}", role=Role.STAFF, password="rahasia-123", branches=[branch])
        for i in range(6)
    ]
    create_user("m", role=Role.BRANCH_MANAGER, password="rahasia-123", branches=[branch])
    start = NOW - timedelta(hours=5)
    for counter, person in zip(counters[:6], staff, strict=True):
        engine.open_counter(counter, person, now=start)
    # a day behind: 120 tickets called and finished (one in eight a no-show)
    for n in range(120):
        at = start + timedelta(minutes=2 * n)
        counter = counters[n % 6]
        ticket = engine.issue_ticket(branch, services[n % 3], now=at)
        engine.call_ticket(ticket, counter, staff[n % 6], now=at + timedelta(seconds=30))
        if n % 8 == 0:
            engine.mark_no_show(ticket, staff[n % 6], now=at + timedelta(seconds=60))
        else:
            engine.start(ticket, staff[n % 6], now=at + timedelta(seconds=40))
            engine.finish(ticket, staff[n % 6], now=at + timedelta(seconds=100))
    for i in range(waiting):
        engine.issue_ticket(branch, services[i % 3], now=NOW - timedelta(seconds=20 * i))
    for counter, person in zip(counters[:4], staff[:4], strict=True):
        engine.call_next(counter, person, now=NOW)
    seed_demo_rules(NOW)
    db.session.commit()
    return branch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--waiting", type=int, default=60)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    app = reset(normalise_database_url(url))
    from queue_app.alerts.services import evaluate_branch

    with app.app_context():
        branch = build(args.waiting)
        statements = []
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(1))
        times = []
        for i in range(args.runs):
            statements.clear()
            began = time.perf_counter()
            evaluate_branch(db.session, branch, NOW + timedelta(seconds=i))
            db.session.commit()
            times.append((time.perf_counter() - began) * 1000)
        times.sort()
        p95 = times[int(0.95 * (len(times) - 1))]
        print(
            f"{db.engine.dialect.name}: {args.waiting} waiting, 6 rules, {args.runs} runs: "
            f"median {statistics.median(times):.2f} ms, p95 {p95:.2f} ms, "
            f"{len(statements)} statements per evaluation"
        )


if __name__ == "__main__":
    main()
