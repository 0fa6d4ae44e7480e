#!/usr/bin/env python3
"""Benchmark: how long after a call's HTTP response do Socket.IO clients hear about it?

Connects N python-socketio clients (websocket transport, asyncio, spread over several client
processes) to branch JKT01 of the demo network: most as lobby displays (room `display:<id>`,
one broadcast per change), the rest as customers' phones on waiting teller tickets (room
`ticket:<id>`, one push per waiting ticket whose place moved). Then it calls tickets through
the API (bearer token of a demo staff member, `POST /api/v1/counters/<id>/call-next`, the
previous ticket started and finished first, untimed) one at a time, and records, for every
client, the delay from the call's HTTP response to the `change` push of that call (kind
`called`). Prints p50/p99/max and how many expected pushes never came.

    .venv/bin/python bench/realtime_latency.py --profile embedded --clients 500
    .venv/bin/python bench/realtime_latency.py --profile production --clients 2000

Profiles: `embedded` is `python run.py` on a SQLite file (in-process Socket.IO, threading);
`production` is the layout of docs/realtime.md: gunicorn gthread workers for HTTP (the API
calls) and the asyncio realtime process `python -m queue_app.realtime.aio` for the sockets,
sharing the Redis message queue (`BENCH_REDIS_URL`), on PostgreSQL (`BENCH_DATABASE_URL`,
default database `queue_app_realtime_bench`, emptied, migrated and seeded). The script plays the
reverse proxy: clients connect to the realtime port, API calls go to gunicorn's.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/queue_app_realtime_bench"
)
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flask(env, *args) -> str:
    out = subprocess.run(
        [PY, "-m", "flask", "--app", "queue_app", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


SETUP = r"""
import sys
from sqlalchemy import select
from queue_app import create_app
from queue_app.extensions import db
from queue_app.branches.models import Branch, Counter
from queue_app.core.types import utcnow
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import register_device
from queue_app.tickets import services as engine
from queue_app.branches.models import Service
n_tickets = int(sys.argv[1])
app = create_app()
with app.app_context():
    now = utcnow()
    branch = db.session.scalar(select(Branch).where(Branch.code == "JKT01"))
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    branch.opening_hours = {d: [["00:00", "23:59:59"]] for d in days}
    device, token = register_device(DeviceKind.DISPLAY, now=now)
    device.branch, device.paired_at, device.pairing_code, device.name = branch, now, None, "bench"
    teller = db.session.scalar(
        select(Service).where(Service.branch_id == branch.id, Service.code == "teller")
    )
    tokens = []
    for i in range(n_tickets):
        t = engine.issue_ticket(branch, teller, now=utcnow())
        tokens.append(t.visit.token)
    counters = [c.id for c in branch.counters if "teller" in [s.code for s in c.services]]
    db.session.commit()
    import json
    print(json.dumps({"display": token, "tickets": tokens, "counters": counters}))
