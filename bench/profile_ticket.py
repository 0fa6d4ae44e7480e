#!/usr/bin/env python3
"""Where does the time of one `POST /api/v1/branches/<code>/tickets` go? (in-process experiment)

Runs the production profile's app in this process (Flask test client, no HTTP server, one
thread) against the benchmark database and prints:

1. the SQL statements one ticket issue executes (SQLAlchemy `before_cursor_execute`), and the
   client/server round trips on the wire (libpq trace: BEGIN, the pool's pre-ping, COMMIT);
2. wall and CPU time per request, and Python function calls per request, for the ticket
   endpoint and for the trivial `GET /api/v1/`;
3. a breakdown of one ticket request by phase (inclusive wall / CPU, averaged), with the time
   spent inside the database driver, and how long the per-service number row and the branch
   row stay locked (first write on them until COMMIT returns): under concurrency, requests for
   one branch queue behind those locks.

    .venv/bin/python bench/profile_ticket.py                  # uses queue_app_bench as it is
    .venv/bin/python bench/profile_ticket.py --setup          # empty, migrate and seed it first

Only the database queue_app_bench is used. The numbers are for one thread with nobody else
waiting; bench/issue_tickets.py measures the real server under load.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import inspect
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

import issue_tickets as bench  # noqa: E402  (helpers: database reset, CLI)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=bench.DEFAULT_PG_URL)
    p.add_argument("--branch", default="JKT01")
    p.add_argument("--services", default="teller,cs,loans,cards")
    p.add_argument("--requests", type=int, default=300, help="timed ticket requests (300)")
    p.add_argument("--setup", action="store_true", help="empty, migrate and seed the database")
    p.add_argument(
        "--no-prototype",
        dest="prototype",
        action="store_false",
        help="skip the one-statement measuring stick (section 4)",
    )
    return p.parse_args(argv)


# --- timing wrappers -------------------------------------------------------------------------


class Phases:
    """Inclusive wall/CPU per call path (a > b > c), summed over the recorded requests."""

    def __init__(self):
        self.stack: list[str] = []
        self.wall = defaultdict(float)
        self.cpu = defaultdict(float)
        self.calls = defaultdict(int)
        self.order: list[str] = []
        self.enabled = False

    def wrap(self, owner, name: str, label: str | None = None) -> bool:
        original = getattr(owner, name, None)
        if original is None or getattr(original, "_phase_wrapped", False):
            return False
        label = label or name
        phases = self

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if not phases.enabled:
                return original(*args, **kwargs)
            path = " > ".join([*phases.stack, label])
            if path not in phases.wall:
                phases.order.append(path)
            phases.stack.append(label)
            w, c = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                phases.wall[path] += time.perf_counter() - w
                phases.cpu[path] += time.thread_time() - c
                phases.calls[path] += 1
                phases.stack.pop()

        wrapper._phase_wrapped = True
        setattr(owner, name, wrapper)
        return True

    def reset(self):
        self.wall.clear()
        self.cpu.clear()
        self.calls.clear()
        self.order.clear()


class SqlWatch:
    """Statements, time inside cursor.execute, and how long the hot rows stay locked."""

    HOT = {
        "number row (ticket_sequences)": "INSERT INTO ticket_sequences",
        "branch row (branches.event_seq)": "UPDATE branches",
    }

    def __init__(self):
        self.statements: list[str] = []
        self.exec_wall = 0.0
        self.exec_cpu = 0.0
        self.count = 0
        self.lock_started: dict[str, float] = {}
        self.lock_held = defaultdict(float)
        self.lock_count = defaultdict(int)
        self._t = None

    def install(self, engine, dialect):
        from sqlalchemy import event

        main = threading.get_ident()  # the request's thread; after-commit workers run apart

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, params, context, executemany):
            if threading.get_ident() != main:
                return
            self.statements.append(statement)
            now = time.perf_counter()
            for name, prefix in self.HOT.items():
                if statement.lstrip().startswith(prefix) and name not in self.lock_started:
                    self.lock_started[name] = now
            self._t = (now, time.thread_time())

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, params, context, executemany):
            if threading.get_ident() != main:
                return
            w, c = self._t
            self.exec_wall += time.perf_counter() - w
            self.exec_cpu += time.thread_time() - c
            self.count += 1

        original_commit = dialect.do_commit
        original_rollback = dialect.do_rollback

        def do_commit(dbapi_connection):
            original_commit(dbapi_connection)
            self._release()

        def do_rollback(dbapi_connection):
            original_rollback(dbapi_connection)
            self._release()

        dialect.do_commit = do_commit
        dialect.do_rollback = do_rollback

    def _release(self):
        now = time.perf_counter()
        for name, started in self.lock_started.items():
            self.lock_held[name] += now - started
            self.lock_count[name] += 1
        self.lock_started.clear()

    def reset(self):
        self.__init__()


def wire_trace(engine):
    """libpq trace of every new connection: counts what the client sends, per message."""
    from sqlalchemy import event

    fd, name = tempfile.mkstemp(prefix="queue_app_pqtrace_")

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        from psycopg import pq

        pgconn = dbapi_connection.pgconn
        pgconn.trace(fd)
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    return Path(name)


def count_round_trips(trace: Path, start: int) -> tuple[int, list[str]]:
    """Client messages that wait for an answer: simple Query, or Sync closing a batch."""
    with trace.open("rb") as f:
        f.seek(start)
        lines = f.read().decode(errors="replace").splitlines()
    sent, batch = [], []
    for line in lines:
        parts = line.split("\t")
        if len(parts) < 3 or parts[0] != "F":
            continue
        kind = parts[2]
        text = parts[3].strip() if len(parts) > 3 else ""
        if kind == "Query":
            sent.append(f"simple query {text[:70]}")
        elif kind == "Sync":
            sent.append("extended query: " + " ".join(batch))
            batch = []
        elif kind in ("Parse", "Bind", "Execute", "Describe"):
            batch.append(
                kind + (" (new prepared statement)" if kind == "Parse" and text[:2] != '""' else "")
            )
    return len(sent), sent


def count_calls(fn) -> int:
    """Python function calls made while fn() runs (C functions not counted)."""
    calls = 0

    def profiler(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(profiler)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def best_of(fn, n: int, batches: int = 5) -> tuple[float, float]:
    """(wall ms, CPU ms) per call of the batch with the least CPU."""
    results = []
    for _ in range(batches):
        w, c = time.perf_counter(), time.thread_time()
        for _ in range(n):
            fn()
        results.append(((time.perf_counter() - w) / n * 1e3, (time.thread_time() - c) / n * 1e3))
    return min(results, key=lambda r: r[1])


# One ticket issue as a single statement (PostgreSQL): number, visit, ticket, branch event
# number, journal entry, position and the open counters, in one round trip and autocommit.
# A measuring stick: queue_app's own one-statement path (queue_app/tickets/fastpath.py) is
# this statement plus the checks, counts and names the API answer needs.
ONE_STATEMENT = """
WITH seq AS (
  INSERT INTO ticket_sequences (branch_id, service_id, business_day, last_value)
  VALUES (%(branch)s, %(service)s, %(day)s, 1)
  ON CONFLICT (service_id, business_day)
  DO UPDATE SET last_value = ticket_sequences.last_value + 1
  RETURNING last_value
), v AS (
  INSERT INTO visits (branch_id, token, arrived_at)
  VALUES (%(branch)s, %(token)s, %(now)s) RETURNING id
), t AS (
  INSERT INTO tickets (visit_id, step, branch_id, service_id, business_day, sequence, number,
                       priority, source, status, issued_at, queue_since, recall_count)
  SELECT v.id, 1, %(branch)s, %(service)s, %(day)s, seq.last_value,
         %(prefix)s || CASE WHEN seq.last_value < 1000 THEN lpad(seq.last_value::text, 3, '0')
                            ELSE seq.last_value::text END,
         'normal', 'kiosk', 'waiting', %(now)s, %(now)s, 0
  FROM v, seq
  RETURNING id, visit_id, number
), b AS (
  UPDATE branches SET event_seq = event_seq + 1 WHERE id = %(branch)s RETURNING event_seq
), e AS (
  INSERT INTO journey_events (branch_id, seq, at, kind, visit_id, ticket_id, to_status, data)
  SELECT %(branch)s, b.event_seq, %(now)s, 'issued', t.visit_id, t.id, 'waiting',
         '{"source": "kiosk", "priority": "normal"}'::json
  FROM t, b
)
SELECT t.id, t.number,
       (SELECT count(*) FROM tickets w WHERE w.branch_id = %(branch)s AND w.status = 'waiting'
          AND w.service_id = %(service)s AND w.target_counter_id IS NULL) + 1 AS position,
       (SELECT count(*) FROM counter_services cs JOIN counters c ON c.id = cs.counter_id
          WHERE cs.service_id = %(service)s AND c.status = 'open') AS open_counters
