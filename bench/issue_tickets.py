#!/usr/bin/env python3
"""Benchmark: how fast does queue_app issue tickets, next to a trivial JSON endpoint?

Starts the server the way a user would, drives it from outside with `wrk`, and prints:

- production profile: gunicorn (gthread workers) on PostgreSQL (database `queue_app_bench`,
  emptied, migrated with `flask db upgrade` and seeded with `flask demo seed`);
- embedded profile: `python run.py` on a SQLite file in a temporary instance directory.

For each profile, with 16 concurrent clients: `GET /api/v1/` (trivial), `POST
/api/v1/branches/JKT01/tickets` rotating over four services (a kiosk mix) and the same POST
for one service only (the worst case for the per-service number row). Several timed runs of
each, interleaved, after a warm-up; requests/s per run and the median, latency p50/p99,
non-2xx and socket errors, and the ratio median(tickets/s) / median(trivial/s). After the
runs it checks the database: no duplicate numbers, unbroken sequences, and as many tickets
as 201 answers. A JSON summary goes to bench/results/ (git-ignored).

    .venv/bin/python bench/issue_tickets.py                   # both profiles, 5 x 10 s
    .venv/bin/python bench/issue_tickets.py --runs 3 --duration 5 --profiles production

Every server it starts is stopped on exit, Ctrl+C or error; the whole run is bounded by
--max-seconds. Traffic goes to 127.0.0.1 only. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
LUA_SCRIPT = BENCH_DIR / "wrk_counting.lua"
RESULTS_DIR = BENCH_DIR / "results"
HOST = "127.0.0.1"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/queue_app_bench"
# the databases a benchmark may empty (this one's, bench/realtime_latency.py's, bench/load_day.py's)
BENCH_DATABASES = {
    "queue_app_bench",
    "queue_app_realtime_bench",
    "queue_app_load",
    "queue_app_round",  # bench/visit_round.py's
}
PREFERRED_MIX = ("teller", "cs", "loans", "cards")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# one timed run per kind and round, in this order (interleaving spreads drift evenly)
KINDS = ("trivial", "tickets_mix", "tickets_single")
KIND_LABEL = {
    "trivial": "GET  /api/v1/",
    "tickets_mix": "POST tickets, service mix",
    "tickets_single": "POST tickets, one service",
}


class BenchError(RuntimeError):
    pass


class Interrupted(BaseException):
    pass


def log(message: str = "") -> None:
    print(message, flush=True)


# --- processes we start, and stopping them whatever happens ----------------------------------

_STARTED: list[subprocess.Popen] = []


def spawn(cmd, **kwargs) -> subprocess.Popen:
    """Start a process in its own session, so it can be stopped with its children."""
    proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
    _STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the process group we created for `proc`, then SIGKILL it after `grace` s."""
    if proc in _STARTED:
        _STARTED.remove(proc)
    if proc.poll() is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # stray children of an exited leader
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def stop_all() -> None:
    for proc in list(_STARTED):
        with contextlib.suppress(Exception):
            stop(proc, grace=5.0)


def _on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


# --- machine ---------------------------------------------------------------------------------


def machine_info(pg_version: str | None) -> dict:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    packages = {}
    for name in (
        "flask",
        "werkzeug",
        "flask-smorest",
        "marshmallow",
        "sqlalchemy",
        "flask-sqlalchemy",
        "psycopg",
        "gunicorn",
        "flask-socketio",
    ):
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    wrk_version = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        wrk_version = (out.stdout + out.stderr).splitlines()[0].split(" Copyright")[0].strip()
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "postgresql": pg_version,
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk_version,
        "packages": packages,
        "loadavg_at_start": os.getloadavg(),
    }


