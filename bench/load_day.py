#!/usr/bin/env python3
"""Load bench: a compressed network day on the production layout, one web process vs several.

Creates `--branches` branches (Indonesian cities and districts, three services, six counters
each, a paired lobby display and kiosk, six staff members with API tokens) in the bench
database (`BENCH_DATABASE_URL`, default `queue_app_load`: emptied and migrated), starts a
private Redis (or uses `--redis-url`), the asyncio realtime process(es) and gunicorn, and
connects `--sockets` python-socketio clients (websocket transport, spread over
`--client-procs` processes): one lobby display per branch, counter screens (staff, six per
branch at most) and customers' phones following the loan tickets that wait when the day starts.

Then, for each web layout of `--processes` ("1,3": one gunicorn worker, then three; the
sockets and the realtime process stay), it plays `--duration` seconds of traffic at `--rate`
operations per second (after an untimed warm-up): customers arrive (Poisson) and take a ticket
through the API (anonymous, `POST /api/v1/branches/<code>/tickets`) or at the branch's kiosk
(`GET` the form, `POST /kiosk/id/tickets` with its CSRF token and form key); every counter
calls the next ticket when somebody waits (`call-next`), starts and finishes it after a short
random walk and service time; a share of API customers rate their visit
(`POST /api/v1/tickets/<token>/feedback`). It prints per layout: sustained operations/s,
p50/p99 latency per operation, the p99 delay from the HTTP answer of a call to the `change`
push (kind `called`) heard by the branch's display, missing pushes, errors; then the ratio of
the last layout to the first. See bench/README.md.

    .venv/bin/python bench/load_day.py --duration 20 --branches 200 --sockets 2000
    .venv/bin/python bench/load_day.py --duration 120 --rate 200 --processes 1,3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/queue_app_load")
UA = "queue-app-load-day/1"
# a visit: issue, call, start, finish, and a rating for this share of API tickets
FEEDBACK_SHARE = 0.3
KIOSK_SHARE = 0.4
OPS_PER_VISIT = 4 + FEEDBACK_SHARE * (1 - KIOSK_SHARE)
SERVICE_MIX = (("teller", 0.70), ("cs", 0.25), ("loans", 0.05))
COUNTERS = [  # six counters a branch
    ("Loket 1", ["teller"]),
    ("Loket 2", ["teller", "cs"]),
    ("Loket 3", ["teller"]),
    ("Loket 4", ["teller"]),
    ("Loket 5", ["cs"]),
    ("Loket 6", ["cs", "loans"]),
]

# --- setup (run in a child process against the bench database) -------------------------------

SETUP = r"""
import json, sys
from argon2 import PasswordHasher
from flask_login.utils import _create_identifier
from queue_app import create_app
from queue_app.accounts import services as accounts
from queue_app.accounts.models import Role
from queue_app.core.types import utcnow
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import register_device
from queue_app.extensions import db
from tests import factories