FROM t
"""


def prototype(app, args, serial: dict) -> None:
    """Serial cost of the one-statement ticket issue, on a plain psycopg connection."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    import psycopg

    from queue_app.branches.models import Branch, Service
    from queue_app.extensions import db

    with app.app_context():
        branch = db.session.scalar(db.select(Branch).where(Branch.code == args.branch))
        services = {
            s.code: (s.id, s.prefix)
            for s in db.session.scalars(db.select(Service).where(Service.branch_id == branch.id))
        }
        codes = [c for c in args.services.split(",") if c in services]
        zone = ZoneInfo(branch.timezone)
        branch_id = branch.id
        db.session.rollback()
    conn = psycopg.connect(bench._libpq_url(args.database_url), autocommit=True)
    counter = {"i": 0}

    def one():
        service_id, prefix = services[codes[counter["i"] % len(codes)]]
        counter["i"] += 1
        now = dt.datetime.now(dt.UTC)
        params = {
            "branch": branch_id,
            "service": service_id,
            "day": now.astimezone(zone).date(),  # Branch.business_day
            "token": secrets.token_urlsafe(24),
            "now": now,
            "prefix": prefix,
        }
        conn.execute(ONE_STATEMENT, params).fetchone()

    try:
        for _ in range(20):
            one()
        wall, cpu = best_of(one, max(args.requests // 5, 20), batches=5)
    except Exception as exc:  # the schema moved on: say so, do not hide the other results
        print(f"4. one-statement prototype failed ({type(exc).__name__}: {exc})")
        return
    finally:
        conn.close()
    print("4. the same writes and answers as ONE statement (CTE, autocommit, plain psycopg):")
    print(
        f"   wall {wall:6.3f} ms   CPU in this process {cpu:6.3f} ms   1 round trip; "
        f"the rows are locked only while that statement commits"
    )
    ticket_cpu = serial.get("POST tickets")
    trivial_cpu = serial.get("GET /api/v1/")
    if ticket_cpu and trivial_cpu:
        print(
            f"   for comparison, CPU per request: trivial endpoint {trivial_cpu:.2f} ms, "
            f"ticket endpoint today {ticket_cpu:.2f} ms; a ticket endpoint that costs the "
            f"trivial request plus this statement would need about {trivial_cpu + cpu:.2f} ms"
        )


# --- main ------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    url = args.database_url
    env_base = {
        "DATABASE_URL": url,
        "SECRET_KEY": secrets.token_urlsafe(16),
        # one client issues every ticket: the per-address limit of anonymous tickets off
        "API_ISSUE_RATE_LIMIT": "1000000 per minute",
    }
    if args.setup:
        print(f"setting up {url} ...", flush=True)
        bench.reset_postgres(url)
        env = {**bench.base_env(), **env_base, "QUEUE_APP_PROFILE": "production"}
        bench.run_cli(["db", "upgrade"], env)
        bench.run_cli(["demo", "seed", "--allow-production"], env)
    os.environ.update(env_base)
    if "QUEUE_APP_INSTANCE" not in os.environ:
        instance = tempfile.mkdtemp(prefix="queue_app_prof_")
        atexit.register(shutil.rmtree, instance, ignore_errors=True)
        os.environ["QUEUE_APP_INSTANCE"] = instance

    from queue_app import create_app
    from queue_app.extensions import db

    app = create_app("production")
    phases = Phases()
    sql = SqlWatch()
    with app.app_context():
        engine = db.engine
        sql.install(engine, engine.dialect)
        trace = wire_trace(engine)
        engine.dispose()  # new connections get the trace

    # what to time: the view's collaborators, found by name so edits elsewhere do not break this
    import marshmallow
    from sqlalchemy.orm import Session

    import queue_app.api.branches as view_module
    import queue_app.api.presenters as presenters
    import queue_app.tickets.journal as journal
    import queue_app.tickets.queries as queries
    import queue_app.tickets.services as services

    for name, obj in list(vars(view_module).items()):
        if (
            inspect.isfunction(obj)
            and obj.__module__.startswith("queue_app.")
            and obj.__module__ != view_module.__name__
        ):
            phases.wrap(view_module, name)
    phases.wrap(services, "issue_ticket", "engine.issue_ticket")
    phases.wrap(services, "next_sequence")
    phases.wrap(journal, "record", "journal.record")
    phases.wrap(journal, "next_branch_seq")
    phases.wrap(presenters, "ticket", "presenters.ticket")
    phases.wrap(queries, "position")
    phases.wrap(queries, "estimated_wait_s")
    phases.wrap(Session, "flush", "ORM flush")
    phases.wrap(Session, "commit", "session.commit")
    phases.wrap(marshmallow.Schema, "load", "marshmallow load")
    phases.wrap(marshmallow.Schema, "dump", "marshmallow dump")
    dialect = None
    with app.app_context():
        dialect = db.engine.dialect
    if hasattr(dialect, "do_ping"):
        phases.wrap(dialect, "do_ping", "pool pre-ping")

    client = app.test_client()
    codes = [c for c in args.services.split(",") if c]
    path = f"/api/v1/branches/{args.branch}/tickets"
    counter = {"i": 0}

    def one_ticket():
        code = codes[counter["i"] % len(codes)]
        counter["i"] += 1
        response = client.post(path, json={"service": code})
        if response.status_code != 201:
            raise SystemExit(f"POST {path} answered {response.status_code}: {response.data!r}")

    def one_trivial():
        response = client.get("/api/v1/")
        if response.status_code != 200:
            raise SystemExit(f"GET /api/v1/ answered {response.status_code}")

    for _ in range(30):  # warm caches, the pool, prepared statements
        one_ticket()
        one_trivial()

    with app.app_context():
        waiting = db.session.execute(
            db.text("SELECT count(*) FROM tickets WHERE status = 'waiting'")
        ).scalar_one()
        db.session.rollback()
    print(f"database {url}; waiting tickets now {waiting} (position() counts them)")
    print(f"Python {sys.version.split()[0]}, one thread, Flask test client (no HTTP server)\n")

    # 1. statements and round trips of one ticket issue
    sql.reset()
    start = trace.stat().st_size
    one_ticket()
    trips, sent = count_round_trips(trace, start)
    print(f"1. one ticket issue executes {len(sql.statements)} SQL statements:")
    for statement in sql.statements:
        print("     " + " ".join(statement.split())[:110])
    print(f"   and {trips} round trips to PostgreSQL (what the client sends and waits for):")
    for item in sent:
        print("     " + item)
    start = trace.stat().st_size
    one_trivial()
    trivial_trips, _ = count_round_trips(trace, start)
    print(f"   GET /api/v1/: {trivial_trips} round trips\n")

    # 2. serial cost per request (best of 5 batches: other programs on the machine only
    # ever make a batch slower)
    print("2. serial cost per request (best of 5 batches):")
    serial = {}
    for label, fn, n in (
        ("GET /api/v1/", one_trivial, args.requests),
        ("POST tickets", one_ticket, max(args.requests // 5, 20)),
    ):
        wall, cpu = best_of(fn, n, batches=5)
        calls = count_calls(lambda fn=fn: [fn() for _ in range(20)]) // 20
        serial[label] = cpu
        print(
            f"   {label:<14} wall {wall:6.2f} ms   CPU {cpu:6.2f} ms   "
            f"{calls:6d} Python function calls   (-> at most {1000 / cpu:6.0f} req/s per core)"
        )
    print()

    # 3. breakdown of the ticket request: 5 batches, the one with the least CPU is shown
    n = max(args.requests // 5, 20)
    best = None
    for _ in range(5):
        phases.reset()
        sql.reset()
        phases.enabled = True
        w, c = time.perf_counter(), time.thread_time()
        for _ in range(n):
            one_ticket()
        total_wall = (time.perf_counter() - w) / n * 1e3
        total_cpu = (time.thread_time() - c) / n * 1e3
        phases.enabled = False
        if best is None or total_cpu < best[1]:
            best = (
                total_wall,
                total_cpu,
                dict(phases.wall),
                dict(phases.cpu),
                dict(phases.calls),
                list(phases.order),
                (sql.exec_wall, sql.exec_cpu, sql.count),
                {k: (sql.lock_held[k], sql.lock_count[k]) for k in sql.lock_held},
            )
    total_wall, total_cpu, p_wall, p_cpu, p_calls, order, execs, locks = best
    print(f"3. one ticket request, inclusive wall / CPU in ms (mean of {n}, best of 5 batches):")
    print(f"   {'whole request (test client)':<58} {total_wall:7.3f} {total_cpu:7.3f}")
    top_wall = top_cpu = 0.0
    for path_ in order:
        depth = path_.count(" > ")
        name = path_.rsplit(" > ", 1)[-1]
        wall = p_wall[path_] / n * 1e3
        cpu = p_cpu[path_] / n * 1e3
        calls = p_calls[path_] / n
        if depth == 0:
            top_wall += wall
            top_cpu += cpu
        label = "  " * depth + name + (f" (x{calls:.0f})" if calls > 1.01 else "")
        print(f"   {label:<58} {wall:7.3f} {cpu:7.3f}")
    print(
        f"   {'rest: Flask, werkzeug, flask-smorest, webargs, JSON, babel':<58} "
        f"{total_wall - top_wall:7.3f} {total_cpu - top_cpu:7.3f}"
    )
    print(
        f"   {'of all that, inside cursor.execute (driver + server)':<58} "
        f"{execs[0] / n * 1e3:7.3f} {execs[1] / n * 1e3:7.3f}"
        f"   ({execs[2] / n:.1f} statements)"
    )
    print("   rows locked until COMMIT returns (serial, nobody waiting):")
    for name, (held, count) in locks.items():
        per = held / max(count, 1) * 1e3
        print(
            f"     {name:<34} {per:6.3f} ms per ticket -> at most {1000 / per:6.0f} tickets/s "
            "for everyone who needs that row"
        )
    print()

    # 4. the same writes as one statement: what the engine's floor is
    if args.prototype:
        prototype(app, args, serial)

    trace.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
