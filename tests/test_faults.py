"""Faults survived, for real (issue 7): server processes, a private Redis and a private
PostgreSQL cluster that the tests kill and restart, a scheduler process killed while work
falls due, an SMTP server that goes away and a sender killed between sending and recording.

Never the shared servers: Redis and PostgreSQL are started by the tests on free ports.
The retry/backoff/lease/concurrency cases of the outbox are in tests/test_notify.py; here only
what those do not cover (the channel coming back, a sender killed after the send).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import socketio as sio
from sqlalchemy import func, select

from queue_app.devices.models import DeviceKind
from queue_app.devices.services import register_device
from queue_app.extensions import db
from queue_app.tickets.models import JourneyEvent, Ticket, Visit

from .servers import ROOT, free_port, start_server, stop_server

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def _wait(predicate, seconds=30.0, step=0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


# --- a private Redis and a private PostgreSQL ------------------------------------------------


class PrivateRedis:
    """redis-server on a free port, no persistence; `stop()` and `start()` keep the port."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = workdir / "redis.log"
        self.proc = None

    def start(self):
        import redis

        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=open(self.log, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port)
        ok = _wait(lambda: _pings(client), 10, 0.05)
        assert ok, self.log.read_text()
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # as a crash: nothing flushed, every connection cut
            self.proc.wait(timeout=10)


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("the fault tests need redis-server on the PATH (a private one is started)")
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


class PrivatePostgres:
    """A throw-away cluster: initdb into a temporary folder, pg_ctl on a free port (as the
    `postgres` user when the tests run as root: PostgreSQL refuses root)."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="qa-faults-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "pg.log"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/queue_app_faults"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args, check=True):
        return subprocess.run(
            [*self.as_user, *args], check=check, capture_output=True, text=True, timeout=120
        )

    def init(self):
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.start()
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", "queue_app_faults")  # fmt: skip
        return self

    def start(self):
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", opts, "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode="fast"):
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop",
                  check=False)  # fmt: skip

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres(is_postgres):
    if not is_postgres:
        pytest.skip("restarting PostgreSQL needs PostgreSQL (a private cluster)")
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"no PostgreSQL binaries in {PG_BIN} (set PG_BIN)")
    cluster = PrivatePostgres().init()
    yield cluster
    cluster.destroy()


# --- HTTP and socket clients ------------------------------------------------------------------


def _http(method, url, body=None, headers=None, timeout=10):
    """(status, parsed JSON or text); raises only when no answer came (refused, reset)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    if "json" in ctype and raw:
        return status, json.loads(raw)
    return status, raw.decode(errors="replace")


