"""Real time on the branch floor with Flask-SocketIO's test client: who may connect to what,
what each audience receives, pushes only after commit, and the branch sequence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from queue_app.branches.models import Branch
from queue_app.customers.models import Customer
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import register_device
from queue_app.extensions import db, socketio
from queue_app.realtime import NAMESPACE, pusher
from queue_app.realtime.handlers import SNAPSHOT_BURST
from queue_app.tickets import services as engine

NS = NAMESPACE
OPEN_CLIENTS: list = []


@pytest.fixture
def rt(app, floor):
    """The floor, with the Socket.IO server of the test application in place (another test may
    have built an application since, rebinding the global `socketio`). Flask-SocketIO's test
    client patches the server it talks to (packet sending, synchronous handlers): undone
    afterwards, so that real clients of a live server in later tests are served again."""
    server = socketio.server = pusher(app).server
    saved = (server.async_handlers, server.eio.async_handlers)
    yield floor
    while OPEN_CLIENTS:  # no connection outlives its test (the pusher serves rooms with members)
        client = OPEN_CLIENTS.pop()
        if client.is_connected(NS):
            with app.app_context():
                client.disconnect(NS)
    # and no change of this test is pushed during the next one (its rows will be gone, its
    # (branch, seq) pairs would name the next test's journal entries)
    pusher(app).drain()
    for name in ("_send_packet", "_send_eio_packet"):
        server.__dict__.pop(name, None)
    server.async_handlers, server.eio.async_handlers = saved


def commit():
    db.session.commit()


def device(floor, kind=DeviceKind.DISPLAY, *, branch=None, paired=True, settings=None, now):
    d, token = register_device(kind, now=now)
    if paired:
        d.branch = branch or floor.branch
        d.paired_at = now
        d.pairing_code = None
        d.name = "Lobby TV"
    d.settings = settings or {}
    commit()
    return d, token


def flask_client(app, cookies=None, user=None):
    fc = app.test_client()
    for name, value in (cookies or {}).items():
        fc.set_cookie(name, value)
    if user is not None:
        with fc.session_transaction() as sess:
            sess["_user_id"] = user.get_id()
            sess["_fresh"] = True
    return fc


def sock(app, *, auth=None, cookies=None, user=None):
    """A Socket.IO client. Its handlers run in an application context of their own, as in a
    server (inside the test's context they would share its `g` and database session)."""
    commit()
    with app.app_context():
        client = socketio.test_client(
            app, namespace=NS, auth=auth, flask_test_client=flask_client(app, cookies, user)
        )
    OPEN_CLIENTS.append(client)
    return client


def ask(app, client, event="snapshot", arg=None):
    """Emit a client event and return the server's acknowledgement."""
    commit()
    with app.app_context():
        return client.emit(event, arg, namespace=NS, callback=True)


def display_sock(app, token):
    return sock(app, cookies={"qa_device_display": token})


def received(client, name=None):
    events = client.get_received(NS)
    return [e["args"][0] for e in events if name is None or e["name"] == name]


def drain(app):
    pusher(app).drain()


def counter(floor, name="Teller 1"):
    return floor.counters[name]


def open_and_call(floor, now, name="Teller 1", who=None):
    who = who or floor.staff
    c = counter(floor, name)
    if c.status.value != "open":
        engine.open_counter(c, who, now=now)
        commit()
    ticket = engine.call_next(c, who, now=now)
    commit()
    return ticket


def test_anonymous_and_unknown_identities_are_refused(app, rt, now):
    for auth in (
        None,
        {},
        {"ticket": "nope"},
        {"ticket": 12},
        {"branch": "JKT01"},
        {"room": "staff:1"},
    ):
        client = sock(app, auth=auth)
        assert not client.is_connected(NS), auth
    # a cookie that is no device token at all
    assert not display_sock(app, "qd_made-up").is_connected(NS)


def test_unpaired_and_revoked_devices_are_refused(app, rt, now):
    _, pending = device(rt, paired=False, now=now)
    assert not display_sock(app, pending).is_connected(NS)
    d, token = device(rt, now=now)
    assert display_sock(app, token).is_connected(NS)
    d.revoked_at = now
    commit()
    assert not display_sock(app, token).is_connected(NS)


def test_display_gets_its_branch_snapshot_without_customer_data(app, rt, now, make):
    cust = Customer(name="Rahasia Pelanggan", phone="+6281234567890")
    db.session.add(cust)
    db.session.flush()
    make.ticket(rt.branch, "teller", now=now, customer=cust)
    make.ticket(rt.branch, "teller", now=now + timedelta(seconds=5))
    commit()
    open_and_call(rt, now + timedelta(seconds=10))
    settings = {"messages": ["Selamat datang", "Jam buka 08.00-15.00"], "images": []}
    _, token = device(rt, settings=settings, now=now)
    client = display_sock(app, token)
    assert client.is_connected(NS)
    [snap] = received(client, "snapshot")
    assert snap["audience"] == "display"
    assert snap["seq"] == db.session.scalar(select(Branch.event_seq).where(Branch.code == "JKT01"))
    assert snap["seq"] == 4  # two issued, counter opened, called
    assert snap["branch"]["code"] == "JKT01" and snap["branch"]["locale"] == "id"
    assert snap["messages"] == settings["messages"]
    [call] = snap["calls"]
    assert call["kind"] == "called" and call["counter"]["name"] == "Teller 1"
    assert call["ticket"]["number"].startswith("A")
    teller = next(s for s in snap["services"] if s["code"] == "teller")
    assert teller["waiting"] == 1 and teller["open_counters"] == 1
    assert teller["estimated_wait_s"] == 2 * 240
    assert "waiting" not in snap and "counters" not in snap  # no staff view
    text = repr(snap)
    assert "Rahasia" not in text and "628" not in text


def test_staff_of_the_branch_get_the_working_view(app, rt, now, make):
    cust = Customer(name="Bu Ani", phone="+6281100000001")
    db.session.add(cust)
    db.session.flush()
    make.ticket(rt.branch, "cs", now=now, customer=cust)
    commit()
    client = sock(app, auth={"branch": "JKT01"}, user=rt.staff)
    assert client.is_connected(NS)
    [snap] = received(client, "snapshot")
    assert snap["audience"] == "staff"
    assert {c["name"] for c in snap["counters"]} == set(rt.counters)
    [w] = snap["waiting"]
    assert w["service"]["code"] == "cs" and w["position"] == 1 and w["priority"] == "normal"
    # the room is shared with every role that may view the branch: the name masked
    # (customers/privacy.py); the counter screen reads it in full from its own state
    assert w["customer"] == {"name": "B• A••"} and w["waiting_since"]
    # the manager too; the outsider of another branch and an unknown branch are refused
    assert sock(app, auth={"branch": "JKT01"}, user=rt.manager).is_connected(NS)
    from queue_app.accounts.models import User

    outsider = db.session.scalar(select(User).where(User.username == "jose"))
    assert not sock(app, auth={"branch": "JKT01"}, user=outsider).is_connected(NS)
    assert sock(app, auth={"branch": "MNL01"}, user=outsider).is_connected(NS)
    assert not sock(app, auth={"branch": "NOPE1"}, user=rt.staff).is_connected(NS)
    # signed in, but a ticket token is only that ticket
    t = make.ticket(rt.branch, "teller", now=now)
    commit()
    phone = sock(app, auth={"ticket": t.token}, user=rt.staff)
    assert received(phone, "snapshot")[0]["audience"] == "ticket"


def test_a_phone_hears_only_its_own_ticket(app, rt, now, make):
    mine = make.ticket(rt.branch, "teller", now=now)
    other = make.ticket(rt.branch, "cs", now=now)
    commit()
    phone = sock(app, auth={"ticket": mine.token})
    [snap] = received(phone, "snapshot")
    assert snap["audience"] == "ticket" and snap["every_seq"] is False
    assert snap["ticket"]["number"] == mine.number
    assert snap["ticket"]["position"] == 1 and snap["ticket"]["status"] == "waiting"
    assert "id" not in snap["ticket"] and "customer" not in snap["ticket"]
    # the cs ticket is called: nothing for this phone (another queue)
    engine.open_counter(counter(rt, "CS 1"), rt.staff, now=now)
    commit()
    engine.call_ticket(other, counter(rt, "CS 1"), rt.staff, now=now)
    commit()
    drain(app)
    assert all(c["ticket"]["number"] == mine.number for c in received(phone, "change"))
    # its own call arrives, with the counter
    open_and_call(rt, now, "Teller 1", who=rt.staff2)
    drain(app)
    changes = received(phone, "change")
    assert changes[-1]["self"] is True and changes[-1]["kind"] == "called"
    assert changes[-1]["ticket"]["status"] == "called"
    assert changes[-1]["ticket"]["counter"]["name"] == "Teller 1"


def test_waiting_phones_hear_their_new_place(app, rt, now, make):
    first = make.ticket(rt.branch, "teller", now=now)
    second = make.ticket(rt.branch, "teller", now=now + timedelta(seconds=1))
    commit()
    phone = sock(app, auth={"ticket": second.token})
    assert received(phone, "snapshot")[0]["ticket"]["position"] == 2
    called = open_and_call(rt, now + timedelta(seconds=2))
    assert called.id == first.id
    drain(app)
    [moved] = [c for c in received(phone, "change") if c["kind"] == "called"]
    assert moved["self"] is False and moved["ticket"]["number"] == second.number
    assert moved["ticket"]["position"] == 1
    assert "Teller" not in repr(moved["ticket"]["counter"])


def test_nothing_is_read_or_sent_while_nobody_listens(app, rt, now, make):
    target = pusher(app)
    assert not any(target.server.manager.rooms.get(NS, {}).values())  # nobody connected
    built, sent = target.built, target.sent
    first = make.ticket(rt.branch, "teller", now=now)
    make.ticket(rt.branch, "teller", now=now + timedelta(seconds=1))
    commit()
    open_and_call(rt, now + timedelta(seconds=2))
    drain(app)
    assert (target.built, target.sent) == (built, sent)  # no socket: no read, no push
    # one phone: its own room gets the place pushes, no other room is built for
    third = make.ticket(rt.branch, "teller", now=now + timedelta(seconds=3))
    commit()
    drain(app)  # its `issued` entry is pushed before the phone connects
    phone = sock(app, auth={"ticket": third.token})
    assert received(phone, "snapshot")[0]["ticket"]["position"] == 2
    engine.finish(engine.start(first, rt.staff, now=now), rt.staff, now=now, outcome="served")
    commit()
    open_and_call(rt, now + timedelta(seconds=4))
    drain(app)
    assert target.built > built
    moved = [c for c in received(phone, "change") if c["kind"] == "called"]
    assert [c["ticket"]["position"] for c in moved] == [1]
    # the pushes sent: only the phone's (no display, kiosk, staff or other ticket room)
    assert target.sent - sent == len(moved)


def test_a_phone_of_one_branch_does_not_make_this_process_read_another(app, rt, now, make):
    """Phones join their branch's `phones:<id>` room: a process holding only phones of JKT01
    reads nothing for a change of another branch (whose sockets are in another process)."""
    target = pusher(app)
    mine = make.ticket(rt.branch, "teller", now=now)
    other = make.branch("BDG01", counters=[("Teller 1", ["teller"])])
    commit()
    drain(app)
    phone = sock(app, auth={"ticket": mine.token})
    assert received(phone, "snapshot")[0]["ticket"]["position"] == 1
    built, sent = target.built, target.sent
    make.ticket(other, "teller", now=now)
    commit()
    drain(app)
    assert (target.built, target.sent) == (built, sent)
    make.ticket(rt.branch, "teller", now=now + timedelta(seconds=1))  # behind the phone's
    commit()
    drain(app)
    assert target.built == built + 1  # its own branch is still read


def test_changes_follow_the_commit_in_sequence(app, rt, now, make):
    _, token = device(rt, now=now)
    display = display_sock(app, token)
    staff = sock(app, auth={"branch": "JKT01"}, user=rt.staff)
    seq0 = received(display, "snapshot")[0]["seq"]
    received(staff)
    t = make.ticket(rt.branch, "teller", now=now)
    commit()
    open_and_call(rt, now)
    engine.recall(t, rt.staff, now=now + timedelta(seconds=30))
    commit()
    drain(app)
    changes = received(display, "change")
    assert [c["kind"] for c in changes] == ["issued", "counter_opened", "called", "recall"]
    assert [c["seq"] for c in changes] == list(range(seq0 + 1, seq0 + 5))
    call = changes[2]
    assert call["ticket"]["number"] == t.number
    assert call["ticket"]["service"]["names"] == {"id": "Teller", "en": "Teller"}
    assert call["counter"] == {"id": counter(rt).id, "name": "Teller 1"}
    assert call["ticket"]["status"] == "called" and changes[3]["ticket"]["status"] == "called"
    assert call["queues"][0]["code"] == "teller" and call["queues"][0]["waiting"] == 0
    staff_changes = received(staff, "change")
    assert [c["seq"] for c in staff_changes] == [c["seq"] for c in changes]
    assert staff_changes[2]["ticket"]["id"] == t.id
    assert staff_changes[2]["counter"]["staff"]["id"] == rt.staff.id
    assert "id" not in call["ticket"] and "actor_id" not in call


def test_lobby_screens_skip_start_and_finish_and_name_the_push_before(app, rt, now, make):
    _, token = device(rt, now=now)
    display = display_sock(app, token)
    staff = sock(app, auth={"branch": "JKT01"}, user=rt.staff)
    seq0 = received(display, "snapshot")[0]["seq"]
    received(staff)
    first = make.ticket(rt.branch, "teller", now=now)
    make.ticket(rt.branch, "teller", now=now + timedelta(seconds=1))
    commit()
    open_and_call(rt, now + timedelta(seconds=2))  # counter_opened, called
    engine.finish(engine.start(first, rt.staff, now=now), rt.staff, now=now, outcome="served")
    commit()
    open_and_call(rt, now + timedelta(seconds=3))
    drain(app)
    staff_changes = received(staff, "change")
    assert all("prev" not in c for c in staff_changes)  # staff hear every entry
    every = [(c["seq"], c["kind"]) for c in staff_changes]
    assert [k for _, k in every] == [
        "issued",
        "issued",
        "counter_opened",
        "called",
        "start",
        "finish",
        "called",
    ]
    assert [s for s, _ in every] == list(range(seq0 + 1, seq0 + 8))
    lobby = received(display, "change")
    assert [c["kind"] for c in lobby] == ["issued", "issued", "counter_opened", "called", "called"]
    # each names the one heard before it, across the two entries it did not hear
    assert [c["prev"] for c in lobby] == [seq0] + [c["seq"] for c in lobby[:-1]]
    assert lobby[-1]["seq"] == lobby[-2]["seq"] + 3


def test_a_rollback_pushes_nothing(app, rt, now, make):
    _, token = device(rt, now=now)
    display = display_sock(app, token)
    seq0 = received(display, "snapshot")[0]["seq"]
    make.ticket(rt.branch, "teller", now=now)
    db.session.rollback()
    drain(app)
    assert received(display, "change") == []
    make.ticket(rt.branch, "teller", now=now)
    commit()
    drain(app)
    [change] = received(display, "change")
    assert change["seq"] == seq0 + 1  # the rolled-back entry took no number


def test_other_branches_and_audiences_get_nothing(app, rt, now, make):
    _, other_token = device(rt, branch=rt.other_branch, now=now)
    other_display = display_sock(app, other_token)
    _, kiosk_token = device(rt, DeviceKind.KIOSK, now=now)
    kiosk = sock(app, cookies={"qa_device_kiosk": kiosk_token})
    assert received(kiosk, "snapshot")[0]["audience"] == "kiosk"
    bystander = make.ticket(rt.other_branch, "teller", now=now)
    commit()
    phone_elsewhere = sock(app, auth={"ticket": bystander.token})
    drain(app)
    received(other_display)
    received(phone_elsewhere)
    make.ticket(rt.branch, "teller", now=now)
    commit()
    open_and_call(rt, now)
    drain(app)
    assert received(other_display, "change") == []
    assert received(phone_elsewhere, "change") == []
    assert [c["kind"] for c in received(kiosk, "change")] == ["issued", "counter_opened", "called"]


def test_clients_cannot_pick_rooms(app, rt, now, make):
    _, token = device(rt, now=now)
    display = display_sock(app, token)
    received(display)
    for event, arg in (
        ("join", f"staff:{rt.branch.id}"),
        ("join_room", {"room": "staff"}),
        ("enter_room", f"staff:{rt.branch.id}"),
    ):
        assert not ask(app, display, event, arg)  # no such event: no answer
    cust = Customer(name="Pak Joko", phone="+6281200000002")
    db.session.add(cust)
    db.session.flush()
    make.ticket(rt.branch, "teller", now=now, customer=cust)
    commit()
    drain(app)
    [change] = received(display, "change")
    assert "Joko" not in repr(change) and "customer" not in change["ticket"]


def test_snapshot_on_request_and_its_rate_limit(app, rt, now, make):
    t = make.ticket(rt.branch, "teller", now=now)
    commit()
    phone = sock(app, auth={"ticket": t.token})
    received(phone)
    answers = [ask(app, phone) for _ in range(SNAPSHOT_BURST + 2)]
    assert all(a["audience"] == "ticket" for a in answers[:SNAPSHOT_BURST])
    assert answers[-1]["error"] == "rate_limited"


def test_revoked_device_and_signed_out_staff_lose_the_connection(app, rt, now):
    d, token = device(rt, now=now)
    display = display_sock(app, token)
    staff = sock(app, auth={"branch": "JKT01"}, user=rt.staff2)
    d.revoked_at = now
    rt.staff2.session_version += 1  # logout everywhere, password or role change
    commit()
    assert ask(app, display)["error"] == "not_allowed"
    assert not display.is_connected(NS)
    assert ask(app, staff)["error"] == "not_allowed"
    assert not staff.is_connected(NS)


def signed_in_browser(app, user):
    """A browser session of `user` that has opened a page (so its cookie holds the CSRF
    secret) and the CSRF token of that page's forms."""
    import re

    fc = flask_client(app, user=user)
    with app.app_context():  # a `g` of its own: Flask-WTF keeps the page's token there
        page = fc.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return fc, token


def browser_sock(app, fc, auth):
    commit()
    with app.app_context():
        return socketio.test_client(app, namespace=NS, auth=auth, flask_test_client=fc)


def test_signing_out_everywhere_disconnects_every_socket_of_the_user(app, rt, now):
    from queue_app.accounts.services import sign_out_everywhere

    mine = [sock(app, auth={"branch": "JKT01"}, user=rt.staff2) for _ in range(2)]
    other = sock(app, auth={"branch": "JKT01"}, user=rt.staff)
    assert all(c.is_connected(NS) for c in [*mine, other])
    sign_out_everywhere(rt.staff2)
    assert all(c.is_connected(NS) for c in mine)  # nothing before the commit
    commit()
    # no snapshot request needed: the server closed them
    assert not any(c.is_connected(NS) for c in mine)
    assert other.is_connected(NS)


def test_a_plain_logout_disconnects_that_browser_session(app, rt, now):
    fc_a, token_a = signed_in_browser(app, rt.staff2)
    fc_b, _token_b = signed_in_browser(app, rt.staff2)
    a = browser_sock(app, fc_a, {"branch": "JKT01"})
    b = browser_sock(app, fc_b, {"branch": "JKT01"})
    assert a.is_connected(NS) and b.is_connected(NS)
    with app.app_context():
        response = fc_a.post("/auth/logout", data={"csrf_token": token_a})
    assert response.status_code == 302
    assert not a.is_connected(NS)
    assert b.is_connected(NS)  # another browser of the same person keeps working
    assert ask(app, b)["audience"] == "staff"


def test_logout_everywhere_through_the_page_disconnects_all_browsers(app, rt, now):
    fc_a, token_a = signed_in_browser(app, rt.staff2)
    fc_b, _ = signed_in_browser(app, rt.staff2)
    a = browser_sock(app, fc_a, {"branch": "JKT01"})
    b = browser_sock(app, fc_b, {"branch": "JKT01"})
    with app.app_context():
        fc_a.post("/auth/logout", data={"csrf_token": token_a, "everywhere": "1"})
    assert not a.is_connected(NS) and not b.is_connected(NS)


def test_disconnect_user_for_role_and_account_changes(app, rt, now):
    from queue_app.realtime import disconnect_user

    staff = sock(app, auth={"branch": "JKT01"}, user=rt.staff2)
    other = sock(app, auth={"branch": "JKT01"}, user=rt.staff)
    rt.staff2.active = False
    commit()
    with app.app_context():
        disconnect_user(rt.staff2.id)
    assert not staff.is_connected(NS)
    assert other.is_connected(NS)


def test_revoking_a_device_disconnects_it_at_once(app, rt, now):
    from queue_app.devices.services import revoke_device

    d, token = device(rt, now=now)
    _d2, token2 = device(rt, now=now)
    display = display_sock(app, token)
    kept = display_sock(app, token2)
    assert display.is_connected(NS) and kept.is_connected(NS)
    revoke_device(d, rt.manager, now=now)
    commit()
    assert not display.is_connected(NS)
    assert kept.is_connected(NS)
    assert not display_sock(app, token).is_connected(NS)  # and it cannot come back


def test_wildcard_origins_are_refused():
    from types import SimpleNamespace

    from queue_app.realtime import init_realtime

    with pytest.raises(RuntimeError, match="never"):
        init_realtime(SimpleNamespace(config={"CORS_ORIGINS": ["*"]}, extensions={}))


# --- an estimate still pending when a change was pushed --------------------------------------


@pytest.fixture
def ewt_interval(app):
    """The estimator's rate limit of production (2 s per branch) instead of the tests' 0; the
    estimates cache emptied before and after."""
    from queue_app.waits import live

    live.clear_cache()
    app.config["EWT_MIN_INTERVAL_S"] = 2.0
    yield 2.0
    app.config["EWT_MIN_INTERVAL_S"] = 0.0
    live.clear_cache()


def wait_for(client, kind, count=1, tries=200):
    """The `change` events of `kind` the client has received, once there are `count` (a
    bounded wait: 200 x 50 ms). Every other event received meanwhile is returned too."""
    import time

    got = []
    for _ in range(tries):
        got += received(client)
        if sum(1 for c in got if c.get("kind") == kind) >= count:
            break
        time.sleep(0.05)
    return got


def settled(target, branch_id):
    """No deferred estimate push waits for the branch, none is queued or being built."""
    target.drain()
    return not target.estimates.waiting(branch_id)


def test_an_estimate_pending_at_the_push_is_pushed_when_it_can_be_made(
    app, rt, now, make, ewt_interval
):
    from queue_app.waits import live

    target = pusher(app)
    engine.open_counter(counter(rt), rt.staff, now=now)
    make.ticket(rt.branch, "teller", now=now + timedelta(seconds=1))
    commit()
    drain(app)
    live.clear_cache()  # the issue estimated the branch before the ticket: forgotten
    _, token = device(rt, now=now)
    display = display_sock(app, token)  # its snapshot makes the estimate: within 2 s, no other
    [snap] = received(display, "snapshot")
    teller = {q["code"]: q for q in snap["services"]}["teller"]
    # Teller 1 is idle: the waiting ticket is called at once, a new one after its 240 s
    assert (teller["waiting"], teller["estimated_wait_s"]) == (1, 240)
    pushes = target.estimate_pushes

    # two changes inside the interval: each is pushed at once with the estimate there is
    make.ticket(rt.branch, "teller", now=now + timedelta(seconds=2))
    commit()
    drain(app)
    third = make.ticket(rt.branch, "teller", now=now + timedelta(seconds=3))
    commit()
    drain(app)
    phone = sock(app, auth={"ticket": third.token})
    [mine] = received(phone, "snapshot")
    issued = received(display, "change")
    assert [(c["kind"], c["queues"][0]["waiting"]) for c in issued] == [
        ("issued", 2),
        ("issued", 3),
    ]
    assert [c["queues"][0]["estimated_wait_s"] for c in issued] == [240, 240]  # pending
    assert mine["ticket"]["position"] == 3 and mine["ticket"]["estimated_wait_s"] == 240

    # nothing else happens: the estimate of the second change comes when the interval ends
    got = wait_for(display, "estimate")
    [late] = [c for c in got if c.get("kind") == "estimate"]
    last = issued[-1]["seq"]
    assert (late["seq"], late["prev"]) == (last, last)  # the state the display has
    [queue] = [q for q in late["queues"] if q["code"] == "teller"]
    # three waiting, called at 0, 240 and 480 s: a new ticket at 720 s
    assert (queue["waiting"], queue["estimated_wait_s"]) == (3, 720)
    assert queue["estimated_wait_range"] == {"low_s": 720, "high_s": 720}
    assert {q["code"] for q in late["queues"]} == {"teller", "cs", "loans"}
    assert set(late) == {"seq", "prev", "kind", "at", "branch", "queues"}  # no entry, no ticket
    # the phone of the third ticket hears its own wait: after the two before it
    [place] = [c for c in wait_for(phone, "estimate") if c.get("kind") == "estimate"]
    assert place["seq"] == last and place["self"] is False
    assert place["ticket"]["number"] == third.number and place["ticket"]["position"] == 3
    assert place["ticket"]["estimated_wait_s"] == 480
    assert place["ticket"]["estimated_wait_range"] == {"low_s": 480, "high_s": 480}
    assert target.estimate_pushes == pushes + 1
    assert settled(target, rt.branch.id)
    assert received(display) == [] and received(phone) == []


def test_many_quick_changes_give_one_deferred_push(app, rt, now, make, ewt_interval):
    target = pusher(app)
    engine.open_counter(counter(rt), rt.staff, now=now)
    commit()
    _, token = device(rt, now=now)
    display = display_sock(app, token)
    staff = sock(app, auth={"branch": "JKT01"}, user=rt.staff)
    manager = sock(app, auth={"dashboard": "JKT01"}, user=rt.manager)
    received(display), received(staff), received(manager)
    pushes, fired = target.estimate_pushes, target.estimates.fired
    for i in range(6):  # six changes, each its own commit and push, inside one interval
        make.ticket(rt.branch, "teller", now=now + timedelta(seconds=1 + i))
        commit()
        drain(app)
    seq = db.session.scalar(select(Branch.event_seq).where(Branch.id == rt.branch.id))
    got = wait_for(display, "estimate")
    assert [c["kind"] for c in got] == ["issued"] * 6 + ["estimate"]
    assert got[-1]["seq"] == seq
    [queue] = [q for q in got[-1]["queues"] if q["code"] == "teller"]
    assert (queue["waiting"], queue["estimated_wait_s"]) == (6, 6 * 240)
    assert settled(target, rt.branch.id)  # and nothing more to come
    assert target.estimate_pushes == pushes + 1 and target.estimates.fired == fired + 1
    assert [c["kind"] for c in received(display)] == []
    # the counter screens hear it once too, after the six entries; the dashboard a hint
    staff_got = [c["kind"] for c in received(staff, "change")]
    assert staff_got == ["issued"] * 6 + ["estimate"]
    hints = [h for h in received(manager, "change") if h["kind"] == "estimate"]
    assert hints == [{"kind": "estimate", "branch_id": rt.branch.id, "seq": seq}]


def test_an_up_to_date_push_cancels_the_deferred_one(app, rt, now, make, ewt_interval):
    """A change pushed once the estimator may run again carries the new estimate itself: the
    deferred push that was waiting for the branch is dropped."""
    target = pusher(app)
    engine.open_counter(counter(rt), rt.staff, now=now)
    commit()
    _, token = device(rt, now=now)
    display = display_sock(app, token)
    received(display)
    make.ticket(rt.branch, "teller", now=now + timedelta(seconds=1))
    commit()
    drain(app)
    assert received(display, "change")[0]["queues"][0]["estimated_wait_s"] == 0  # pending
    assert target.estimates.waiting(rt.branch.id)  # a push is put off
    target.estimates.timer.cancel()  # this test says when the interval is over: now
    app.config["EWT_MIN_INTERVAL_S"] = 0.0
    pushes = target.estimate_pushes
    make.ticket(rt.branch, "teller", now=now + timedelta(seconds=2))
    commit()
    drain(app)
    [change] = received(display, "change")
    assert change["queues"][0]["estimated_wait_s"] == 2 * 240  # up to date
    assert not target.estimates.waiting(rt.branch.id)
    assert settled(target, rt.branch.id) and target.estimate_pushes == pushes