n_branches, n_staff, n_backlog, counters, ua, out = (
    int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5],
    sys.argv[6],
)
CITIES = [  # code, city, time zone, districts
    ("JKT", "Jakarta", "Asia/Jakarta", ["Sudirman", "Thamrin", "Kemang", "Kelapa Gading",
     "Cempaka Putih", "Tebet", "Menteng", "Pluit", "Cawang", "Kebayoran Baru"]),
    ("BDG", "Bandung", "Asia/Jakarta", ["Dago", "Asia Afrika", "Buah Batu", "Setiabudi",
     "Antapani", "Cihampelas", "Kopo", "Ujung Berung", "Pasteur", "Braga"]),
    ("SBY", "Surabaya", "Asia/Jakarta", ["Tunjungan", "Darmo", "Rungkut", "Manyar", "Gubeng",
     "Kenjeran", "Wiyung", "Pakuwon", "Kertajaya", "Pucang"]),
    ("MDN", "Medan", "Asia/Jakarta", ["Merdeka", "Petisah", "Helvetia", "Amplas", "Marelan",
     "Sunggal", "Polonia", "Belawan", "Tembung", "Johor"]),
    ("SMG", "Semarang", "Asia/Jakarta", ["Pandanaran", "Simpang Lima", "Banyumanik",
     "Tembalang", "Ngaliyan", "Candi", "Kaligawe", "Majapahit", "Peterongan", "Genuk"]),
    ("MKS", "Makassar", "Asia/Makassar", ["Losari", "Panakkukang", "Tamalanrea", "Mariso",
     "Rappocini", "Daya", "Sudiang", "Antang", "Tallo", "Mamajang"]),
    ("PLM", "Palembang", "Asia/Jakarta", ["Ampera", "Sudirman", "Plaju", "Kenten", "Sako",
     "Bukit Besar", "Demang", "Kertapati", "Jakabaring", "Sekip"]),
    ("DPS", "Denpasar", "Asia/Makassar", ["Renon", "Sanur", "Teuku Umar", "Gatot Subroto",
     "Sesetan", "Ubung", "Panjer", "Gianyar", "Kuta", "Nusa Dua"]),
    ("YOG", "Yogyakarta", "Asia/Jakarta", ["Malioboro", "Kaliurang", "Gejayan", "Kotabaru",
     "Bantul", "Sleman", "Godean", "Wirobrajan", "Umbulharjo", "Condongcatur"]),
    ("BPN", "Balikpapan", "Asia/Makassar", ["Klandasan", "Sepinggan", "Gunung Sari",
     "Karang Joang", "Damai", "Muara Rapak", "Batu Ampar", "Gunung Bahagia", "Lamaru",
     "Kariangau"]),
    ("PKU", "Pekanbaru", "Asia/Jakarta", ["Sudirman", "Panam", "Rumbai", "Tampan", "Sukajadi",
     "Senapelan", "Marpoyan", "Bukit Raya", "Lima Puluh", "Tenayan"]),
    ("PNK", "Pontianak", "Asia/Jakarta", ["Gajah Mada", "Ahmad Yani", "Siantan", "Kota Baru",
     "Sungai Jawi", "Tanjung Hulu", "Sungai Raya", "Parit Tokaya", "Kampung Bali", "Tengah"]),
    ("MND", "Manado", "Asia/Makassar", ["Boulevard", "Sario", "Wenang", "Tikala", "Malalayang",
     "Paal Dua", "Mapanget", "Tuminting", "Singkil", "Wanea"]),
    ("BJM", "Banjarmasin", "Asia/Makassar", ["Lambung Mangkurat", "Kayu Tangi", "Veteran",
     "Pasar Lama", "Banua Anyar", "Kertak Hanyar", "Teluk Dalam", "Kelayan", "Pekapuran",
     "Sungai Miai"]),
    ("PDG", "Padang", "Asia/Jakarta", ["Pondok", "Khatib Sulaiman", "Air Tawar", "Lubuk Begalung",
     "Kuranji", "Tabing", "Siteba", "Bungus", "Pauh", "Koto Tangah"]),
    ("JMB", "Jambi", "Asia/Jakarta", ["Sipin", "Jelutung", "Telanaipura", "Kota Baru",
     "Pasar Jambi", "Thehok", "Mayang", "Talang Banjar", "Pal Merah", "Simpang Rimbo"]),
    ("KPG", "Kupang", "Asia/Makassar", ["El Tari", "Oebobo", "Kelapa Lima", "Maulafa", "Alak",
     "Oesapa", "Fatululi", "Naikoten", "Kayu Putih", "Liliba"]),
    ("AMB", "Ambon", "Asia/Jayapura", ["Pattimura", "Sirimau", "Nusaniwe", "Baguala",
     "Teluk Ambon", "Passo", "Tantui", "Batu Merah", "Waihaong", "Kudamati"]),
    ("JAY", "Jayapura", "Asia/Jayapura", ["Ahmad Yani", "Abepura", "Entrop", "Sentani",
     "Kotaraja", "Waena", "Hamadi", "Dok Dua", "Argapura", "Skyline"]),
    ("MTR", "Mataram", "Asia/Makassar", ["Pejanggik", "Cakranegara", "Ampenan", "Sekarbela",
     "Selaparang", "Sandubaya", "Rembiga", "Kekalik", "Karang Jasi", "Udayana"]),
]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
app = create_app()
accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # setup only
serializer = app.session_interface.get_signing_serializer(app)
with app.test_request_context(
    "/", headers={"User-Agent": ua}, environ_base={"REMOTE_ADDR": "127.0.0.1"}
):
    ident = _create_identifier()  # what session protection ("strong") expects of the clients
result = []
with app.app_context():
    now = utcnow()
    for i in range(n_branches):
        code3, city, tz, districts = CITIES[i % len(CITIES)]
        n = i // len(CITIES)
        code = f"{code3}{n + 1:02d}"
        b = factories.branch(code, timezone=tz, counters=[tuple(c) for c in counters])
        b.name = f"Cabang {city} {districts[n % len(districts)]}"
        if n >= len(districts):
            b.name += f" {n // len(districts) + 1}"
        b.opening_hours = {d: [["00:00", "23:59:59"]] for d in DAYS}
        staff = []
        for k, c in enumerate(sorted(b.counters, key=lambda c: c.position)):
            u = factories.user(f"{code.lower()}.staff{k + 1}", branches=[b])
            staff.append((c.id, factories.token(u, now=now), u))
        display, display_token = register_device(DeviceKind.DISPLAY, now=now)
        display.branch, display.paired_at, display.pairing_code = b, now, None
        display.name = "Layar lobi"
        kiosk, kiosk_token = register_device(DeviceKind.KIOSK, now=now)
        kiosk.branch, kiosk.paired_at, kiosk.pairing_code, kiosk.name = b, now, None, "Kios 1"
        db.session.flush()
        # the loan queue at opening, which the phones follow (one counter serves loans: it
        # drains at the pace of the day instead of in one burst of calls)
        backlog = [factories.ticket(b, "loans", now=utcnow()).visit.token for j in range(n_backlog)]
        cookies = [
            serializer.dumps({"_user_id": u.get_id(), "_fresh": True, "_id": ident})
            for _cid, _tok, u in staff[:n_staff]
        ]
        db.session.commit()
        result.append({
            "code": code,
            "counters": [{"id": cid, "token": tok, "services": counters[k][1]}
                         for k, (cid, tok, _u) in enumerate(staff)],
            "display": display_token,
            "kiosk": kiosk_token,
            "staff_cookies": cookies,
            "backlog": backlog,
        })
with open(out, "w") as f:
    json.dump(result, f)