class Display:
    """A lobby display as `static/js/floor.js` behaves: keeps the last `seq` and the calls it
    shows; on a gap (`prev` beyond what it applied) it asks for a snapshot; when its server
    goes away it connects to the next URL in turn (what the reverse proxy does for a browser)
    and starts again from the snapshot sent on connect."""

    def __init__(self, urls, token):
        self.urls = list(urls)
        self.token = token
        self.seq = None
        self.calls: list[str] = []  # numbers called, newest first, as the screen shows them
        self.snapshots = 0
        self.gaps = 0
        self.live_changes = 0
        self.connected_to = None
        self.client = None
        self.closing = False
        self.dead: set[str] = set()

    async def connect(self):
        for _ in range(100):
            for url in self.urls:
                if url in self.dead:
                    continue
                client = sio.AsyncClient(reconnection=False)
                client.on("snapshot", self._on_snapshot, namespace="/floor")
                client.on("change", self._on_change, namespace="/floor")
                client.on("disconnect", self._on_disconnect, namespace="/floor")
                try:
                    await client.connect(
                        url,
                        namespaces=["/floor"],
                        headers={"Cookie": f"qa_device_display={self.token}"},
                        transports=["websocket"],
                        wait_timeout=5,
                    )
                except Exception:
                    if len(self.urls) > 1:
                        self.dead.add(url)
                    continue
                self.client, self.connected_to = client, url
                return
            self.dead.clear()
            await asyncio.sleep(0.3)
        raise AssertionError("the display found no server to connect to")

    def _apply_snapshot(self, snap):
        self.seq = snap["seq"]
        self.calls = [c["ticket"]["number"] for c in snap["calls"] if c["kind"] == "called"]
        self.snapshots += 1

    async def _on_snapshot(self, snap):
        self._apply_snapshot(snap)

    async def _on_change(self, change):
        if self.seq is None or change["seq"] <= self.seq:
            return
        if change.get("prev", self.seq) > self.seq:  # something was missed
            self.gaps += 1
            asyncio.get_running_loop().create_task(self._resync())
            return
        self.seq = change["seq"]
        self.live_changes += 1
        if change["kind"] == "called":
            self.calls.insert(0, change["ticket"]["number"])

    async def _resync(self):
        snap = await self.client.call("snapshot", namespace="/floor", timeout=10)
        if isinstance(snap, dict) and "seq" in snap and snap["seq"] >= (self.seq or 0):
            self._apply_snapshot(snap)

    async def _on_disconnect(self, *_args):
        if not self.closing:
            self.dead.add(self.connected_to)
            self.connected_to = None
            asyncio.get_running_loop().create_task(self.connect())

    async def close(self):
        self.closing = True
        if self.client is not None:
            await self.client.disconnect()


