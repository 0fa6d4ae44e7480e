"""How many tickets per second can PostgreSQL itself issue on this machine?

The ceiling under `bench/issue_tickets.py`: the one statement a plain ticket is on PostgreSQL
(`queue_app/tickets/fastpath.py`, `ISSUE`), run by `pgbench` (a C client that costs the
machine next to nothing) with the same 16 connections, prepared, on a database migrated and
seeded like the benchmark's. No Python, no HTTP: whatever this reaches, the web application
cannot exceed.

Two variants, each run `--runs` times for `--duration` seconds after cancelling the waiting
tickets (so every run starts with an empty queue, like `issue_tickets.py --drain`):

- `statement`: the whole statement (visit, ticket, number, position, the branch's next journal
  sequence number and the journal entry);
- `no journal`: the same without the branch sequence update and the journal entry: what the
  per-branch journal costs.

    .venv/bin/python bench/statement_ceiling.py            # sets the database up first
    .venv/bin/python bench/statement_ceiling.py --runs 5 --duration 10

Needs `pgbench` (Debian: postgresql-client or postgresql-contrib) and PostgreSQL on
127.0.0.1:5432 (user postgres, trust). Prints each run's tickets per second and the medians.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from issue_tickets import DEFAULT_PG_URL, base_env, reset_postgres, run_cli

BRANCH = "JKT01"
SERVICES = ("teller", "cs", "loans", "cards")


def pgbench_script(
    service_rows: dict[str, tuple[int, str]], branch_id: int, zone: str, *, journal: bool
) -> str:
    """`ISSUE` as a pgbench script: a random service of the mix, a fresh token per ticket."""
    from sqlalchemy.dialects import postgresql

    from queue_app.tickets.fastpath import ISSUE

    sql = str(ISSUE.compile(dialect=postgresql.dialect()))
    ids = [service_rows[c][0] for c in SERVICES]
    codes = ",".join(f"'{c}'" for c in SERVICES)
    prefixes = ",".join(f"'{service_rows[c][1]}'" for c in SERVICES)
    values = {
        "branch_id": str(branch_id),
        "service_id": f"(ARRAY[{','.join(map(str, ids))}])[:i]",
        "service_code": f"(ARRAY[{codes}])[:i]",
        "prefix": f"(ARRAY[{prefixes}])[:i]",
        "branch_code": f"'{BRANCH}'",
        "timezone": f"'{zone}'",
        "day": f"(now() AT TIME ZONE '{zone}')::date",
        "token": "md5(random()::text || clock_timestamp()::text)",
        "now": "now()",
        "priority": "'normal'",
        "source": "'kiosk'",
        "actor_id": "NULL",
        "data": '\'{"source": "kiosk", "priority": "normal"}\'',
    }
    sql = re.sub(r"%\((\w+)\)s", lambda m: values[m.group(1)], sql)
    if not journal:
        start, end = sql.index(", b AS ("), sql.index("SELECT t.id, t.visit_id")
        sql = sql[:start] + " " + sql[end:]
        sql = sql.replace(", b.event_seq", "").replace("FROM t, b, ok", "FROM t, ok")
    return f"\\set i random(1, {len(SERVICES)})\n" + " ".join(sql.split()) + ";\n"


def psql(url: str, sql: str) -> str:
    out = subprocess.run(
        ["psql", "-X", "-q", "-At", "-d", url, "-c", sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.strip()


def run_pgbench(url: str, script: Path, clients: int, seconds: int) -> float:
    out = subprocess.run(
        [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-f",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    if out.returncode != 0:
        raise SystemExit(f"pgbench failed: {out.stderr.strip()[-500:]}")
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    if failed and int(failed.group(1)):
        raise SystemExit(f"pgbench: {failed.group(1)} failed transactions")
    return float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=DEFAULT_PG_URL)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=int, default=5, help="seconds per run")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--no-setup", action="store_true", help="use the database as it is")
    args = p.parse_args(argv)
    if shutil.which("pgbench") is None:
        print("pgbench is not installed (Debian: apt-get install postgresql-client)")
        return 2
    url = args.database_url
    if not args.no_setup:
        print(f"setting up {url} (emptied, migrated, demo data) ...")
        reset_postgres(url)
        env = base_env()
        env.update(
            {
                "DATABASE_URL": url,
                "QUEUE_APP_PROFILE": "production",
                "SECRET_KEY": secrets.token_urlsafe(32),
                "QUEUE_APP_INSTANCE": tempfile.mkdtemp(prefix="queue_app_ceiling_"),
            }
        )
        run_cli(["db", "upgrade"], env)
        run_cli(["demo", "seed", "--allow-production"], env)
    rows = psql(
        url,
        f"SELECT b.id, b.timezone, s.code, s.id, s.prefix FROM branches b "
        f"JOIN services s ON s.branch_id = b.id WHERE b.code = '{BRANCH}'",
    )
    services, branch_id, zone = {}, None, None
    for line in rows.splitlines():
        b, tz, code, sid, prefix = line.split("|")
        branch_id, zone = int(b), tz
        services[code] = (int(sid), prefix)
    missing = [c for c in SERVICES if c not in services]
    if missing:
        raise SystemExit(f"branch {BRANCH} has no service {missing}: run without --no-setup")
    cpu = os.cpu_count()
    print(
        f"pgbench, {args.connections} connections, prepared, {args.runs} x {args.duration} s, "
        f"{cpu} cores, {psql(url, 'SHOW server_version')}; each run starts with no waiting "
        "ticket"
    )
    medians = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, journal in (("statement", True), ("no journal", False)):
            script = Path(tmp) / f"{'full' if journal else 'bare'}.sql"
            script.write_text(pgbench_script(services, branch_id, zone, journal=journal))
            rates = []
            for i in range(1, args.runs + 1):
                psql(url, "UPDATE tickets SET status = 'cancelled' WHERE status = 'waiting'")
                psql(url, "VACUUM ANALYZE tickets")
                rate = run_pgbench(url, script, args.connections, args.duration)
                rates.append(rate)
                print(f"  {label:<11} run {i}  {rate:8.1f} tickets/s")
            medians[label] = statistics.median(rates)
    print("== result ==")
    for label, rate in medians.items():
        print(f"  {label:<11} median {rate:8.1f} tickets/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