"""


def prepare(profile, workdir) -> tuple[dict, dict]:
    env = {**os.environ, "SCHEDULER_ENABLED": "0", "QUEUE_APP_INSTANCE": str(workdir)}
    if profile == "production":
        from issue_tickets import reset_postgres

        reset_postgres(PG_URL)  # created when missing, emptied otherwise
        env.update(
            QUEUE_APP_PROFILE="production",
            DATABASE_URL=PG_URL,
            SECRET_KEY="bench-secret-key",
            SOCKETIO_MESSAGE_QUEUE=REDIS,
            FORCE_HTTPS="0",  # no TLS proxy in front: the bench talks to gunicorn directly
        )
    else:
        env.update(QUEUE_APP_PROFILE="embedded", DATABASE_URL=f"sqlite:///{workdir}/bench.sqlite3")
        env.pop("SOCKETIO_MESSAGE_QUEUE", None)
        env.pop("REDIS_URL", None)
    # the demo network refuses to seed under the production profile: set up as embedded
    setup_env = {**env, "QUEUE_APP_PROFILE": "embedded"}
    flask(setup_env, "db", "upgrade")
    flask(setup_env, "demo", "seed")
    token = flask(setup_env, "tokens", "create", "budi.santoso").strip().splitlines()[-1]
    return env, {"api_token": token, "setup_env": setup_env}


def wait_healthy(proc, port):
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit("server exited; see its log")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def start_server(profile, env, port, workers, threads, log):
    env = {**env, "HOST": "127.0.0.1", "PORT": str(port)}
    if profile == "production":
        cmd = [
            str(Path(PY).parent / "gunicorn"),
            "-k",
            "gthread",
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{port}",
            "--timeout",
            "120",
            "--backlog",
            "4096",
            "queue_app:create_app('production')",
        ]
    else:
        cmd = [PY, "run.py"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return wait_healthy(proc, port)


def group_cpu_s(proc) -> float:
    """User + system CPU seconds of every process in `proc`'s process group (its session:
    gunicorn's master and workers, or the realtime process)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == proc.pid:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def start_realtime(env, port, log):
    """production: the asyncio realtime process (`queue_app/realtime/aio.py`)."""
    proc = subprocess.Popen(
        [PY, "-m", "queue_app.realtime.aio", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return wait_healthy(proc, port)


# --- client processes ------------------------------------------------------------------------


def client_process(urls, specs, ready_q, go, result_q, expected_calls):
    """One process holding many asyncio clients. specs: [("display", token) | ("ticket", tok)]"""
    import socketio

    async def main():
        received: list[list[float]] = [[] for _ in specs]
        heard = [0]  # every `change` push these clients got
        clients = []

        async def one(i, kind, token):
            c = socketio.AsyncClient(reconnection=False)

            async def on_change(data):
                heard[0] += 1
                if data.get("kind") == "called":
                    received[i].append(time.time())

            c.on("change", on_change, namespace="/floor")
            kwargs = {"transports": ["websocket"], "namespaces": ["/floor"]}
            if kind == "display":
                kwargs["headers"] = {"Cookie": f"qa_device_display={token}"}
            else:
                kwargs["auth"] = {"ticket": token}
            for attempt in range(5):
                try:
                    await c.connect(urls[i % len(urls)], wait_timeout=30, **kwargs)
                    break
                except Exception:
                    await asyncio.sleep(0.5 + attempt)
            clients.append(c)

        sem = asyncio.Semaphore(20)

        async def gated(*a):
            async with sem:
                await one(*a)

        await asyncio.gather(*(gated(i, k, t) for i, (k, t) in enumerate(specs)))
        ready_q.put(sum(1 for c in clients if c.connected))
        heard[0] = 0
        cpu0 = time.process_time()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, go.wait)
        # the driver sets `go` again when all calls are done; give late pushes a moment
        await asyncio.sleep(3)
        result_q.put((received, time.process_time() - cpu0, heard[0]))
        for c in clients:
            with contextlib.suppress(Exception):
                await c.disconnect()

    try:  # the clients share two cores with the server: the cheapest event loop there is
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


def api(url, path, token):
    req = urllib.request.Request(url + "/api/v1" + path, data=b"{}", method="POST")
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read() or b"null")


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def run(args):
    workdir = Path(tempfile.mkdtemp(prefix="rt-bench-"))
    log = open(workdir / "server.log", "ab")  # noqa: SIM115
    server = None
    realtimes: list = []
    procs = []
    try:
        env, creds = prepare(args.profile, workdir)
        n_ticket_clients = int(args.clients * args.ticket_share)
        n_tickets = max(args.calls + 10, min(args.tickets, max(1, n_ticket_clients)))
        setup = json.loads(
            subprocess.run(
                [PY, "-c", SETUP, str(n_tickets)],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        port = free_port()
        server = start_server(args.profile, env, port, args.workers, args.threads, log)
        api_url = url = f"http://127.0.0.1:{port}"
        if args.profile == "production":
            # the reverse proxy's job in production: /socket.io/ to the realtime process,
            # everything else to gunicorn
            # one realtime process per core (`--realtime-procs`), the clients spread over them
            # as a proxy would spread new connections
            urls = []
            for _ in range(args.realtime_procs):
                rt_port = free_port()
                realtimes.append(start_realtime(env, rt_port, log))
                urls.append(f"http://127.0.0.1:{rt_port}")
        else:
            urls = [url]
        specs = [
            ("ticket", setup["tickets"][i % len(setup["tickets"])]) for i in range(n_ticket_clients)
        ]
        specs += [("display", setup["display"])] * (args.clients - n_ticket_clients)
        chunks = [specs[i :: args.procs] for i in range(args.procs)]
        ctx = mp.get_context("spawn")
        ready_q, result_q, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        for chunk in chunks:
            p = ctx.Process(
                target=client_process,
                args=(urls, chunk, ready_q, go, result_q, args.calls),
            )
            p.start()
            procs.append(p)
        connected = sum(ready_q.get(timeout=600) for _ in procs)
        print(f"{connected}/{args.clients} clients connected", flush=True)
        token = creds["api_token"]
        counter = setup["counters"][0]
        servers = {"web": [server], "realtime": realtimes}
        cpu_before = {k: sum(map(group_cpu_s, ps)) for k, ps in servers.items() if ps}
        api(api_url, f"/counters/{counter}/open", token)
        time.sleep(2)  # the counter_opened pushes settle
        go_time = []
        active = None
        for _ in range(args.calls):
            if active is not None:
                api(api_url, f"/tickets/{active}/start", token)
                api(api_url, f"/tickets/{active}/finish", token)
                time.sleep(args.gap)
            t_req = time.time()
            status, body = api(api_url, f"/counters/{counter}/call-next", token)
            go_time.append(time.time())
            if os.environ.get("BENCH_DEBUG"):
                print(f"call sent={t_req:.3f} answered={go_time[-1]:.3f}", flush=True)
            active = body["id"] if status == 200 and body else None
            time.sleep(args.gap)
        time.sleep(3)  # as the clients do: the late pushes count too
        cpu = {k: sum(map(group_cpu_s, servers[k])) - v for k, v in cpu_before.items()}
        go.set()
        delays, missing, expected = [], 0, 0
        clients_cpu, heard = 0.0, 0
        by_kind: dict[str, list[float]] = {"display": [], "ticket": []}
        for chunk in chunks:
            received, chunk_cpu, chunk_heard = result_q.get(timeout=600)
            clients_cpu += chunk_cpu
            heard += chunk_heard
            for (kind, _tok), times in zip(chunk, received, strict=True):
                if kind == "display":
                    expected += len(go_time)
                    missing += max(0, len(go_time) - len(times))
                # a phone hears the calls while its ticket waits, and its own call
                mine = [(t - g) * 1000 for t, g in zip(times, go_time, strict=False)]
                delays.extend(mine)
                by_kind[kind].extend(mine)
        summary = {
            "profile": args.profile,
            "clients": args.clients,
            "connected": connected,
            "ticket_clients": n_ticket_clients,
            "calls": len(go_time),
            "pushes_measured": len(delays),
            "display_pushes_missing": f"{missing}/{expected}",
            "p50_ms": round(statistics.median(delays), 1) if delays else None,
            "p99_ms": round(pct(delays, 99), 1),
            "max_ms": round(max(delays), 1) if delays else None,
            **{
                f"{kind}_p{q}_ms": round(pct(values, q), 1)
                for kind, values in by_kind.items()
                for q in (50, 99)
            },
            "load_avg_1m": round(os.getloadavg()[0], 2),
            # CPU seconds spent while the calls ran, and what one push cost the clients: with
            # the clients on the server's cores, their share bounds the latency from below
            "cpu_s": {
                **{k: round(v, 2) for k, v in cpu.items()},
                "clients": round(clients_cpu, 2),
            },
            "pushes_heard": heard,
            "client_cpu_us_per_push": round(clients_cpu / heard * 1e6) if heard else None,
        }
        print(json.dumps(summary), flush=True)
        return summary
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        for proc in (server, *realtimes):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=["embedded", "production"], default="embedded")
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument(
        "--ticket-share",
        type=float,
        default=0.25,
        help="share of clients that are phones on waiting tickets",
    )
    parser.add_argument(
        "--tickets", type=int, default=100, help="waiting tickets the phones follow"
    )
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between API calls")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (production)")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument(
        "--realtime-procs",
        type=int,
        default=os.cpu_count() or 1,
        help="production: realtime processes (default: one per core)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and server log")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