"""


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(proc, url, what):
    for _ in range(900):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited; see its log")
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


def start_redis(log):
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    import redis

    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            return proc, f"redis://127.0.0.1:{port}/0"
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def start_gunicorn(env, port, workers, threads, log):
    cmd = [
        # the production settings module (keep-alive longer than a client keeps a connection
        # idle), then the layout's workers and threads
        str(Path(PY).parent / "gunicorn"), "-c", "python:queue_app.observability.gunicorn_conf",
        "-k", "gthread", "-w", str(workers),
        "--threads", str(threads), "-b", f"127.0.0.1:{port}", "--timeout", "120",
        "--backlog", "4096", "--no-control-socket", "queue_app:create_app('production')",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return wait_healthy(proc, f"http://127.0.0.1:{port}", "gunicorn")


def start_realtime(env, port, log):
    proc = subprocess.Popen(
        [PY, "-m", "queue_app.realtime.aio", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return wait_healthy(proc, f"http://127.0.0.1:{port}", "realtime process")


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _stats():
    """(pid, command, fields after the command) of every process: /proc/<pid>/stat."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        yield int(entry), head.split("(", 1)[1], rest.split()


def group_cpu_s(proc) -> float:
    """User + system CPU seconds of every process in `proc`'s process group."""
    if proc is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return (
        sum(int(f[11]) + int(f[12]) for _pid, _comm, f in _stats() if int(f[2]) == proc.pid) / tick
    )


def pids_cpu_s(pids) -> float:
    """User + system CPU seconds of these processes (the socket client processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    wanted = set(pids)
    return sum(int(f[11]) + int(f[12]) for pid, _comm, f in _stats() if pid in wanted) / tick


def postgres_cpu_s() -> float:
    """User + system CPU seconds of the PostgreSQL server on this machine: its live processes
    plus, through the postmaster's children counters, the backends that have ended. The bench
    database is the only one in use while the bench runs (nothing else should run)."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = {pid: f for pid, comm, f in _stats() if comm == "postgres"}
    total = 0
    for f in procs.values():
        total += int(f[11]) + int(f[12])
        if int(f[1]) not in procs:  # the postmaster: its ended children count here
            total += int(f[13]) + int(f[14])
    return total / tick


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (every core, anything but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cpu_now(servers) -> dict[str, float]:
    """CPU seconds so far of each part of the bench (`cpu_budget` takes differences)."""
    return {
        "web": group_cpu_s(servers["web"]),
        "realtime": sum(group_cpu_s(p) for p in servers["realtime"]),
        "postgres": postgres_cpu_s(),
        "redis": group_cpu_s(servers["redis"]),
        "clients": pids_cpu_s(servers["clients"]),  # the socket client processes
        "driver": time.process_time(),  # this process: the HTTP clients
        "machine": machine_busy_s(),
    }


def cpu_budget(cpu: dict[str, float], ops: int, duration: float) -> dict:
    """What one operation cost in CPU over the recorded seconds, per part, and the operations
    per second the machine's cores could hold at that cost (when nothing but the CPU limits):
    the ceiling of this code on this machine, with the load clients on it too."""
    if not ops:
        return {}
    parts = {k: v for k, v in cpu.items() if k != "machine"}
    other = max(0.0, cpu.get("machine", 0.0) - sum(parts.values()))
    per_op = {k: round(1000 * v / ops, 2) for k, v in {**parts, "other": other}.items()}
    total = sum(per_op.values())
    cores = os.cpu_count() or 1
    return {
        "cpu_ms_per_op": per_op,
        "cpu_ms_per_op_total": round(total, 2),
        "cores_busy": round(cpu.get("machine", 0.0) / duration, 2),
        "ops_per_s_at_this_cost": round(cores * 1000 / total, 1) if total else None,
        # the same without the load clients (they would run on another machine)
        "ops_per_s_at_this_cost_server_only": round(
            cores * 1000 / (total - per_op["clients"] - per_op["driver"]), 1
        )
        if total > per_op["clients"] + per_op["driver"]
        else None,
    }


# --- socket clients (child processes) ----------------------------------------------------------


def realtime_url(urls, spread, i, branch):
    """Where socket `i` of `branch` connects: by branch, as the README's nginx site hashes the
    `branch` query parameter floor.js sends (every socket of a branch in one process); or by
    client, socket after socket, as `ip_hash` over many client addresses would."""
    if spread == "branch":
        return f"{urls[zlib.crc32(branch.encode()) % len(urls)]}?branch={branch}"
    return urls[i % len(urls)]


def concerns(change, counter_id, codes) -> bool:
    """Whether a counter screen reads its state again after this change: what
    static/js/counter.js decides (`concernsThisCounter`, then `applyChange`): its counter's
    change, a ticket at it, a counter serving its services opening or closing, a ticket joining
    or leaving the waiting list it calls from unless the push itself tells it (a ticket leaving,
    a walk-in joining); never an estimate. The page applies a push only on a state true up to
    the change before it; the model takes that as given (every change is heard, in order)."""
    if change.get("kind") == "estimate":
        return False
    ticket, counter = change.get("ticket"), change.get("counter")
    if not ticket and not counter:
        return True
    if counter and counter.get("id") == counter_id:
        return True
    if ticket and (ticket.get("counter") or {}).get("id") == counter_id:
        return True
    mine = any(q.get("code") in codes for q in change.get("queues") or ())
    if not ticket:
        return mine
    joins, leaves = ticket.get("status") == "waiting", change.get("from_status") == "waiting"
    if not joins and not leaves:
        return False
    target = ticket.get("target_counter_id")
    if not (target == counter_id if target else mine):
        return False  # not on the list it calls from
    if leaves and not joins:
        return False  # applied from the push
    walk_in = not target and not ticket.get("transferred") and ticket.get("source") != "appointment"
    return not (change.get("kind") == "issued" and walk_in)


def client_process(urls, spread, specs, ready_q, done, result_q, web_url, screen_reads):
    """Holds asyncio python-socketio clients. specs: [(kind, branch, credential)], kind one of
    display, staff, phone. Reports the `called` pushes the displays heard
    [(branch, number, time)], the disconnects [(kind, time)] and failed connects, and the
    counter screens' reads of their state [(sent at, ms, ok)].

    A staff socket is a counter screen (credential: session cookie, counter id, its service
    codes): as static/js/counter.js does, it reads `GET /counter/<branch>/<id>/state` 150 ms
    after a change (a later change within them restarts the wait), for every change
    (`screen_reads` "every", what the screen did before it told changes apart), for the changes
    that concern it ("concerned", what it does now) or never ("off")."""
    import aiohttp
    import socketio

    async def main():
        heard: list[tuple[str, str, float]] = []
        disconnects: list[tuple[str, float]] = []
        failed = Counter()
        changes = [0]
        clients = []
        reads: list[tuple[float, float, bool]] = []
        timers: dict[int, asyncio.TimerHandle] = {}
        in_flight: set[asyncio.Task] = set()
        loop = asyncio.get_running_loop()
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=128),
            timeout=aiohttp.ClientTimeout(total=30),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

        async def read_state(branch, cookie, counter_id):
            sent, t0, ok = time.time(), time.perf_counter(), False
            headers = {"User-Agent": UA, "Cookie": f"session={cookie}"}
            headers["Accept"] = "application/json"
            try:
                url = f"{web_url}/counter/{branch}/{counter_id}/state"
                async with http.get(url, headers=headers) as r:
                    await r.read()
                    ok = r.status == 200
            except Exception:
                ok = False
            reads.append((sent, (time.perf_counter() - t0) * 1000, ok))

        def read_soon(branch, cookie, counter_id):
            def go():
                t = asyncio.ensure_future(read_state(branch, cookie, counter_id))
                in_flight.add(t)
                t.add_done_callback(in_flight.discard)

            if counter_id in timers:
                timers[counter_id].cancel()
            timers[counter_id] = loop.call_later(0.15, go)

        async def one(i, kind, branch, cred):
            c = socketio.AsyncClient(reconnection=False)
            screen = cred if kind == "staff" else None

            async def on_change(data):
                changes[0] += 1
                if kind == "display" and data.get("kind") == "called":
                    heard.append((data.get("branch"), data["ticket"]["number"], time.time()))
                if screen is not None and screen_reads != "off":
                    cookie, counter_id, codes = screen
                    if screen_reads == "every" or concerns(data, counter_id, codes):
                        read_soon(branch, cookie, counter_id)

            async def on_disconnect(*_a):
                disconnects.append((kind, time.time()))

            c.on("change", on_change, namespace="/floor")
            c.on("disconnect", on_disconnect, namespace="/floor")
            kwargs = {"transports": ["websocket"], "namespaces": ["/floor"]}
            headers = {"User-Agent": UA}
            if kind == "display":
                headers["Cookie"] = f"qa_device_display={cred}"
            elif kind == "staff":
                headers["Cookie"] = f"session={cred[0]}"
                kwargs["auth"] = {"branch": branch}
            else:
                kwargs["auth"] = {"ticket": cred}
            kwargs["headers"] = headers
            for attempt in range(4):
                try:
                    url = realtime_url(urls, spread, i, branch)
                    await c.connect(url, wait_timeout=30, **kwargs)
                    clients.append(c)
                    return
                except Exception:
                    await asyncio.sleep(0.5 + attempt)
            failed[kind] += 1

        sem = asyncio.Semaphore(20)

        async def gated(*a):
            async with sem:
                await one(*a)

        await asyncio.gather(*(gated(i, *spec) for i, spec in enumerate(specs)))
        ready_q.put((sum(1 for c in clients if c.connected), dict(failed)))
        await asyncio.get_running_loop().run_in_executor(None, done.wait)
        await asyncio.sleep(2)  # late pushes
        result_q.put((heard, disconnects, changes[0], time.process_time(), reads))
        for c in clients:
            with contextlib.suppress(Exception):
                await c.disconnect()
        await http.close()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


# --- the driver: customers and counters --------------------------------------------------------


class Phase:
    def __init__(self, name):
        self.name = name
        self.recording = False
        self.t0 = self.t1 = 0.0
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter = Counter()
        self.error_samples: list[str] = []
        self.ops = 0
        self.http = 0
        self.calls: list[tuple[str, str, float]] = []  # (branch, number, answered at)
        self.timeline: list[tuple[float, float]] = []  # (sent at, ms) of every timed answer
        self.cpu: dict[str, float] = {}


class BranchState:
    def __init__(self, spec, weight):
        self.code = spec["code"]
        self.spec = spec
        self.weight = weight
        # tickets known to wait, per service
        self.waiting: Counter = Counter({"loans": len(spec["backlog"])})
        self.wake = asyncio.Event()
        self.tokens: dict[int, str] = {}  # ticket id -> token (API tickets, for feedback)
        self.kiosk_cookies: dict[str, str] = {"qa_device_kiosk": spec["kiosk"]}
        self.view = None  # (when, GET /branches/<code>/counters items)
        self.view_lock = asyncio.Lock()


class Driver:
    def __init__(self, session, base, branches, args):
        self.s = session
        self.base = base
        self.branches = branches
        self.args = args
        self.phase: Phase | None = None
        self.running = False
        self.rng = random.Random(args.seed)
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, coro):
        t = asyncio.create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def request(self, op, method, path, *, expect, token=None, data=None, json_body=None,
                      headers=None, timed=True):  # fmt: skip
        """One HTTP request; latency recorded under `op` when the phase records; returns
        (status, body or None, response headers) or None on an error (counted)."""
        phase = self.phase
        recording = phase is not None and phase.recording
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        t0, sent_at = time.perf_counter(), time.time()
        try:
            async with self.s.request(
                method, self.base + path, json=json_body, data=data, headers=h,
                allow_redirects=False,
            ) as r:  # fmt: skip
                raw = await r.read()
                status, rheaders = r.status, r.headers
        except Exception as exc:  # connection refused or reset, timeout
            if recording:
                phase.errors[f"{op}: {type(exc).__name__}"] += 1
            return None
        ms = (time.perf_counter() - t0) * 1000
        if recording:
            phase.http += 1
        if status not in expect:
            if recording:
                phase.errors[f"{op}: HTTP {status}"] += 1
                if len(phase.error_samples) < 10:
                    phase.error_samples.append(f"{op} {path} {status} {raw[:200]!r}")
            return None
        if recording and timed:
            phase.lat[op].append(ms)
            phase.timeline.append((sent_at, ms))
            phase.ops += 1
        body = None
        if raw and r.content_type == "application/json":
            body = json.loads(raw)
        elif raw and r.content_type == "text/html":
            body = raw.decode()
        return status, body, rheaders

    # customers

    def pick_service(self):
        x = self.rng.random()
        for code, share in SERVICE_MIX:
            if x < share:
                return code
            x -= share
        return SERVICE_MIX[0][0]

    async def arrivals(self, rate_visits):
        while self.running:
            await asyncio.sleep(self.rng.expovariate(rate_visits))
            if not self.running:
                break
            b = self.rng.choices(self.branches, weights=[b.weight for b in self.branches])[0]
            service = self.pick_service()
            if self.rng.random() < KIOSK_SHARE:
                self.spawn(self.kiosk_issue(b, service))
            else:
                self.spawn(self.api_issue(b, service))

    async def api_issue(self, b, service):
        got = await self.request(
            "issue_api", "POST", f"/api/v1/branches/{b.code}/tickets",
            json_body={"service": service}, expect={201},
        )  # fmt: skip
        if got:
            b.tokens[got[1]["id"]] = got[1]["token"]
        self.arrived(b, service)  # unanswered, it may exist all the same: a 204 corrects

    async def kiosk_issue(self, b, service):
        cookie = "; ".join(f"{k}={v}" for k, v in b.kiosk_cookies.items())
        got = await self.request(
            "kiosk_form", "GET", f"/kiosk/id/service/{service}", expect={200},
            headers={"Cookie": cookie, "User-Agent": UA}, timed=False,
        )  # fmt: skip
        if not got:
            return
        _status, page, headers = got
        self.keep_cookies(b, headers)
        page = page or ""
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        key = re.search(r'name="form_key" value="([^"]+)"', page)
        if not (csrf and key):
            if self.phase.recording:
                self.phase.errors["kiosk_form: no form"] += 1
            return
        cookie = "; ".join(f"{k}={v}" for k, v in b.kiosk_cookies.items())
        got = await self.request(
            "issue_kiosk", "POST", "/kiosk/id/tickets", expect={303},
            data={"csrf_token": csrf.group(1), "form_key": key.group(1), "service": service},
            headers={"Cookie": cookie, "User-Agent": UA},
        )  # fmt: skip
        if got:
            self.keep_cookies(b, got[2])
            self.arrived(b, service)

    @staticmethod
    def keep_cookies(b, headers):
        for value in headers.getall("Set-Cookie", ()):
            name, _, rest = value.partition("=")
            b.kiosk_cookies[name.strip()] = rest.split(";", 1)[0]

    def arrived(self, b, service):
        b.waiting[service] += 1
        b.wake.set()

    async def feedback(self, token):
        await asyncio.sleep(self.rng.uniform(0.2, 2.0))
        nps = self.rng.choices(range(11), weights=[1, 1, 1, 1, 1, 2, 3, 6, 10, 12, 10])[0]
        await self.request(
            "feedback", "POST", f"/api/v1/tickets/{token}/feedback",
            json_body={"nps": nps, "csat": max(1, min(5, round(nps / 2)))}, expect={201},
        )  # fmt: skip

    # counters

    async def resync(self, b, spec):
        """After a request that failed or timed out (the server may have done it all the
        same), or a phase change: finish what the server says the counter has in hand
        (untimed, not counted)."""
        async with b.view_lock:  # one read of the branch's counters serves its six
            if b.view is None or time.monotonic() - b.view[0] > 2:
                got = await self.request(
                    "counters", "GET", f"/api/v1/branches/{b.code}/counters",
                    token=spec["token"], expect={200}, timed=False,
                )  # fmt: skip
                if not got:
                    return False
                b.view = (time.monotonic(), got[1]["items"])
            items = b.view[1]
        mine = next((c for c in items if c["id"] == spec["id"]), None)
        current = (mine or {}).get("current_ticket")
        if current is None:
            return True
        steps = {"called": ("start", "finish"), "serving": ("finish",)}.get(current["status"], ())
        for step in steps:
            if not await self.request(
                f"resync_{step}", "POST", f"/api/v1/tickets/{current['id']}/{step}",
                token=spec["token"], expect={200}, timed=False,
            ):  # fmt: skip
                return False
        return True

    async def counter(self, b, spec, mean_service_s, stagger_s):
        cid, token, services = spec["id"], spec["token"], spec["services"]
        await asyncio.sleep(self.rng.uniform(0, stagger_s))  # staff do not all click at once
        in_sync = await self.resync(b, spec)
        while self.running:
            if not in_sync:
                await asyncio.sleep(1)
                in_sync = await self.resync(b, spec)
                continue
            if not any(b.waiting[s] > 0 for s in services):
                b.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(b.wake.wait(), 5)
                continue
            if not self.running:
                break
            for s in services:  # reserve one of the waiting tickets this counter serves
                if b.waiting[s] > 0:
                    b.waiting[s] -= 1
                    break
            got = await self.request(
                "call_next", "POST", f"/api/v1/counters/{cid}/call-next", token=token,
                expect={200, 204},
            )  # fmt: skip
            answered = time.time()
            if not got:
                in_sync = False
                continue
            if got[0] == 204:  # nobody waits for this counter's services after all
                for s in services:
                    b.waiting[s] = 0
                continue
            ticket = got[1]
            if self.phase.recording:
                self.phase.calls.append((b.code, ticket["number"], answered))
            await asyncio.sleep(self.rng.expovariate(1.0))  # the customer walks up
            if not await self.request(
                "start", "POST", f"/api/v1/tickets/{ticket['id']}/start", token=token,
                expect={200},
            ):  # fmt: skip
                in_sync = False
                continue
            await asyncio.sleep(self.rng.expovariate(1 / mean_service_s))
            if not await self.request(
                "finish", "POST", f"/api/v1/tickets/{ticket['id']}/finish", token=token,
                expect={200},
            ):  # fmt: skip
                in_sync = False
                continue
            customer = b.tokens.pop(ticket["id"], None)
            if customer and self.rng.random() < FEEDBACK_SHARE:
                self.spawn(self.feedback(customer))