class Loop:
    """An asyncio loop in a thread of its own (Playwright's sync API may hold this thread's)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def _paired_display(branch, now):
    device, token = register_device(DeviceKind.DISPLAY, now=now)
    device.branch, device.paired_at, device.pairing_code, device.name = branch, now, None, "TV"
    return token


def _rows(model) -> list:
    """Every row of `model` as the database has it now (the session keeps loaded objects
    across commits: `expire_on_commit` is off)."""
    db.session.rollback()
    return db.session.scalars(select(model).execution_options(populate_existing=True)).all()


def _branch_seq(code="JKT01") -> int:
    from queue_app.branches.models import Branch

    db.session.rollback()
    return db.session.scalar(select(Branch.event_seq).where(Branch.code == code))


# --- a. a web process killed with SIGKILL in the middle of load --------------------------------


def test_a_web_process_killed_mid_load_loses_no_answered_ticket(
    app, floor, now, private_redis, tmp_path
):
    token = _paired_display(floor.branch, now)
    db.session.commit()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    env = {"SOCKETIO_MESSAGE_QUEUE": private_redis.url}
    a, url_a = start_server(url, tmp_path / "a.log", **env)
    b, url_b = start_server(url, tmp_path / "b.log", **env)
    loop = Loop()
    display = Display([url_a, url_b], token)
    answered: list[dict] = []
    statuses: list[int | str] = []
    stop = threading.Event()

    def customer(n):
        i = n
        while not stop.is_set():
            target = (url_a, url_b)[i % 2]  # no proxy: the clients alternate
            i += 1
            try:
                status, body = _http(
                    "POST", target + "/api/v1/branches/JKT01/tickets", {"service": "teller"}
                )
            # the killed process: no answer, or an answer cut off in its body (IncompleteRead);
            # either way no promise was made to the customer
            except (OSError, http.client.HTTPException) as exc:
                statuses.append(type(exc).__name__)
                time.sleep(0.05)
                continue
            statuses.append(status)
            if status == 201:
                answered.append(body)

    try:
        loop.run(display.connect())
        assert display.connected_to == url_a
        assert _wait(lambda: display.snapshots >= 1, 20)
        threads = [threading.Thread(target=customer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        assert _wait(lambda: len(answered) >= 20, 60), statuses[-10:]
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=10)
        before = len(answered)
        assert _wait(lambda: len(answered) >= before + 10, 60)  # B goes on serving
        stop.set()
        for t in threads:
            t.join(timeout=30)
        # the display went over to the remaining process and resynchronised from its snapshot
        assert _wait(lambda: display.connected_to == url_b and display.snapshots >= 2, 30)
        teller = floor.counter_id("Teller 1")
        assert _http("POST", f"{url_b}/api/v1/counters/{teller}/open", {}, floor.h_staff)[0] == 200
        status, called = _http(
            "POST", f"{url_b}/api/v1/counters/{teller}/call-next", {}, floor.h_staff
        )
        assert status == 200
        assert _wait(lambda: display.calls[:1] == [called["number"]], 20), display.calls
        seq = _branch_seq()
        assert _wait(lambda: display.seq == seq, 20), (display.seq, seq)
    finally:
        stop.set()
        loop.run(display.close())
        loop.close()
        for p in (a, b):
            stop_server(p)
    assert not [s for s in statuses if isinstance(s, int) and s != 201], statuses
    tokens = [t["token"] for t in answered]
    assert len(set(tokens)) == len(tokens)
    db.session.rollback()
    stored = dict(
        db.session.execute(
            select(Visit.token, func.count(Ticket.id))
            .join(Ticket, Ticket.visit_id == Visit.id)
            .where(Visit.token.in_(tokens))
            .group_by(Visit.token)
        ).all()
    )
    assert set(stored) == set(tokens)  # every ticket answered 201 exists ...
    issued = db.session.scalar(
        select(func.count(JourneyEvent.id))
        .join(Visit, Visit.id == JourneyEvent.visit_id)
        .where(Visit.token.in_(tokens), JourneyEvent.kind == "issued")
    )
    assert issued == len(tokens)  # ... with its journal entry
    numbers = db.session.scalars(
        select(Ticket.number).where(Ticket.branch_id == floor.branch.id)
    ).all()
    assert len(numbers) == len(set(numbers))  # no number given twice across the processes


# --- b. Redis restarted ------------------------------------------------------------------------


def test_realtime_resumes_after_a_redis_restart_and_displays_catch_up(
    app, floor, now, private_redis, tmp_path
):
    token = _paired_display(floor.branch, now)
    db.session.commit()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    env = {"SOCKETIO_MESSAGE_QUEUE": private_redis.url}
    web, url_web = start_server(url, tmp_path / "web.log", **env)
    rt, url_rt = start_server(
        url, tmp_path / "rt.log", command=("-m", "queue_app.realtime.aio"), ready="/healthz", **env
    )
    loop = Loop()
    display = Display([url_rt], token)
    teller = floor.counter_id("Teller 1")

    def post(path, body=None, headers=None):
        return _http("POST", url_web + "/api/v1" + path, body or {}, headers)

    in_hand = []

    def call_next():
        """The counter finishes the ticket in hand, then calls the next one."""
        for step in ("start", "finish") if in_hand else ():
            assert post(f"/tickets/{in_hand[-1]}/{step}", headers=floor.h_staff)[0] == 200
        answer = post(f"/counters/{teller}/call-next", headers=floor.h_staff)
        if answer[0] == 200:
            in_hand.append(answer[1]["id"])
        return answer

    try:
        for _ in range(12):
            assert post("/branches/JKT01/tickets", {"service": "teller"})[0] == 201
        assert post(f"/counters/{teller}/open", headers=floor.h_staff)[0] == 200
        loop.run(display.connect())
        assert _wait(lambda: display.snapshots >= 1, 20)
        status, first = call_next()
        assert status == 200
        assert _wait(lambda: display.calls[:1] == [first["number"]], 20)
        live_before = display.live_changes

        private_redis.stop()
        meanwhile = []
        for _ in range(2):  # the web process works on without Redis: calls are answered
            status, body = call_next()
            assert status == 200, body
            meanwhile.append(body["number"])
        time.sleep(0.5)
        assert not set(meanwhile) & set(display.calls)  # nothing could reach the display
        private_redis.start()

        # realtime resumes by itself: a change made now reaches the display, which sees the
        # gap, asks for a snapshot and shows the calls made while Redis was down
        def resumed():
            post("/branches/JKT01/tickets", {"service": "teller"})
            return display.gaps >= 1 or display.live_changes > live_before

        assert _wait(resumed, 60, 1.0), "no push reached the display after Redis came back"
        seq = _branch_seq()
        assert _wait(lambda: display.seq == seq, 20), (display.seq, seq)
        assert display.calls[:3] == [*reversed(meanwhile), first["number"]]
    finally:
        loop.run(display.close())
        loop.close()
        for p in (web, rt):
            stop_server(p)


# --- c. PostgreSQL restarted -------------------------------------------------------------------


SEED = r"""
import json, sys
import flask_migrate
from queue_app import create_app
from queue_app.extensions import db
from queue_app.config import normalise_database_url
from tests import factories

