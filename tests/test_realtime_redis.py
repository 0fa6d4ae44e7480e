"""Production shape, for real: two server processes (`python run.py`) sharing a Redis
`SOCKETIO_MESSAGE_QUEUE`. A change made through the API of one process reaches Socket.IO
clients (python-socketio, websocket transport) connected to the other."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import urllib.request

import pytest
import socketio as sio

from queue_app.devices.models import DeviceKind
from queue_app.devices.services import register_device
from queue_app.extensions import db

from .servers import start_server, stop_server

REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/3")


@pytest.fixture
def redis_available():
    import redis

    try:
        redis.Redis.from_url(REDIS).ping()
    except redis.exceptions.ConnectionError:
        pytest.fail(f"the Redis message-queue test needs a Redis at {REDIS} (TEST_REDIS_URL)")


@pytest.fixture
def two_servers(app, floor, redis_available, tmp_path):
    db.session.commit()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    procs = []
    try:
        a, url_a = start_server(url, tmp_path / "a.log", SOCKETIO_MESSAGE_QUEUE=REDIS)
        procs.append(a)
        b, url_b = start_server(url, tmp_path / "b.log", SOCKETIO_MESSAGE_QUEUE=REDIS)
        procs.append(b)
        yield url_a, url_b
    finally:
        for p in procs:
            stop_server(p)


def _post(url, path, headers=None, json_body=None):
    import json

    data = json.dumps(json_body or {}).encode()
    req = urllib.request.Request(url + "/api/v1" + path, data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.loads(response.read() or b"null")


async def _collect(url, *, headers=None, auth=None, until, ready, timeout=20):
    """Connect, hand every event to `until(events)` until it says done; returns the events.
    `ready` is set once the first snapshot has arrived (the client is in its room)."""
    client = sio.AsyncClient(reconnection=False)
    events = []
    done = asyncio.Event()

    def record(name):
        async def handler(data):
            events.append((name, data))
            ready.set()
            if until(events):
                done.set()

        return handler

    client.on("snapshot", record("snapshot"), namespace="/floor")
    client.on("change", record("change"), namespace="/floor")
    await client.connect(
        url, namespaces=["/floor"], headers=headers or {}, auth=auth, transports=["websocket"]
    )
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await client.disconnect()
    return events


def test_changes_cross_server_processes_through_redis(two_servers, floor, now):
    url_a, url_b = two_servers
    d, token = register_device(DeviceKind.DISPLAY, now=now)
    d.branch, d.paired_at, d.pairing_code = floor.branch, now, None
    db.session.commit()
    teller = floor.counter_id("Teller 1")

    async def scenario():
        def called(events):
            return any(n == "change" and e["kind"] == "called" for n, e in events)

        loop = asyncio.get_running_loop()
        display_ready, phone_ready = asyncio.Event(), asyncio.Event()
        display = asyncio.create_task(
            _collect(
                url_b,
                headers={"Cookie": f"qa_device_display={token}"},
                until=called,
                ready=display_ready,
            )
        )
        await asyncio.wait_for(display_ready.wait(), 20)
        ticket = await loop.run_in_executor(
            None, lambda: _post(url_a, "/branches/JKT01/tickets", json_body={"service": "teller"})
        )
        phone = asyncio.create_task(
            _collect(
                url_b,
                auth={"ticket": ticket["token"]},
                until=lambda ev: any(
                    n == "change" and e.get("self") and e["kind"] == "called" for n, e in ev
                ),
                ready=phone_ready,
            )
        )
        await asyncio.wait_for(phone_ready.wait(), 20)
        await loop.run_in_executor(
            None, lambda: _post(url_a, f"/counters/{teller}/open", headers=floor.h_staff)
        )
        await loop.run_in_executor(
            None, lambda: _post(url_a, f"/counters/{teller}/call-next", headers=floor.h_staff)
        )
        return await display, await phone, ticket

    # in a thread of its own: Playwright's sync API may hold this thread's event loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        display_events, phone_events, ticket = pool.submit(asyncio.run, scenario()).result()
    snapshot = display_events[0][1]
    assert display_events[0][0] == "snapshot" and snapshot["audience"] == "display"
    changes = [e for n, e in display_events if n == "change"]
    assert [c["kind"] for c in changes] == ["issued", "counter_opened", "called"]
    assert [c["seq"] for c in changes] == [snapshot["seq"] + i for i in (1, 2, 3)]
    assert changes[-1]["ticket"]["number"] == ticket["number"]
    assert changes[-1]["counter"]["name"] == "Teller 1"
    # (its own `issued` may come too: the phone connected right after the ticket was taken)
    mine = [e for n, e in phone_events if n == "change" and e.get("self")]
    assert mine[-1]["kind"] == "called" and mine[-1]["ticket"]["counter"]["name"] == "Teller 1"
    assert all(e["ticket"]["number"] == ticket["number"] for n, e in phone_events if n == "change")


# --- sign-out and revoke cut sockets off in every process --------------------------------------


class Browser:
    """A signed-in browser of `user` against a live server: the session cookie is made with the
    application's key (what a sign-in would set); `form_token` opens `page` for its CSRF token."""

    def __init__(self, app, user):
        import http.cookiejar

        serializer = app.session_interface.get_signing_serializer(app)
        self.cookie = serializer.dumps({"_user_id": user.get_id(), "_fresh": True})
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def _cookie_header(self):
        values = {c.name: c.value for c in self.jar}
        values.setdefault("session", self.cookie)
        return "; ".join(f"{k}={v}" for k, v in values.items())

    def open(self, url, data=None):
        import re
        import urllib.parse

        req = urllib.request.Request(
            url, data=urllib.parse.urlencode(data).encode() if data is not None else None
        )
        if not any(c.name == "session" for c in self.jar):
            req.add_header("Cookie", f"session={self.cookie}")
        with self.opener.open(req, timeout=10) as response:
            page = response.read().decode()
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        return match.group(1) if match else None

    def headers(self):
        return {"Cookie": self._cookie_header()}


