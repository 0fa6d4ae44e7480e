"""The dashboard audience of /floor with Flask-SocketIO's test client: who may connect and which
rooms the server picks, the throttled journey hints (at most one per branch per interval, the
last of a burst sent when the interval ends), alert hints after `alert.changed` commits, and
re-checks (a role change closes the door)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from queue_app.accounts.models import Role, User
from queue_app.alerts import services as alerts
from queue_app.branches.models import Branch
from queue_app.extensions import db
from queue_app.realtime import pusher
from queue_app.realtime.dashboard import NETWORK_ROOM, DashboardHints

from . import test_realtime
from .test_realtime import NS, ask, commit, drain, received, sock

rt = test_realtime.rt  # the fixture: the floor with the test application's Socket.IO server


def person(username):
    return db.session.scalar(select(User).where(User.username == username))


def hints(client, kind=None):
    return [c for c in received(client, "change") if kind is None or c.get("kind") == kind]


def rooms_of(app, client):
    server = pusher(app).server
    sid = client.eio_sid
    return {
        room
        for room, members in (server.manager.rooms.get(NS) or {}).items()
        if room and any(s for s, e in members.items() if e == sid)
    }


@pytest.mark.parametrize(
    "auth, username, reason",
    [
        ({"dashboard": "*"}, None, "sign_in_required"),
        ({"dashboard": "*"}, "budi", "not_allowed"),  # staff
        ({"dashboard": "MNL01"}, "dewi", "not_allowed"),  # not her branch
        ({"dashboard": "NOPE"}, "dewi", "unknown_branch"),
        ({"dashboard": 7}, "dewi", "unknown_branch"),
        ({"dashboard": "x" * 500}, "rudi", "unknown_branch"),
    ],
)
def test_refused(app, rt, auth, username, reason):
    client = sock(app, auth=auth, user=person(username) if username else None)
    assert not client.is_connected(NS), reason


def test_rooms_are_decided_by_the_server(app, rt):
    manager = sock(app, auth={"dashboard": "*"}, user=person("dewi"))
    snap = received(manager, "snapshot")[0]
    assert snap["audience"] == "dashboard" and [b["code"] for b in snap["branches"]] == ["JKT01"]
    executive = sock(app, auth={"dashboard": "*"}, user=person("rudi"))
    snap = received(executive, "snapshot")[0]
    assert [b["code"] for b in snap["branches"]] == ["JKT01", "MNL01"]
    one = sock(app, auth={"dashboard": "MNL01"}, user=person("lina"))
    assert [b["code"] for b in received(one, "snapshot")[0]["branches"]] == ["MNL01"]
    jkt, mnl = rt.branch.id, rt.other_branch.id
    assert f"dashboard:{jkt}" in rooms_of(app, manager)
    assert NETWORK_ROOM in rooms_of(app, executive)
    assert f"dashboard:{mnl}" in rooms_of(app, one) and NETWORK_ROOM not in rooms_of(app, one)
    # a client cannot name rooms
    ask(app, manager, "join", {"room": NETWORK_ROOM})
    assert NETWORK_ROOM not in rooms_of(app, manager)


def test_a_journey_change_is_a_hint_and_a_burst_is_throttled(app, rt, now, monkeypatch):
    hints_ = pusher(app).dashboard
    # long enough for the five commits below on a slow machine
    monkeypatch.setattr(hints_, "interval", 2.0)
    hints_.last.clear()
    manager = sock(app, auth={"dashboard": "JKT01"}, user=person("dewi"))
    network = sock(app, auth={"dashboard": "*"}, user=person("rudi"))
    other = sock(app, auth={"dashboard": "MNL01"}, user=person("rudi"))
    for c in (manager, network, other):
        received(c)
    from .factories import ticket

    for i in range(5):  # five commits inside one interval
        ticket(rt.branch, now=now + timedelta(seconds=i))
        commit()
        drain(app)
    first = hints(manager, "journey")
    assert len(first) == 1 and first[0]["branch_id"] == rt.branch.id
    assert len(hints(network, "journey")) == 1
    assert hints(other) == []  # MNL01's page hears nothing of JKT01
    late = []
    for _ in range(100):  # the interval ends: the last of the burst, with the latest seq
        late += hints(manager, "journey")
        if late:
            break
        time.sleep(0.05)
    seq = db.session.scalar(select(Branch.event_seq).where(Branch.id == rt.branch.id))
    assert [h["seq"] for h in late] == [seq]
    assert first[0]["seq"] < seq
    assert len(hints(network, "journey")) == 1


def test_throttle_unit():
    sent = []

    class P:
        def deliver(self, step):
            sent.append(step)

        def _rooms(self):
            return {"dashboard:1": {"a": 1}}

    h = DashboardHints(P(), interval=0.2)
    rooms = {"dashboard:1": {"a": 1}, "dashboard:2": {}}
    h.note({1: [5]}, rooms)  # the first of a branch goes at once
    h.note({1: [6], 2: [9]}, rooms)  # branch 2 has nobody listening
    h.note({1: [7]}, rooms)
    assert [[p for _r, p in s] for s in sent] == [[{"kind": "journey", "branch_id": 1, "seq": 5}]]
    for _ in range(100):  # the timer sends the last of the burst when the interval ends
        if len(sent) > 1:
            break
        time.sleep(0.05)
    assert sent[-1] == [("dashboard:1", {"kind": "journey", "branch_id": 1, "seq": 7})]
    assert len(sent) == 2


def test_an_alert_change_is_pushed_after_commit(app, rt, now):
    manager = sock(app, auth={"dashboard": "JKT01"}, user=person("dewi"))
    received(manager)
    session = db.session
    alerts.create_rule(session, rt.branch, metric="queue_length", raise_at=1, clear_at=0, now=now)
    from .factories import ticket

    ticket(rt.branch, now=now - timedelta(minutes=5))
    assert alerts.evaluate_branch(session, rt.branch, now)
    assert hints(manager, "alert") == []  # nothing before the commit
    session.rollback()
    assert hints(manager, "alert") == []  # nor after a rollback
    alerts.create_rule(session, rt.branch, metric="queue_length", raise_at=1, clear_at=0, now=now)
    ticket(rt.branch, now=now - timedelta(minutes=5))
    made = alerts.evaluate_branch(session, rt.branch, now)
    commit()
    got = hints(manager, "alert")
    assert [(h["branch_id"], h["alert_id"], h["status"]) for h in got] == [
        (rt.branch.id, made[0].id, "raised")
    ]


def test_a_role_change_is_checked_again(app, rt):
    manager = sock(app, auth={"dashboard": "JKT01"}, user=person("dewi"))
    assert manager.is_connected(NS)
    dewi = person("dewi")
    dewi.role = Role.STAFF
    commit()
    assert ask(app, manager) == {"error": "not_allowed"}