app = create_app("testing", SQLALCHEMY_DATABASE_URI=normalise_database_url(sys.argv[1]))
with app.app_context():
    flask_migrate.upgrade()
    from argon2 import PasswordHasher
    from queue_app.accounts import services as accounts
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    b = factories.branch("JKT01", counters=[("Loket 1", ["teller"])])
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    b.opening_hours = {d: [["00:00", "23:59:59"]] for d in days}
    u = factories.user("budi", branches=[b])
    token = factories.token(u)
    counter = b.counters[0].id
    db.session.commit()
    print(json.dumps({"token": token, "counter": counter}))
"""


def _integrity(conn) -> dict:
    """What a half-written record would leave behind, counted in the database itself."""
    from sqlalchemy import text

    return {
        "visits_without_ticket": conn.execute(
            text(
                "SELECT count(*) FROM visits v WHERE NOT EXISTS "
                "(SELECT 1 FROM tickets t WHERE t.visit_id = v.id)"
            )
        ).scalar(),
        "tickets_without_issued_entry": conn.execute(
            text(
                "SELECT count(*) FROM tickets t WHERE NOT EXISTS (SELECT 1 FROM journey_events"
                " e WHERE e.ticket_id = t.id AND e.kind = 'issued')"
            )
        ).scalar(),
        "called_without_entry": conn.execute(
            text(
                "SELECT count(*) FROM tickets t WHERE t.called_at IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM journey_events e WHERE e.ticket_id = t.id "
                "AND e.kind = 'called')"
            )
        ).scalar(),
        "seq_behind_journal": conn.execute(
            text(
                "SELECT count(*) FROM branches b WHERE b.event_seq < (SELECT coalesce(max(seq), 0)"
                " FROM journey_events e WHERE e.branch_id = b.id)"
            )
        ).scalar(),
    }


def test_a_postgres_restart_gives_clean_503s_and_the_service_recovers(private_postgres, tmp_path):
    from sqlalchemy import create_engine

    from queue_app.config import normalise_database_url

    seeded = subprocess.run(
        [sys.executable, "-c", SEED, private_postgres.url],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    seed = json.loads(seeded.stdout.strip().splitlines()[-1])
    staff = {"Authorization": f"Bearer {seed['token']}"}
    # the production profile: its engine options are what is tested
    server, base = start_server(
        private_postgres.url,
        tmp_path / "web.log",
        QUEUE_APP_PROFILE="production",
        SECRET_KEY="faults-secret-key",
        FORCE_HTTPS="0",
        PROXY_COUNT="0",
        API_ISSUE_RATE_LIMIT="100000 per minute",
    )
    answered, statuses, bad_bodies, stop = [], [], [], threading.Event()

    def customers():
        while not stop.is_set():
            try:
                status, body = _http(
                    "POST", base + "/api/v1/branches/JKT01/tickets", {"service": "teller"}
                )
            except OSError as exc:
                statuses.append(type(exc).__name__)
                continue
            statuses.append(status)
            if status == 201:
                answered.append(body["token"])
            elif status == 503:
                if not (isinstance(body, dict) and body["error"]["code"] == "unavailable"):
                    bad_bodies.append(body)
                time.sleep(0.05)

    def call(path):
        return _http("POST", f"{base}/api/v1{path}", {}, staff)

    try:
        assert call(f"/counters/{seed['counter']}/open")[0] == 200
        threads = [threading.Thread(target=customers) for _ in range(3)]
        for t in threads:
            t.start()
        assert _wait(lambda: len(answered) >= 15, 60), statuses[-10:]
        status, in_hand = call(f"/counters/{seed['counter']}/call-next")
        assert status == 200
        private_postgres.stop("immediate")  # a crash: in-flight transactions cut off
        # during the outage: clean 503s, the API's error shape, and a page
        assert _wait(lambda: statuses[-3:] == [503, 503, 503], 30), statuses[-10:]
        status, body = call(f"/counters/{seed['counter']}/call-next")
        assert status == 503 and body["error"]["code"] == "unavailable", body
        status, page = _http("GET", base + "/b/JKT01")
        assert status == 503, page
        assert _http("GET", base + "/readyz")[0] == 503
        during = len(answered)
        private_postgres.start()
        # recovery without restarting the server process
        assert _wait(lambda: len(answered) >= during + 15, 60), statuses[-10:]
        stop.set()
        for t in threads:
            t.join(timeout=30)
        after = [
            call(f"/tickets/{in_hand['id']}/start")[0],
            call(f"/tickets/{in_hand['id']}/finish")[0],
            call(f"/counters/{seed['counter']}/call-next")[0],
        ]
        assert after == [200, 200, 200]
        assert _http("GET", base + "/readyz")[0] == 200
        # a restart nobody saw (no request during it): the pooled connections are dead; the
        # first request that meets one gets a clean 503 and the whole pool is replaced
        private_postgres.stop("fast")
        private_postgres.start()
        quiet = [
            _http("POST", base + "/api/v1/branches/JKT01/tickets", {"service": "teller"})
            for _ in range(10)
        ]
        codes = [status for status, _body in quiet]
        assert codes.count(503) <= 1 and codes[codes.count(503) :] == [201] * (
            10 - codes.count(503)
        )
        answered += [body["token"] for status, body in quiet if status == 201]
        statuses += codes
        assert server.poll() is None
    finally:
        stop.set()
        stop_server(server)
    assert set(statuses) <= {201, 503}, sorted(set(map(str, statuses)))
    assert bad_bodies == []
    engine = create_engine(normalise_database_url(private_postgres.url))
    try:
        with engine.connect() as conn:
            from sqlalchemy import text

            found = conn.execute(
                text("SELECT count(*) FROM visits WHERE token = ANY(:t)"), {"t": answered}
            ).scalar()
            assert found == len(answered)  # every 201 survived the crash
            assert _integrity(conn) == {
                "visits_without_ticket": 0,
                "tickets_without_issued_entry": 0,
                "called_without_entry": 0,
                "seq_behind_journal": 0,
            }
    finally:
        engine.dispose()


# --- d. the scheduler down while escalations and reminders fall due ---------------------------


def _scheduler(database_url: str, log_path: Path, instance: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "QUEUE_APP_PROFILE": "testing",
        "DATABASE_URL": database_url,
        "QUEUE_APP_INSTANCE": str(instance),
        "SCHEDULER_POLL_S": "0.2",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "queue_app", "jobs", "run"],
        cwd=ROOT,
        env=env,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
    )


def _finished(log_path: Path, job: str) -> int:
    return log_path.read_text(errors="replace").count(f'Job "{job} (trigger')


def test_due_escalations_and_reminders_run_exactly_once_across_scheduler_restarts(
    app_ctx, make, tmp_path
):
    from queue_app.booking.models import Appointment, AppointmentStatus
    from queue_app.cases.models import Case, CaseStep, StepKind
    from queue_app.notify.models import OutboxMessage

    from .caseshelp import build_ladder, customer, respond

    url = app_ctx.config["SQLALCHEMY_DATABASE_URI"]
    people = build_ladder(make)
    real_now = datetime.now(UTC)
    # an unhappy answer 60 hours ago: its case was due at level 1 twelve hours ago
    response = respond(make, people.branch, now=real_now - timedelta(hours=60), nps=1)
    case_id = db.session.scalar(select(Case.id).where(Case.response_id == response.id))
    assert case_id is not None
    db.session.commit()

    logs = [tmp_path / f"scheduler{n}.log" for n in range(3)]
    first = _scheduler(url, logs[0], tmp_path)
    procs = [first]
    try:
        assert _wait(lambda: _finished(logs[0], "escalate_cases") >= 1, 90), logs[0].read_text()
        assert _wait(lambda: _finished(logs[0], "send_reminders") >= 1, 30)
        first.send_signal(signal.SIGKILL)  # the scheduler is down ...
        first.wait(timeout=10)
        db.session.rollback()
        level = db.session.scalar(select(Case.level).where(Case.id == case_id))
        assert level == 2  # (its start-up run did the work due then)
        # ... while more work falls due: the case's next level, and a booked appointment
        # starting in 90 minutes (its 2h reminder; the 24h one is past and only the closest
        # is sent)
        case = db.session.get(Case, case_id)
        case.due_at = datetime.now(UTC) - timedelta(minutes=5)
        service = make.service(people.branch, "teller")
        start = datetime.now(UTC) + timedelta(minutes=90)
        person = customer(email="siti@example.co.id", name="Siti Rahayu")
        appointment = Appointment(
            code="FLT123",
            branch_id=people.branch.id,
            service_id=service.id,
            start=start,
            end=start + timedelta(minutes=15),
            status=AppointmentStatus.BOOKED,
            customer_id=person.id,
            name="Siti Rahayu",
            email="siti@example.co.id",
            locale="id",
            created_at=start - timedelta(days=3),
            booked_at=start - timedelta(days=3),
            reminders_sent=[],
        )
        db.session.add(appointment)
        db.session.commit()
        # restart; then kill and restart once more: every start-up runs both jobs again
        for n in (1, 2):
            proc = _scheduler(url, logs[n], tmp_path)
            procs.append(proc)
            assert _wait(lambda n=n: _finished(logs[n], "escalate_cases") >= 1, 90), logs[
                n
            ].read_text()[-3000:]
            assert _wait(lambda n=n: _finished(logs[n], "send_reminders") >= 1, 30)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
    db.session.rollback()
    steps = db.session.scalars(
        select(CaseStep.kind).where(CaseStep.case_id == case_id).order_by(CaseStep.id)
    ).all()
    assert steps == [StepKind.OPENED, StepKind.ESCALATED, StepKind.ESCALATED]
    assert db.session.scalar(select(Case.level).where(Case.id == case_id)) == 3
    keys = db.session.scalars(select(OutboxMessage.dedupe_key)).all()
    reminders = [k for k in keys if k and k.startswith("appointment:FLT123:reminder")]
    assert reminders == ["appointment:FLT123:reminder:2h:email"]  # the closest only, once
    escalation_rows = db.session.scalars(
        select(OutboxMessage.dedupe_key).where(OutboxMessage.kind.like("case_escalated%"))
    ).all()
    assert escalation_rows and len(escalation_rows) == len(set(escalation_rows))
    sent_flags = db.session.scalar(
        select(Appointment.reminders_sent).where(Appointment.code == "FLT123")
    )
    assert sorted(sent_flags) == ["24h", "2h"]


# --- e. the outbox: the channel comes back; a sender killed between send and record ----------


def test_a_message_whose_smtp_server_is_down_is_sent_once_when_it_comes_back(app, app_ctx):
    from queue_app.notify.models import OutboxMessage, OutboxStatus
    from queue_app.notify.services import deliver_due, enqueue

    from .outboxes import SmtpServer

    smtp = SmtpServer()  # its port, nobody listening yet: the channel is down
    t = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    saved = {k: app.config[k] for k in smtp.config()}
    app.config.update(smtp.config())
    try:
        enqueue("test", channel="email", recipient="x@example.co.id", subject="Antrean",
                body="b", locale="id", now=t)  # fmt: skip
        db.session.commit()
        assert deliver_due(now=t)["retry"] == 1
        t += timedelta(minutes=1)
        assert deliver_due(now=t)["retry"] == 1  # retried with backoff: 1, then 5 minutes
        assert deliver_due(now=t + timedelta(minutes=4))["claimed"] == 0
        t += timedelta(minutes=5)
        with smtp:  # the server is back on the same port
            assert deliver_due(now=t) == {
                "claimed": 1, "sent": 1, "retry": 0, "fallback": 0, "failed": 0,
            }  # fmt: skip
            for later in (1, 10, 60):
                assert deliver_due(now=t + timedelta(minutes=later))["claimed"] == 0
            assert [m["Subject"] for m in smtp.messages] == ["Antrean"]
    finally:
        app.config.update(saved)
    db.session.rollback()
    [row] = _rows(OutboxMessage)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 3)


SENDER = r"""
import sys
from datetime import datetime
from queue_app import create_app
from queue_app.notify.services import deliver_due
app = create_app("testing", SQLALCHEMY_DATABASE_URI=sys.argv[1], MAIL_PORT=int(sys.argv[2]))
with app.app_context():
    print("sending", flush=True)
    deliver_due(now=datetime.fromisoformat(sys.argv[3]))
    print("recorded", flush=True)