def git_revision() -> dict:
    def git(*args):
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def ensure_wrk(allow_install: bool) -> None:
    if shutil.which("wrk"):
        return
    if not allow_install:
        raise BenchError("wrk is not installed (apt-get install wrk), and --no-install was given")
    if os.geteuid() != 0:
        raise BenchError("wrk is not installed; run `sudo apt-get install wrk` first")
    log("wrk is missing: installing the Debian package `wrk` ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        subprocess.run(cmd, check=True, env=env, timeout=600, stdout=subprocess.DEVNULL)
    if not shutil.which("wrk"):
        raise BenchError("apt-get did not install wrk")


# --- CPU accounting from /proc ---------------------------------------------------------------


def _proc_cpu_s(pid: int) -> float | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def system_busy_s() -> float:
    """CPU seconds spent not idle by the whole machine (all cores) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])  # guest time is already part of user time
    return (total - idle) / CLK_TCK


@dataclass
class CpuSnapshot:
    at: float
    system: float
    server: dict[int, float]
    database: dict[int, float]
    children_rusage: float


def cpu_snapshot(server_pid: int, db_pids: list[int]) -> CpuSnapshot:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = {p: c for p in process_tree(server_pid) if (c := _proc_cpu_s(p)) is not None}
    database = {p: c for p in db_pids if (c := _proc_cpu_s(p)) is not None}
    return CpuSnapshot(
        time.monotonic(), system_busy_s(), server, database, usage.ru_utime + usage.ru_stime
    )


def cpu_delta(before: CpuSnapshot, after: CpuSnapshot) -> dict:
    """Cores used on average during the interval, split by who used them."""
    wall = after.at - before.at

    def used(b: dict[int, float], a: dict[int, float]) -> float:
        return sum(c - b.get(p, 0.0) for p, c in a.items())

    server = used(before.server, after.server)
    database = used(before.database, after.database)
    client = after.children_rusage - before.children_rusage  # wrk, reaped in between
    system = after.system - before.system
    other = max(system - server - database - client, 0.0)
    return {
        "server": round(server / wall, 2),
        "database": round(database / wall, 2),
        "wrk": round(client / wall, 2),
        "other": round(other / wall, 2),
        "machine": round(system / wall, 2),
    }


# --- databases -------------------------------------------------------------------------------


class Database:
    """The bench's own read-only look into the server's database (checks and counts)."""

    def __init__(self, url: str):
        self.url = url
        self.kind = "postgresql" if url.startswith(("postgresql", "postgres:")) else "sqlite"

    def connect(self):
        if self.kind == "postgresql":
            import psycopg

            return psycopg.connect(_libpq_url(self.url), autocommit=True)
        path = self.url.removeprefix("sqlite:///")
        return sqlite3.connect(path, timeout=30)

    def query(self, sql: str, params=()):
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            return cur.fetchall()
        finally:
            conn.close()

    def scalar(self, sql: str, params=()):
        return self.query(sql, params)[0][0]

    def backend_pids(self) -> list[int]:
        """PostgreSQL backends serving this database (their CPU is the database's share)."""
        if self.kind != "postgresql":
            return []
        dbname = _libpq_url(self.url).rsplit("/", 1)[1].split("?")[0]
        rows = self.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )
        return [r[0] for r in rows]


def _libpq_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def reset_postgres(url: str) -> str:
    """Empty the bench database (create it if missing) and return the server's version."""
    import psycopg

    conninfo = _libpq_url(url)
    dbname = conninfo.rsplit("/", 1)[1].split("?")[0]
    if dbname not in BENCH_DATABASES and not os.environ.get("BENCH_ALLOW_ANY_DATABASE"):
        raise BenchError(
            f"refusing to empty database {dbname!r}: the benchmarks only use "
            f"{', '.join(sorted(BENCH_DATABASES))} "
            "(set BENCH_ALLOW_ANY_DATABASE=1 to override)"
        )
    try:
        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise BenchError(f"cannot connect to PostgreSQL at {conninfo}: {exc}") from None
        admin = conninfo.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as c:
            c.execute(f'CREATE DATABASE "{dbname}"')
        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    with conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return version


def postgres_version(url: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(_libpq_url(url), connect_timeout=5) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception:
        return None


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    candidate = ROOT / ".venv" / "bin" / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise BenchError(f"{name} not found; run `make setup` first")
    return found


def run_cli(args: list[str], env: dict, timeout: float = 180) -> str:
    cmd = [venv_bin("flask"), "--app", "queue_app", *args]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise BenchError(f"`{' '.join(cmd[1:])}` failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(proc: subprocess.Popen, base: str, logfile: Path, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise BenchError(f"the server exited with {proc.returncode}:\n{tail(logfile)}")
        with contextlib.suppress(OSError):
            status, _ = http_get(base + "/readyz", timeout=2)
            if status == 200:
                return time.monotonic() - started
        time.sleep(0.2)
    raise BenchError(f"the server was not ready (/readyz) within {timeout:.0f} s:\n{tail(logfile)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Server:
    profile: str
    command: list[str]
    env: dict
    database: Database
    port: int
    logfile: Path
    description: str
    proc: subprocess.Popen | None = None
    startup_s: float = 0.0

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        with self.logfile.open("ab") as out:
            self.proc = spawn(
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.startup_s = wait_ready(self.proc, self.base, self.logfile)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


def base_env() -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QUEUE_APP_", "FLASK_")) and k not in {"DATABASE_URL", "PORT", "HOST"}
    }
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


def prepare_production(args, workdir: Path) -> Server:
    url = args.database_url
    log(f"  database: {url} (emptied, then `flask db upgrade` and `flask demo seed`)")
    reset_postgres(url)
    env = base_env()
    env.update(
        {
            "DATABASE_URL": url,
            "QUEUE_APP_PROFILE": "production",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "QUEUE_APP_INSTANCE": str(workdir / "instance"),
            # one address plays every kiosk: the per-address limit of anonymous tickets off
            "API_ISSUE_RATE_LIMIT": "1000000 per minute",
        }
    )
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    run_cli(["db", "upgrade"], env)
    run_cli(["demo", "seed", "--allow-production"], env)
    port = free_port()
    command = [
        venv_bin("gunicorn"),
        "--worker-class",
        "gthread",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--bind",
        f"{HOST}:{port}",
        "--log-level",
        "warning",
        *(["--no-control-socket"] if _gunicorn_has_control_socket() else []),
        'queue_app:create_app("production")',
    ]
    description = (
        f"gunicorn gthread, {args.workers} workers x {args.threads} threads "
        f"= {args.workers * args.threads} request slots for {args.connections} clients "
        f"(one worker process per core on a {os.cpu_count()}-core machine; the threads overlap "
        "database round trips), PostgreSQL, "
        f"Redis {args.redis_url or 'none'} (Socket.IO queue, rate limits), pool per worker "
        f"{env.get('DB_POOL_SIZE', '10')}+{env.get('DB_MAX_OVERFLOW', '20')}"
    )
    return Server(
        "production", command, env, Database(url), port, workdir / "gunicorn.log", description
    )


def _gunicorn_has_control_socket() -> bool:
    out = subprocess.run(
        [venv_bin("gunicorn"), "--help"], capture_output=True, text=True, timeout=30
    )
    return "--no-control-socket" in out.stdout


def prepare_embedded(args, workdir: Path) -> Server:
    instance = workdir / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    log(f"  database: {url} (new file, `flask db upgrade` and `flask demo seed`)")
    port = free_port()
    env = base_env()
    env.update(
        {
            "DATABASE_URL": url,
            "QUEUE_APP_INSTANCE": str(instance),
            "HOST": HOST,
            "PORT": str(port),
        }
    )
    run_cli(["db", "upgrade"], env)
    run_cli(["demo", "seed"], env)
    command = [venv_bin("python"), str(ROOT / "run.py")]
    description = (
        "python run.py (Flask-SocketIO threading mode on Werkzeug, one process, "
        "a thread per connection), SQLite WAL, BEGIN IMMEDIATE"
    )
    return Server("embedded", command, env, Database(url), port, workdir / "run.log", description)


# --- load generation -------------------------------------------------------------------------


@dataclass
class Run:
    kind: str
    index: int  # 0 = warm-up
    seconds: float
    requests: int
    ok: int
    statuses: dict
    socket_errors: dict
    latency_ms: dict
    cpu: dict
    queue_before: int | None = None
    tickets_created: int | None = None
    busy_before: float | None = None
    started_busy: bool = False

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok_rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def non_2xx(self) -> int:
        return self.requests - self.ok

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values())

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "run": self.index,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "ok": self.ok,
            "requests_per_s": round(self.rps, 1),
            "ok_per_s": round(self.ok_rps, 1),
            "statuses": self.statuses,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "latency_ms": self.latency_ms,
            "cpu_cores": self.cpu,
            "waiting_tickets_before": self.queue_before,
            "tickets_created": self.tickets_created,
            "tickets_created_minus_201": (
                None
                if self.tickets_created is None
                else self.tickets_created - self.statuses.get("201", 0)
            ),
            "other_cores_busy_before": self.busy_before,
        }


def run_wrk(server: Server, kind: str, seconds: float, args, services: dict) -> dict:
    if kind == "trivial":
        url, extra = server.base + "/api/v1/", ["GET"]
    else:
        url = f"{server.base}/api/v1/branches/{args.branch}/tickets"
        extra = ["POST", ",".join(services[kind])]
    cmd = [
        "wrk",
        "--threads",
        str(args.wrk_threads),
        "--connections",
        str(args.connections),
        "--duration",
        f"{seconds:g}s",
        "--timeout",
        "10s",
        "--script",
        str(LUA_SCRIPT),
        url,
        "--",
        *extra,
    ]
    proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    finally:
        stop(proc, grace=2)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {err.strip()}")
    for line in out.splitlines():
        if line.startswith("WRK_JSON "):
            return json.loads(line[len("WRK_JSON ") :])
    raise BenchError(f"wrk printed no WRK_JSON line:\n{out}\n{err}")


def settle(db: Database, timeout: float = 15.0) -> int:
    """Wait until no more tickets appear: requests wrk left in flight finish on the server.

    wrk stops at the end of its duration without reading the answers still on their way;
    the server completes those requests anyway. Counting only after they are done keeps
    each run's "tickets created" separate from the next run's.
    """
    last = db.scalar("SELECT count(*) FROM tickets")
    deadline = time.monotonic() + timeout
    stable = 0
    while time.monotonic() < deadline and stable < 2:
        time.sleep(0.25)
        now = db.scalar("SELECT count(*) FROM tickets")
        stable = stable + 1 if now == last else 0
        last = now
    return last


def drain(db: Database) -> int:
    """Cancel every waiting ticket (--drain): each run starts with an empty queue."""
    conn = db.connect()
    try:
        cur = conn.cursor()
        cur.execute(
            "UPDATE tickets SET status = 'cancelled', finished_at = CURRENT_TIMESTAMP "
            "WHERE status = 'waiting'"
        )
        conn.commit()
        return cur.rowcount
    finally:
        conn.close()


def wait_for_quiet(args, server: Server) -> float:
    """Wait (at most --max-wait s) until other programs use less than --quiet CPU cores.

    The server is idle between runs, so what the machine is busy with then is someone
    else's work, which would be measured as ours. Returns the cores used by others at start.
    """
    deadline = time.monotonic() + args.max_wait
    announced = False
    while True:
        before = cpu_snapshot(server.proc.pid, [])
        time.sleep(1.0)
        after = cpu_snapshot(server.proc.pid, [])
        busy = cpu_delta(before, after)["machine"]
        if busy <= args.quiet or time.monotonic() >= deadline:
            if announced:
                log(f"      ... {'quiet' if busy <= args.quiet else 'still busy'} ({busy:.2f})")
            return busy
        if not announced:
            log(
                f"      machine busy with other work ({busy:.2f} cores > {args.quiet:g}); "
                f"waiting up to {args.max_wait:g} s"
            )
            announced = True


def measure(server: Server, kind: str, index: int, seconds: float, args, services) -> Run:
    db = server.database
    tickets_before = queue_before = None
    busy_before = wait_for_quiet(args, server) if args.max_wait > 0 else None
    if kind != "trivial":
        if args.drain:
            drain(db)
        tickets_before = db.scalar("SELECT count(*) FROM tickets")
        queue_before = db.scalar("SELECT count(*) FROM tickets WHERE status = 'waiting'")
    before = cpu_snapshot(server.proc.pid, db.backend_pids())
    result = run_wrk(server, kind, seconds, args, services)
    after = cpu_snapshot(server.proc.pid, db.backend_pids())
    statuses = result["statuses"]
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    lat = result["latency_us"]
    run = Run(
        kind=kind,
        index=index,
        seconds=result["duration_us"] / 1e6,
        requests=result["requests"],
        ok=ok,
        statuses=statuses,
        socket_errors={k: v for k, v in result["errors"].items() if k != "status"},
        latency_ms={k: round(v / 1000, 2) for k, v in lat.items() if k != "stdev"},
        cpu=cpu_delta(before, after),
        queue_before=queue_before,
    )
    run.busy_before = busy_before
    run.started_busy = busy_before is not None and busy_before > args.quiet
    if kind != "trivial":
        run.tickets_created = settle(db) - tickets_before
    return run


def format_run(run: Run) -> str:
    label = {0: "warm-up", -1: "py-spy"}.get(run.index, f"run {run.index}")
    lat = run.latency_ms
    cpu = run.cpu
    line = (
        f"    {label:<8} {run.rps:8.1f} req/s  2xx {run.ok_rps:8.1f}/s  "
        f"p50 {lat['p50']:7.2f} ms  p99 {lat['p99']:7.2f} ms  "
        f"non-2xx {run.non_2xx:<4} sock-err {run.errors:<3} "
        f"cpu srv {cpu['server']:.2f} db {cpu['database']:.2f} "
        f"wrk {cpu['wrk']:.2f} other {cpu['other']:.2f}"
    )
    if run.tickets_created is not None:
        diff = run.tickets_created - run.statuses.get("201", 0)
        line += f"  queue {run.queue_before:>6}  created-201 {diff:+d}"
    if run.non_2xx:
        line += f"  statuses {run.statuses}"
    if run.started_busy:
        line += f"  (machine busy before: {run.busy_before:.2f} cores)"
    return line


def find_py_spy() -> str | None:
    for candidate in (Path(sys.executable).parent / "py-spy", ROOT / ".venv" / "bin" / "py-spy"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("py-spy")


def profile_workers(server: Server, args, services) -> list[Run]:
    """Extra service-mix runs with py-spy sampling every gunicorn worker (--py-spy).

    First with --gil (only the thread holding the GIL: where the workers' Python CPU goes),
    then with --idle (every thread, waiting included: where a request's time goes). These
    runs are not part of the timed results; py-spy itself costs the server some CPU.
    """
    from pyspy_summary import summarize

    py_spy = find_py_spy()
    if py_spy is None:
        log("  --py-spy: py-spy not found (.venv/bin/pip install py-spy); skipped")
        return []
    workers = [p for p in process_tree(server.proc.pid) if p != server.proc.pid]
    out_dir = Path(args.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    runs = []
    for mode in ("gil", "idle"):
        if args.max_wait > 0:
            wait_for_quiet(args, server)
        files, spies = [], []
        for pid in workers:
            path = out_dir / f"pyspy-{stamp}-{mode}-{pid}.txt"
            files.append(path)
            cmd = [py_spy, "record", "--pid", str(pid), "--rate", "100", "--format", "raw"]
            cmd += ["--duration", f"{int(args.duration)}", "--output", str(path), f"--{mode}"]
            spies.append(spawn(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        saved = args.max_wait
        args.max_wait = 0
        try:
            run = measure(server, "tickets_mix", -1, args.duration, args, services)
        finally:
            args.max_wait = saved
            for spy in spies:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    spy.wait(timeout=args.duration + 30)
                stop(spy, grace=5)
        runs.append(run)
        log(f"  py-spy --{mode}, service mix: " + format_run(run).strip())
        existing = [f for f in files if f.exists()]
        if not existing:
            log("    py-spy wrote nothing (needs ptrace permission: run as root)")
            continue
        log("    " + summarize(existing).replace("\n", "\n    "))
        log(f"    raw stacks: {', '.join(str(f.relative_to(ROOT)) for f in existing)}")
    return runs


# --- database checks -------------------------------------------------------------------------


def integrity_checks(db: Database, created_expected: int) -> dict:
    total = db.scalar("SELECT count(*) FROM tickets")
    first_steps = db.scalar("SELECT count(*) FROM tickets WHERE step = 1")
    duplicate_numbers = db.scalar(
        "SELECT count(*) FROM (SELECT service_id, business_day, number FROM tickets "
        "WHERE step = 1 GROUP BY service_id, business_day, number HAVING count(*) > 1) d"
    )
    numbered = db.scalar("SELECT count(*) FROM tickets WHERE sequence IS NOT NULL")
    distinct_sequences = db.scalar(
        "SELECT count(*) FROM (SELECT DISTINCT service_id, business_day, sequence FROM tickets "
        "WHERE sequence IS NOT NULL) d"
    )
    # an unbroken sequence per (service, day): 1..n with n tickets, and the counter row agrees
    broken = db.query(
        "SELECT t.service_id, t.business_day, count(*), min(t.sequence), max(t.sequence), "
        "max(s.last_value) FROM tickets t LEFT JOIN ticket_sequences s "
        "ON s.service_id = t.service_id AND s.business_day = t.business_day "
        "WHERE t.sequence IS NOT NULL GROUP BY t.service_id, t.business_day "
        "HAVING count(*) <> max(t.sequence) OR min(t.sequence) <> 1 "
        "OR max(s.last_value) <> max(t.sequence)"
    )
    per_day = db.query(
        "SELECT business_day, count(*) FROM tickets GROUP BY business_day ORDER BY business_day"
    )
    return {
        "tickets": total,
        "first_step_tickets": first_steps,
        "duplicate_numbers": duplicate_numbers,
        "numbered_tickets": numbered,
        "distinct_service_day_sequence": distinct_sequences,
        "broken_sequences": [list(map(str, row)) for row in broken],
        "tickets_per_business_day": {str(day): n for day, n in per_day},
        "created_during_bench": created_expected,
    }


# --- one profile -----------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def bench_profile(server: Server, args) -> dict:
    log(f"  server: {server.description}")
    log(f"  command: {' '.join(server.command)}")
    server.start()
    log(f"  listening on {server.base} (ready after {server.startup_s:.1f} s)")
    status, body = http_get(f"{server.base}/api/v1/branches/{args.branch}/services")
    if status != 200:
        raise BenchError(f"GET services answered {status}: {body[:200]!r}")
    codes = [item["code"] for item in json.loads(body)["items"]]
    if args.services:
        mix = [c.strip() for c in args.services.split(",") if c.strip()]
    else:
        mix = [c for c in PREFERRED_MIX if c in codes] or codes[:4]
    single = args.single_service or mix[0]
    unknown = [c for c in [*mix, single] if c not in codes]
    if unknown:
        raise BenchError(f"branch {args.branch} has no service {unknown}; it has {codes}")
    services = {"tickets_mix": mix, "tickets_single": [single]}
    log(f"  branch {args.branch}, services {codes}; mix {mix}, single {single!r}")
    db = server.database
    tickets_at_start = db.scalar("SELECT count(*) FROM tickets")

    runs: list[Run] = []
    if args.warmup > 0:
        log(f"  warm-up, {args.warmup:g} s per kind:")
        for kind in KINDS:
            run = measure(server, kind, 0, args.warmup, args, services)
            runs.append(run)
            log(f"  {KIND_LABEL[kind]:<27}" + format_run(run).lstrip())
    for index in range(1, args.runs + 1):
        log(f"  round {index}/{args.runs}, {args.duration:g} s per kind:")
        for kind in KINDS:
            run = measure(server, kind, index, args.duration, args, services)
            runs.append(run)
            log(f"  {KIND_LABEL[kind]:<27}" + format_run(run).lstrip())

    if args.py_spy and server.profile == "production":
        runs.extend(profile_workers(server, args, services))

    ticket_runs = [r for r in runs if r.kind != "trivial"]
    answers_201 = sum(r.statuses.get("201", 0) for r in ticket_runs)
    created = settle(db) - tickets_at_start
    server.stop()  # the checks read a quiet database
    checks = integrity_checks(db, created)
    checks["answers_201"] = answers_201
    checks["created_minus_201"] = created - answers_201
    # wrk stops at the deadline without reading the answers still on their way: each run may
    # leave up to one request per connection in flight, completed by the server unseen
    per_run = [r.tickets_created - r.statuses.get("201", 0) for r in ticket_runs]
    checks["created_minus_201_per_run"] = per_run
    checks["in_flight_bound_per_run"] = args.connections
    checks["created_matches_201"] = all(0 <= d <= args.connections for d in per_run) and (
        created - answers_201 == sum(per_run)
    )

    timed = [r for r in runs if r.index > 0]
    summary = {}
    for kind in KINDS:
        mine = [r for r in timed if r.kind == kind]
        summary[kind] = {
            "ok_per_s": [round(r.ok_rps, 1) for r in mine],
            "median_ok_per_s": round(median([r.ok_rps for r in mine]), 1),
            "median_requests_per_s": round(median([r.rps for r in mine]), 1),
            "median_p50_ms": round(median([r.latency_ms["p50"] for r in mine]), 2),
            "median_p99_ms": round(median([r.latency_ms["p99"] for r in mine]), 2),
            "non_2xx": sum(r.non_2xx for r in mine),
            "socket_errors": sum(r.errors for r in mine),
            "median_cpu_cores": {
                k: round(median([r.cpu[k] for r in mine]), 2) for k in mine[0].cpu
            },
        }
    trivial = summary["trivial"]["median_ok_per_s"]
    ratios = {
        kind: round(summary[kind]["median_ok_per_s"] / trivial, 3) if trivial else None
        for kind in ("tickets_mix", "tickets_single")
    }
    return {
        "profile": server.profile,
        "server": server.description,
        "command": server.command,
        "database": server.database.kind,
        "services": services,
        "runs": [r.as_dict() for r in runs],
        "summary": summary,
        "ratios": ratios,
        "checks": checks,
    }


def print_profile_summary(result: dict, args) -> None:
    s, ratios, checks = result["summary"], result["ratios"], result["checks"]
    log(f"  summary ({result['profile']}, {args.connections} clients, {args.runs} runs):")
    for kind in KINDS:
        k = s[kind]
        per_run = ", ".join(f"{v:.0f}" for v in k["ok_per_s"])
        cpu = k["median_cpu_cores"]
        log(
            f"    {KIND_LABEL[kind]:<27} median {k['median_ok_per_s']:8.1f}/s   "
            f"runs [{per_run}]   p50 {k['median_p50_ms']:.2f} ms  p99 {k['median_p99_ms']:.2f} ms"
            f"   non-2xx {k['non_2xx']}  sock-err {k['socket_errors']}"
            f"   cpu srv {cpu['server']:.2f} db {cpu['database']:.2f}"
        )
    log(
        f"    ratio tickets/trivial: service mix {ratios['tickets_mix']:.3f}, "
        f"one service {ratios['tickets_single']:.3f}   (aim on production: >= 0.5)"
    )
    ok = (
        checks["duplicate_numbers"] == 0
        and checks["numbered_tickets"] == checks["distinct_service_day_sequence"]
        and not checks["broken_sequences"]
    )
    log(
        f"  database check: {checks['tickets']} tickets, duplicate numbers "
        f"{checks['duplicate_numbers']}, numbered {checks['numbered_tickets']} = distinct "
        f"(service, day, sequence) {checks['distinct_service_day_sequence']}, broken sequences "
        f"{len(checks['broken_sequences'])} -> {'OK' if ok else 'FAILED'}"
    )
    log(
        f"  tickets created during the bench {checks['created_during_bench']}, 201 answers "
        f"read by wrk {checks['answers_201']}, difference {checks['created_minus_201']:+d} "
        f"(per run {checks['created_minus_201_per_run']})"
    )
    if checks["created_matches_201"]:
        log(
            "    -> every ticket was answered with a 201, except the requests still in flight "
            f"when wrk stopped each run (0..{args.connections} per run, answers never read)"
        )
    else:
        log("    -> MISMATCH beyond the requests in flight at the end of a run")
    log(f"  tickets per business day: {checks['tickets_per_business_day']}")


# --- main ------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profiles", default="production,embedded", help="comma-separated")
    p.add_argument("--runs", type=int, default=5, help="timed runs per kind (default 5)")
    p.add_argument("--duration", type=float, default=10, help="seconds per run (default 10)")
    p.add_argument("--warmup", type=float, default=5, help="warm-up seconds per kind (0: none)")
    p.add_argument("--connections", type=int, default=16, help="concurrent clients (16)")
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (production)")
    p.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    p.add_argument("--branch", default="JKT01")
    p.add_argument("--services", default=None, help="service mix (default teller,cs,loans,cards)")
    p.add_argument("--single-service", default=None, help="one-service run (default: first)")
    p.add_argument("--database-url", default=DEFAULT_PG_URL, help="production database")
    p.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"),
        help="production REDIS_URL (Socket.IO message queue, rate-limit storage), as deployed; "
        "'' for none",
    )
    p.add_argument("--results-dir", default=str(RESULTS_DIR))
    p.add_argument("--keep-workdir", action="store_true", help="keep logs and the SQLite file")
    p.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    p.add_argument(
        "--drain",
        action="store_true",
        help="cancel the waiting tickets before each ticket run (queue starts empty)",
    )
    p.add_argument(
        "--quiet",
        type=float,
        default=0.3,
        help="before each run, wait until other programs use at most this many cores (0.3)",
    )
    p.add_argument(
        "--max-wait",
        type=float,
        default=30,
        help="longest wait for a quiet machine, s (30; 0: never)",
    )
    p.add_argument(
        "--py-spy",
        action="store_true",
        help="after the production runs, sample the gunicorn workers with py-spy (2 extra runs)",
    )
    p.add_argument("--max-seconds", type=float, default=None, help="hard limit for the whole run")
    args = p.parse_args(argv)
    args.profile_list = [x.strip() for x in args.profiles.split(",") if x.strip()]
    bad = [x for x in args.profile_list if x not in ("production", "embedded")]
    if bad or not args.profile_list:
        p.error(f"unknown profile(s) {bad}; use production and/or embedded")
    if args.runs < 1 or args.duration <= 0 or args.connections < 1:
        p.error("--runs, --duration and --connections must be positive")
    runs_per_profile = len(KINDS) * (args.runs + (1 if args.warmup > 0 else 0))
    per_profile = 40 + len(KINDS) * (args.warmup + args.runs * args.duration)
    per_profile += runs_per_profile * 3  # quiet check, settling, counting
    args.estimate_s = per_profile * len(args.profile_list)
    if args.py_spy and "production" in args.profile_list:
        args.estimate_s += 2 * (args.duration + 20)
    if args.max_seconds is None:
        worst_wait = runs_per_profile * len(args.profile_list) * args.max_wait
        args.max_seconds = 1.5 * args.estimate_s + worst_wait + 120
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    # SIGINT explicitly too: a shell starts background jobs with SIGINT ignored, and then
    # Python would not turn Ctrl+C / kill -INT into KeyboardInterrupt
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    signal.signal(signal.SIGALRM, _on_signal)
    signal.alarm(int(args.max_seconds))
    started = dt.datetime.now(dt.UTC)
    workdir = Path(tempfile.mkdtemp(prefix="queue_app_bench_"))
    results: dict = {}
    exit_code = 0
    try:
        ensure_wrk(not args.no_install)
        pg_version = postgres_version(args.database_url)
        machine = machine_info(pg_version)
        log("queue_app benchmark: issuing tickets vs a trivial JSON endpoint")
        log(
            f"machine: {machine['cpu_model']}, {machine['cores']} cores "
            f"({machine['cores_usable']} usable), {machine['memory_gb']} GB, "
            f"Linux {machine['kernel']}"
        )
        log(
            f"software: Python {machine['python']}, PostgreSQL {pg_version or 'n/a'}, "
            f"SQLite {machine['sqlite']}, {machine['wrk']}"
        )
        log("packages: " + ", ".join(f"{k} {v}" for k, v in machine["packages"].items()))
        load = machine["loadavg_at_start"]
        log(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        if load[0] > 0.5:
            log("  note: the machine is not idle; compare the `other` CPU column of each run")
        log(
            f"plan: profiles {args.profile_list}; {args.connections} clients "
            f"(wrk, {args.wrk_threads} threads); warm-up {args.warmup:g} s, then {args.runs} "
            f"rounds of {args.duration:g} s per kind ({', '.join(KINDS)}), interleaved; "
            f"about {args.estimate_s / 60:.1f} min, hard limit {args.max_seconds:.0f} s"
        )
        log(
            "columns: requests/s; 2xx/s; latency p50/p99; non-2xx answers; socket errors; CPU "
            "in cores (server processes, database backends, wrk, everything else); for ticket "
            "runs the waiting queue before the run and tickets created minus 201 answers"
        )
        results = {
            "benchmark": "issue_tickets",
            "started_at": started.isoformat(timespec="seconds"),
            "git": git_revision(),
            "machine": machine,
            "settings": {
                k: getattr(args, k)
                for k in (
                    "runs",
                    "duration",
                    "warmup",
                    "connections",
                    "wrk_threads",
                    "workers",
                    "threads",
                    "branch",
                    "drain",
                    "quiet",
                    "max_wait",
                )
            },
            "profiles": {},
        }
        for profile in args.profile_list:
            log()
            log(f"== {profile} profile ==")
            pdir = workdir / profile
            pdir.mkdir()
            server = (prepare_production if profile == "production" else prepare_embedded)(
                args, pdir
            )
            try:
                result = bench_profile(server, args)
            except Exception:
                log(f"  server log ({server.logfile}):\n{tail(server.logfile)}")
                raise
            finally:
                server.stop()
            results["profiles"][profile] = result
            print_profile_summary(result, args)

        log()
        log("== result ==")
        for profile, result in results["profiles"].items():
            s, r = result["summary"], result["ratios"]
            c = result["checks"]
            log(
                f"  {profile:<10} trivial {s['trivial']['median_ok_per_s']:8.1f}/s | tickets "
                f"mix {s['tickets_mix']['median_ok_per_s']:7.1f}/s (ratio {r['tickets_mix']:.3f})"
                f" | one service {s['tickets_single']['median_ok_per_s']:7.1f}/s "
                f"(ratio {r['tickets_single']:.3f}) | duplicates {c['duplicate_numbers']}, "
                f"created-201 {c['created_minus_201']:+d} (in flight at run ends)"
            )
            if c["duplicate_numbers"] or c["broken_sequences"] or not c["created_matches_201"]:
                exit_code = 1
        if "production" in results["profiles"]:
            ratio = results["profiles"]["production"]["ratios"]["tickets_mix"]
            verdict = "reached" if ratio >= 0.5 else "NOT reached"
            log(f"  aim (production, ticket issue >= 0.5 x trivial): {verdict} ({ratio:.3f})")
    except (Interrupted, KeyboardInterrupt) as exc:
        log(f"\ninterrupted ({exc or 'Ctrl+C'}): stopping the servers")
        exit_code = 130
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        log(f"\nbenchmark failed: {exc}")
        exit_code = 2
    finally:
        signal.alarm(0)
        stop_all()
        if results.get("profiles"):
            results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            results["complete"] = exit_code in (0, 1)
            results["machine"]["loadavg_at_end"] = os.getloadavg()
            out_dir = Path(args.results_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            stamp = started.strftime("%Y%m%dT%H%M%SZ")
            path = out_dir / f"issue_tickets-{stamp}.json"
            path.write_text(json.dumps(results, indent=2, default=str) + "\n")
            log(f"JSON summary: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        if args.keep_workdir:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