async def _watch(url, *, headers=None, auth=None):
    """Connect (websocket) and wait for the first snapshot; returns the client and an event set
    when the server disconnects it."""
    client = sio.AsyncClient(reconnection=False)
    snap, gone = asyncio.Event(), asyncio.Event()

    async def on_snapshot(_data):
        snap.set()

    async def on_disconnect(*_args):
        gone.set()

    client.on("snapshot", on_snapshot, namespace="/floor")
    client.on("disconnect", on_disconnect, namespace="/floor")
    await client.connect(
        url, namespaces=["/floor"], headers=headers or {}, auth=auth, transports=["websocket"]
    )
    await asyncio.wait_for(snap.wait(), 20)
    return client, gone


def _in_thread(coro_fn):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro_fn()).result()


def test_signing_out_everywhere_on_one_process_drops_sockets_on_the_other(app, two_servers, floor):
    url_a, url_b = two_servers
    db.session.commit()
    on_b, elsewhere = Browser(app, floor.staff2), Browser(app, floor.staff2)
    on_b.open(url_b + "/")  # the session cookie gets its CSRF secret, as in a browser
    colleague = Browser(app, floor.staff)
    colleague.open(url_b + "/")

    async def scenario():
        loop = asyncio.get_running_loop()
        _mine, mine_gone = await _watch(url_b, headers=on_b.headers(), auth={"branch": "JKT01"})
        theirs, theirs_gone = await _watch(
            url_b, headers=colleague.headers(), auth={"branch": "JKT01"}
        )
        # the same person signs out everywhere from another browser, served by process A
        token = await loop.run_in_executor(None, lambda: elsewhere.open(url_a + "/"))
        await loop.run_in_executor(
            None,
            lambda: elsewhere.open(
                url_a + "/auth/logout", {"csrf_token": token, "everywhere": "1"}
            ),
        )
        await asyncio.wait_for(mine_gone.wait(), 10)
        await asyncio.sleep(0.5)
        kept = theirs.connected and not theirs_gone.is_set()
        await theirs.disconnect()
        return kept

    assert _in_thread(scenario)  # the colleague's connection stays


def test_revoking_a_display_on_one_process_drops_it_on_the_other(app, two_servers, floor, now):
    url_a, url_b = two_servers
    d, token = register_device(DeviceKind.DISPLAY, now=now)
    d.branch, d.paired_at, d.pairing_code, d.name = floor.branch, now, None, "Lobby TV"
    d2, token2 = register_device(DeviceKind.DISPLAY, now=now)
    d2.branch, d2.paired_at, d2.pairing_code, d2.name = floor.branch, now, None, "Lobby TV 2"
    db.session.commit()
    manager = Browser(app, floor.manager)

    async def scenario():
        loop = asyncio.get_running_loop()
        _display, display_gone = await _watch(
            url_b, headers={"Cookie": f"qa_device_display={token}"}
        )
        other, other_gone = await _watch(url_b, headers={"Cookie": f"qa_device_display={token2}"})
        csrf = await loop.run_in_executor(None, lambda: manager.open(url_a + "/admin/devices"))
        await loop.run_in_executor(
            None,
            lambda: manager.open(url_a + f"/admin/devices/{d.id}/revoke", {"csrf_token": csrf}),
        )
        await asyncio.wait_for(display_gone.wait(), 10)
        await asyncio.sleep(0.5)
        kept = other.connected and not other_gone.is_set()
        await other.disconnect()
        return kept

    assert _in_thread(scenario)
    db.session.expire_all()
    assert db.session.get(type(d), d.id).revoked_at is not None