"""


def test_a_sender_killed_between_send_and_record_resends_with_the_same_message_id(
    app, app_ctx, tmp_path
):
    """The sender process dies after the SMTP server took the message and before the outcome
    was recorded (the one window of the at-least-once outbox, notify/services.py). The lease
    brings the message back and it is sent again: a copy with the same `Message-ID` (mail
    clients and gateways drop the duplicate by it), recorded once, never sent a third time."""
    from queue_app.notify.models import OutboxMessage, OutboxStatus
    from queue_app.notify.services import deliver_due, enqueue

    from .outboxes import SmtpServer

    t = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    enqueue("test", channel="email", recipient="x@example.co.id", subject="Giliran Anda",
            body="b", locale="id", now=t)  # fmt: skip
    db.session.commit()
    sender: dict = {}

    class KillingSmtp(SmtpServer):
        async def handle_DATA(self, server, session, envelope):
            answer = await super().handle_DATA(server, session, envelope)
            if "proc" in sender:  # the first delivery: the sender dies before it hears 250
                sender.pop("proc").send_signal(signal.SIGKILL)
                await asyncio.sleep(0.5)
            return answer

    with KillingSmtp() as smtp:
        proc = subprocess.Popen(
            [sys.executable, "-c", SENDER, app.config["SQLALCHEMY_DATABASE_URI"],
             str(smtp.port), t.isoformat()],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        sender["proc"] = proc
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, out
        assert "recorded" not in out
        smtp.wait_for(1)
        db.session.rollback()
        [row] = _rows(OutboxMessage)
        assert (row.status, row.attempts, row.sent_at) == (OutboxStatus.PENDING, 1, None)
        saved = {k: app.config[k] for k in smtp.config()}
        app.config.update(smtp.config())
        try:
            lease = timedelta(seconds=app.config["OUTBOX_LEASE_S"])
            assert deliver_due(now=t + lease - timedelta(seconds=1))["claimed"] == 0
            assert deliver_due(now=t + lease)["sent"] == 1
            assert deliver_due(now=t + lease + timedelta(hours=1))["claimed"] == 0
        finally:
            app.config.update(saved)
        first, second = smtp.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Subject"] == second["Subject"] == "Giliran Anda"
    db.session.rollback()
    [row] = _rows(OutboxMessage)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)