def pct(values, q):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, math.ceil(q / 100 * len(values)) - 1)], 1)


def slowest_seconds(phase, top=3) -> list[dict]:
    """The seconds of the phase whose requests were answered slowest (by when they were sent):
    a p99 far above the p50 is either a queue that grows all along or a few stalls."""
    by_second: dict[int, list[float]] = defaultdict(list)
    for sent, ms in phase.timeline:
        by_second[int(sent - phase.t0)].append(ms)
    worst = sorted(by_second.items(), key=lambda kv: -max(kv[1]))[:top]
    return [
        {"at_s": second, "requests": len(v), "p50_ms": pct(v, 50), "max_ms": round(max(v), 1)}
        for second, v in sorted(worst)
    ]


def summarise(phase, duration, heard_by_key, disconnects, displays, reads=()):
    pushes, missing = [], 0
    for branch, number, answered in phase.calls:
        if branch not in displays:
            continue
        times = [t for t in heard_by_key.get((branch, number), ()) if t >= answered - 1.0]
        if times:
            pushes.append(max(0.0, (min(times) - answered) * 1000))
        else:
            missing += 1
    dropped = sum(1 for _kind, t in disconnects if phase.t0 <= t <= phase.t1 + 2)
    screen = [(ms, ok) for sent, ms, ok in reads if phase.t0 <= sent <= phase.t1]
    screen_ms = [ms for ms, ok in screen if ok]
    screen_failed = sum(1 for _ms, ok in screen if not ok)
    errors = sum(phase.errors.values()) + missing + dropped + screen_failed
    lat = phase.lat
    issue = lat["issue_api"] + lat["issue_kiosk"]
    return {
        "layout": phase.name,
        "ops_per_s": round(phase.ops / duration, 1),
        "http_per_s": round(phase.http / duration, 1),
        "ops": {op: len(v) for op, v in sorted(lat.items())},
        "issue_ms": {"p50": pct(issue, 50), "p99": pct(issue, 99)},
        "issue_api_ms": {"p50": pct(lat["issue_api"], 50), "p99": pct(lat["issue_api"], 99)},
        "issue_kiosk_ms": {
            "p50": pct(lat["issue_kiosk"], 50),
            "p99": pct(lat["issue_kiosk"], 99),
        },
        "call_next_ms": {"p50": pct(lat["call_next"], 50), "p99": pct(lat["call_next"], 99)},
        "start_finish_feedback_p99_ms": {
            op: pct(lat[op], 99) for op in ("start", "finish", "feedback")
        },
        "push_ms": {
            "n": len(pushes),
            "p50": pct(pushes, 50),
            "p99": pct(pushes, 99),
            "max": round(max(pushes), 1) if pushes else None,
        },
        "screen_reads": {
            "n": len(screen),
            "per_s": round(len(screen) / duration, 1),
            "p50_ms": pct(screen_ms, 50),
            "p99_ms": pct(screen_ms, 99),
            "failed": screen_failed,
        },
        "pushes_missing": missing,
        "sockets_dropped": dropped,
        "http_errors": dict(phase.errors),
        "errors": errors,
        "error_samples": phase.error_samples,
        "slowest_seconds": slowest_seconds(phase),
        "cpu_s": {k: round(v, 1) for k, v in phase.cpu.items()},
        **cpu_budget(phase.cpu, phase.ops, duration),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


async def play(args, env, branches_spec, gunicorn_port, servers, log, displays):
    import aiohttp

    weights = random.Random(args.seed)
    branches = []
    for spec in branches_spec:
        branches.append(BranchState(spec, weights.uniform(0.5, 2.0)))
    phases = []
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        base = f"http://127.0.0.1:{gunicorn_port}"
        driver = Driver(session, base, branches, args)

        # open every counter once (untimed), on the first layout
        servers["web"] = start_gunicorn(env, gunicorn_port, args.processes[0], args.threads, log)
        servers["workers"] = args.processes[0]
        driver.phase = Phase("setup")
        driver.phase.recording = True
        for b in branches:
            for c in b.spec["counters"]:
                got = await driver.request(
                    "open", "POST", f"/api/v1/counters/{c['id']}/open", token=c["token"],
                    expect={200},
                )  # fmt: skip
                if not got:
                    raise SystemExit(
                        f"could not open counter {c['id']} of {b.code}: "
                        f"{dict(driver.phase.errors)} {driver.phase.error_samples}"
                    )
        driver.phase.recording = False
        visit_rate = args.rate / OPS_PER_VISIT
        per_branch = visit_rate / len(branches)
        # each branch's six counters busy about half of the time
        mean_service = min(30.0, 0.5 * len(COUNTERS) / per_branch)
        for n_workers in args.processes:
            name = f"{n_workers} web process{'es' if n_workers > 1 else ''}"
            if servers["web"] is None or servers["workers"] != n_workers:
                stop(servers["web"])
                servers["web"] = start_gunicorn(env, gunicorn_port, n_workers, args.threads, log)
                servers["workers"] = n_workers
            phase = Phase(name)
            driver.phase = phase
            driver.running = True
            loops = [asyncio.create_task(driver.arrivals(visit_rate))]
            for b in branches:
                for c in b.spec["counters"]:
                    loops.append(
                        asyncio.create_task(driver.counter(b, c, mean_service, args.warmup))
                    )
            print(f"{name}: warm-up {args.warmup:.0f} s", flush=True)
            await asyncio.sleep(args.warmup)
            cpu0 = cpu_now(servers)
            phase.t0 = time.time()
            phase.recording = True
            await asyncio.sleep(args.duration)
            phase.recording = False
            phase.t1 = time.time()
            phase.cpu = {k: v - cpu0[k] for k, v in cpu_now(servers).items()}
            driver.running = False
            for b in branches:
                b.wake.set()
            # let the counters finish the tickets in hand (not recorded)
            await asyncio.wait(loops, timeout=max(60.0, 3 * mean_service))
            for t in loops:
                t.cancel()
            if driver.tasks:
                await asyncio.wait(list(driver.tasks), timeout=30)
            phases.append(phase)
            print(f"{name}: {phase.ops} operations recorded", flush=True)
            # the realtime processes may still be working off the pushes of this layout: let
            # them settle before the next one is measured
            await asyncio.sleep(args.settle)
    return phases, mean_service


def socket_specs(branches, n_sockets):
    """Displays first (one per branch), then staff counter screens (up to six per branch), then
    phones on the waiting tickets."""
    specs = [("display", b["code"], b["display"]) for b in branches][:n_sockets]
    left = n_sockets - len(specs)
    per_branch = min(len(COUNTERS), left // max(1, len(branches)))
    if left > 0 and per_branch == 0:
        per_branch = 1
    for k in range(per_branch):
        for b in branches:
            if left <= 0:
                break
            c = b["counters"][k]
            specs.append(("staff", b["code"], (b["staff_cookies"][k], c["id"], c["services"])))
            left -= 1
    phones = [(b["code"], tok) for b in branches for tok in b["backlog"]]
    for i in range(max(0, left)):
        code, tok = phones[i % len(phones)]
        specs.append(("phone", code, tok))
    return specs


def run(args):
    workdir = Path(tempfile.mkdtemp(prefix="load-day-"))
    log = open(workdir / "servers.log", "ab")  # noqa: SIM115
    servers = {"web": None, "workers": None, "realtime": [], "redis": None, "clients": []}
    procs = []
    done = None
    try:
        if args.redis_url:
            redis_url = args.redis_url
        else:
            servers["redis"], redis_url = start_redis(log)
        sys.path.insert(0, str(ROOT / "bench"))
        from issue_tickets import reset_postgres

        reset_postgres(PG_URL)
        env = {
            **os.environ,
            "QUEUE_APP_PROFILE": "production",
            "QUEUE_APP_INSTANCE": str(workdir),
            "DATABASE_URL": PG_URL,
            "SECRET_KEY": "load-day-bench-secret-key",
            # the production layout: Socket.IO's channel, the rate limits' storage and the
            # shared wait estimates (EWT_SHARED) on the bench's own Redis
            "REDIS_URL": redis_url,
            "SOCKETIO_MESSAGE_QUEUE": redis_url,
            "SCHEDULER_ENABLED": "0",
            "PROXY_COUNT": "0",
            "FORCE_HTTPS": "0",  # no TLS proxy in front: the bench talks to gunicorn directly
            # every customer of the bench comes from one address: per-address limits off
            "FEEDBACK_RATE_LIMIT": "1000000 per minute",
            "API_ISSUE_RATE_LIMIT": "1000000 per minute",
            "KIOSK_RATE_LIMIT": "1000000 per minute",
            "NOTIFY_URGENT": "off",
        }
        subprocess.run(
            [PY, "-m", "flask", "--app", "queue_app", "db", "upgrade"],
            cwd=ROOT, env=env, check=True, capture_output=True,
        )  # fmt: skip
        n_displays = min(args.branches, args.sockets)
        per_branch_staff = min(len(COUNTERS), max(0, args.sockets - n_displays) // args.branches)
        n_phones = max(0, args.sockets - n_displays - per_branch_staff * args.branches)
        backlog = max(2, math.ceil(n_phones / args.branches))
        t0 = time.time()
        out = workdir / "setup.json"
        subprocess.run(
            [PY, "-c", SETUP, str(args.branches), str(len(COUNTERS)), str(backlog),
             json.dumps(COUNTERS), UA, str(out)],
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
        branches = json.loads(out.read_text())
        print(f"{len(branches)} branches set up in {time.time() - t0:.0f} s", flush=True)
        rt_urls = []
        for _ in range(args.realtime_procs):
            port = free_port()
            servers["realtime"].append(start_realtime(env, port, log))
            rt_urls.append(f"http://127.0.0.1:{port}")
        specs = socket_specs(branches, args.sockets)
        displays = {code for kind, code, _ in specs if kind == "display"}
        chunks = [specs[i :: args.client_procs] for i in range(args.client_procs)]
        port = free_port()  # gunicorn's, for every layout: the counter screens read from it
        web_url = f"http://127.0.0.1:{port}"
        ctx = mp.get_context("spawn")
        ready_q, result_q, done = ctx.Queue(), ctx.Queue(), ctx.Event()
        for chunk in chunks:
            p = ctx.Process(
                target=client_process,
                args=(rt_urls, args.realtime_spread, chunk, ready_q, done, result_q, web_url),
                kwargs={"screen_reads": args.screen_reads},
            )
            p.start()
            procs.append(p)
        servers["clients"] = [p.pid for p in procs]
        connected, failed = 0, Counter()
        for _ in procs:
            n, f = ready_q.get(timeout=900)
            connected += n
            failed.update(f)
        kinds = Counter(kind for kind, _c, _t in specs)
        print(
            f"{connected}/{len(specs)} sockets connected ({dict(kinds)}; failed: {dict(failed)})",
            flush=True,
        )
        phases, mean_service = asyncio.run(play(args, env, branches, port, servers, log, displays))
        done.set()
        heard, disconnects, changes, clients_cpu, reads = [], [], 0, 0.0, []
        for _ in procs:
            h, d, n, cpu, r = result_q.get(timeout=600)
            heard += h
            disconnects += d
            changes += n
            clients_cpu += cpu
            reads += r
        by_key = defaultdict(list)
        for branch, number, t in heard:
            by_key[(branch, number)].append(t)
        results = [
            summarise(p, args.duration, by_key, disconnects, displays, reads) for p in phases
        ]
        summary = {
            "branches": len(branches),
            "sockets": {"asked": len(specs), "connected": connected, **dict(kinds)},
            "failed_connects": dict(failed),
            "rate_asked": args.rate,
            "duration_s": args.duration,
            "realtime_procs": args.realtime_procs,
            "realtime_spread": args.realtime_spread,
            "screen_reads": args.screen_reads,
            "mean_service_s": round(mean_service, 1),
            "changes_heard": changes,
            "clients_cpu_s": round(clients_cpu, 1),  # the socket client processes, whole run
            "cpu_count": os.cpu_count(),
            "phases": results,
        }
        if len(results) > 1:
            first, last = results[0], results[-1]

            def ratio(a, b):
                return round(b / a, 2) if a and b else None

            summary["ratio_last_to_first"] = {
                "ops_per_s": ratio(first["ops_per_s"], last["ops_per_s"]),
                "call_next_p99": ratio(first["call_next_ms"]["p99"], last["call_next_ms"]["p99"]),
                "issue_p99": ratio(first["issue_ms"]["p99"], last["issue_ms"]["p99"]),
                "push_p99": ratio(first["push_ms"]["p99"], last["push_ms"]["p99"]),
            }
        print(json.dumps(summary, indent=1), flush=True)
        for r in results:
            aims = {
                "sockets >= 2000": connected >= 2000,
                "ops/s >= 200": r["ops_per_s"] >= 200,
                "p99 call-next < 100 ms": (r["call_next_ms"]["p99"] or 1e9) < 100,
                "p99 push < 250 ms": (r["push_ms"]["p99"] or 1e9) < 250,
                "zero errors": r["errors"] == 0 and not failed,
            }
            line = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in aims.items())
            print(f"{r['layout']}: {line}", flush=True)
        return summary
    finally:
        if done is not None:
            done.set()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        stop(servers["web"])
        for p in servers["realtime"]:
            stop(p)
        stop(servers["redis"])
        log.close()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="recorded seconds per layout")
    parser.add_argument(
        "--warmup",
        type=float,
        default=20,
        help="unrecorded seconds per layout (the day opens with every counter calling the "
        "backlog at once: the burst passes before the recorded seconds)",
    )
    parser.add_argument(
        "--settle", type=float, default=15, help="idle seconds after each layout (pushes drain)"
    )
    parser.add_argument("--rate", type=float, default=200, help="operations per second asked")
    parser.add_argument("--branches", type=int, default=200)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument(
        "--processes", default="1,3", help="gunicorn workers of each layout, in order"
    )
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument(
        "--realtime-procs", type=int, default=os.cpu_count() or 1, help="realtime processes"
    )
    parser.add_argument(
        "--realtime-spread", choices=("branch", "client"), default="branch",
        help="sockets to realtime processes by branch (the README's nginx) or client after client",
    )  # fmt: skip
    parser.add_argument("--client-procs", type=int, default=2, help="socket client processes")
    parser.add_argument(
        "--screen-reads", choices=("concerned", "every", "off"), default="concerned",
        help="the counter screens read their state after the changes that concern them (as "
        "static/js/counter.js does), after every change of their branch (as it did before) "
        "or never",
    )  # fmt: skip
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL"),
        help="default: a private redis-server on a free port",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args()
    args.processes = [int(x) for x in args.processes.split(",") if x.strip()]
    run(args)


if __name__ == "__main__":
    main()