@pytest.fixture
def server_and_realtime(app, floor, redis_available, tmp_path):
    """The production layout: an HTTP server process and the asyncio realtime process
    (`python -m queue_app.realtime.aio`) sharing the Redis queue."""
    db.session.commit()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    procs = []
    try:
        a, url_a = start_server(url, tmp_path / "a.log", SOCKETIO_MESSAGE_QUEUE=REDIS)
        procs.append(a)
        rt, url_rt = start_server(
            url,
            tmp_path / "rt.log",
            command=("-m", "queue_app.realtime.aio"),
            ready="/healthz",
            SOCKETIO_MESSAGE_QUEUE=REDIS,
        )
        procs.append(rt)
        yield url_a, url_rt
    finally:
        for p in procs:
            stop_server(p)


def test_the_asyncio_realtime_process_delivers_and_disconnects(
    app, server_and_realtime, floor, now
):
    url_a, url_rt = server_and_realtime
    d, token = register_device(DeviceKind.DISPLAY, now=now)
    d.branch, d.paired_at, d.pairing_code, d.name = floor.branch, now, None, "Lobby TV"
    db.session.commit()
    staff = Browser(app, floor.staff2)
    staff.open(url_a + "/")
    manager = Browser(app, floor.manager)
    teller = floor.counter_id("Teller 1")

    async def scenario():
        loop = asyncio.get_running_loop()
        changes = []
        client = sio.AsyncClient(reconnection=False)
        snap, called, gone = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def on_snapshot(data):
            changes.append(("snapshot", data))
            snap.set()

        async def on_change(data):
            changes.append(("change", data))
            if data["kind"] == "called":
                called.set()

        async def on_disconnect(*_args):
            gone.set()

        client.on("snapshot", on_snapshot, namespace="/floor")
        client.on("change", on_change, namespace="/floor")
        client.on("disconnect", on_disconnect, namespace="/floor")
        await client.connect(
            url_rt,
            namespaces=["/floor"],
            headers={"Cookie": f"qa_device_display={token}"},
            transports=["websocket"],
        )
        await asyncio.wait_for(snap.wait(), 20)
        # refused like on the threading server: staff need a branch they belong to
        refused = sio.AsyncClient(reconnection=False)
        with pytest.raises(sio.exceptions.ConnectionError):
            await refused.connect(
                url_rt,
                namespaces=["/floor"],
                headers=staff.headers(),
                auth={"branch": "NOPE"},
                transports=["websocket"],
            )
        _worker, worker_gone = await _watch(
            url_rt, headers=staff.headers(), auth={"branch": "JKT01"}
        )
        for path in ("/branches/JKT01/tickets", f"/counters/{teller}/open"):
            body = {"service": "teller"} if "tickets" in path else None
            headers = None if "tickets" in path else floor.h_staff
            await loop.run_in_executor(
                None, lambda p=path, b=body, h=headers: _post(url_a, p, h, b)
            )
        await loop.run_in_executor(
            None, lambda: _post(url_a, f"/counters/{teller}/call-next", floor.h_staff)
        )
        await asyncio.wait_for(called.wait(), 20)
        # sign-out everywhere and a revoke on the HTTP process cut the realtime process's sockets
        csrf = await loop.run_in_executor(None, lambda: staff.open(url_a + "/"))
        await loop.run_in_executor(
            None,
            lambda: staff.open(url_a + "/auth/logout", {"csrf_token": csrf, "everywhere": "1"}),
        )
        await asyncio.wait_for(worker_gone.wait(), 10)
        assert client.connected and not gone.is_set()
        csrf = await loop.run_in_executor(None, lambda: manager.open(url_a + "/admin/devices"))
        await loop.run_in_executor(
            None,
            lambda: manager.open(url_a + f"/admin/devices/{d.id}/revoke", {"csrf_token": csrf}),
        )
        await asyncio.wait_for(gone.wait(), 10)
        return changes

    events = _in_thread(scenario)
    snapshot = events[0][1]
    assert events[0][0] == "snapshot" and snapshot["audience"] == "display"
    kinds = [e["kind"] for n, e in events if n == "change"]
    assert kinds == ["issued", "counter_opened", "called"]
    assert [e["seq"] for n, e in events if n == "change"] == [
        snapshot["seq"] + i for i in (1, 2, 3)
    ]
