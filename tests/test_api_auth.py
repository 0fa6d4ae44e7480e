"""Who may call the staff endpoints of API v1: bearer tokens, roles and branches.

Every staff endpoint is tried without a token, with garbled, unknown and revoked tokens, with
the token of a deactivated account (401 with `WWW-Authenticate: Bearer`), by roles that do not
work the floor and by staff of another branch (403). None of these may change anything.
"""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from queue_app.accounts.services import revoke_api_token
from queue_app.branches.models import Counter, CounterStatus
from queue_app.extensions import db
from queue_app.tickets.models import JourneyEvent, Ticket, TicketStatus

from .apihelp import (
    API,
    assert_error,
    issue,
    ok,
    row_counts,
)

# (method, path template, body): every endpoint that needs a staff token
STAFF_ENDPOINTS = [
    ("get", "/branches/{branch}/counters", None),
    ("get", "/branches/{branch}/queue", None),
    ("post", "/counters/{counter}/open", None),
    ("post", "/counters/{counter}/pause", {"reason": "break"}),
    ("post", "/counters/{counter}/close", None),
    ("post", "/counters/{counter}/call-next", None),
    ("post", "/tickets/{ticket}/call", {"counter_id": "{counter}"}),
    ("post", "/tickets/{ticket}/start", None),
    ("post", "/tickets/{ticket}/finish", {"outcome": "done"}),
    ("post", "/tickets/{ticket}/recall", None),
    ("post", "/tickets/{ticket}/no-show", None),
    ("post", "/tickets/{ticket}/transfer", {"service": "cs"}),
    ("post", "/tickets/{ticket}/hold", None),
    ("post", "/tickets/{ticket}/resume", None),
    ("post", "/tickets/{ticket}/cancel", None),
]
FLOOR_ENDPOINTS = [e for e in STAFF_ENDPOINTS if e[0] == "post"]
VIEW_ENDPOINTS = [e for e in STAFF_ENDPOINTS if e[0] == "get"]


@pytest.fixture
def scene(client, floor):
    """A waiting ticket and an open teller counter of siti's: something to act on."""
    ticket = issue(client, "teller")
    counter_id = floor.counter_id("Teller 1")
    ok(client.post(f"{API}/counters/{counter_id}/open", headers=floor.h_staff2))
    return {"branch": "JKT01", "counter": counter_id, "ticket": ticket["id"]}


def _request(client, endpoint, scene, headers):
    method, template, body = endpoint
    path = API + template.format(**scene)
    if body is not None:
        body = {k: (int(v.format(**scene)) if v == "{counter}" else v) for k, v in body.items()}
    return getattr(client, method)(path, json=body, headers=headers)


def _state():
    """What the endpoints could change: tickets, counters and the journey log."""
    db.session.commit()
    tickets = db.session.execute(select(Ticket.id, Ticket.status, Ticket.counter_id)).all()
    counters = db.session.execute(select(Counter.id, Counter.status, Counter.staff_id)).all()
    events = db.session.scalar(select(db.func.count()).select_from(JourneyEvent))
    return sorted(tickets), sorted(counters), events, row_counts()


GARBLED = [
    None,
    "",
    "Bearer",
    "Bearer ",
    "bearer qa_unknown-token-of-nobody",
    "Bearer qa_" + "x" * 43,
    "Bearer " + "y" * 500,
    "Bearer not-even-our-prefix",
    "Basic YnVkaTpyYWhhc2lhLTEyMw==",
    "Token qa_abc",
    "Bearer qa_\u00e9\u00e8",
]


def test_missing_or_garbled_token_is_401(client, floor, scene):
    before = _state()
    for endpoint in STAFF_ENDPOINTS:
        for authorization in GARBLED:
            headers = {} if authorization is None else {"Authorization": authorization}
            response = _request(client, endpoint, scene, headers)
            assert_error(response, 401, "unauthorized", ctx=(endpoint[1], authorization))
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="queue_app"'
    assert _state() == before


def test_revoked_token_is_401(client, floor, scene):
    token = floor.h_manager["Authorization"].split()[1]
    assert revoke_api_token(token, now=datetime.now(UTC))
    db.session.commit()
    before = _state()
    for endpoint in STAFF_ENDPOINTS:
        response = _request(client, endpoint, scene, floor.h_manager)
        assert_error(response, 401, "unauthorized", ctx=endpoint[1])
    assert _state() == before


def test_token_of_a_deactivated_account_is_401(client, floor, scene):
    floor.manager.active = False
    db.session.commit()
    before = _state()
    for endpoint in STAFF_ENDPOINTS:
        response = _request(client, endpoint, scene, floor.h_manager)
        assert_error(response, 401, "unauthorized", ctx=endpoint[1])
    assert _state() == before


def test_the_same_token_works_until_revoked(client, floor, scene):
    path = f"{API}/branches/JKT01/counters"
    ok(client.get(path, headers=floor.h_manager))
    revoke_api_token(floor.h_manager["Authorization"].split()[1], now=datetime.now(UTC))
    db.session.commit()
    assert_error(client.get(path, headers=floor.h_manager), 401)
    ok(client.get(path, headers=floor.h_staff))  # other tokens are not affected


def test_roles_that_do_not_work_the_floor_get_403(client, floor, scene):
    """A CX agent (member of the branch) and an executive (sees every branch) may not serve."""
    before = _state()
    for who in ["h_cx", "h_exec"]:
        for endpoint in FLOOR_ENDPOINTS:
            response = _request(client, endpoint, scene, getattr(floor, who))
            error = assert_error(response, 403, "forbidden", ctx=(who, endpoint[1]))
            assert "JKT01" in error["message"]
    assert _state() == before


def test_staff_of_another_branch_get_403(client, floor, scene):
    before = _state()
    for endpoint in STAFF_ENDPOINTS:
        response = _request(client, endpoint, scene, floor.h_other)
        error = assert_error(response, 403, "forbidden", ctx=endpoint[1])
        assert "jose" in error["message"]
    assert _state() == before


def test_who_may_look_at_a_branch(client, floor, scene):
    """Looking is wider than serving: the CX agent of the branch and executives may look."""
    for who in ["h_cx", "h_exec", "h_admin", "h_manager", "h_staff"]:
        for endpoint in VIEW_ENDPOINTS:
            body = ok(_request(client, endpoint, scene, getattr(floor, who)), ctx=(who, endpoint))
            assert isinstance(body["items"], list) and body["items"]


def test_admin_works_the_floor_of_any_branch(client, floor, make):
    other_counter = floor.other_branch.counters[0]
    response = client.post(f"{API}/counters/{other_counter.id}/open", headers=floor.h_admin)
    assert ok(response)["status"] == "open"
    issue(client, "teller", branch="MNL01")
    called = ok(client.post(f"{API}/counters/{other_counter.id}/call-next", headers=floor.h_admin))
    assert called["number"] == "A001"


def test_a_colleague_may_not_work_someone_elses_counter(client, floor, scene):
    """budi belongs to the branch but siti is signed in at Teller 1."""
    counter = scene["counter"]
    before = _state()
    for action in ("call-next", "pause", "close"):
        response = client.post(f"{API}/counters/{counter}/{action}", headers=floor.h_staff)
        assert_error(response, 403, "not_your_counter")
    response = client.post(f"{API}/counters/{counter}/open", headers=floor.h_staff)
    assert_error(response, 409, "counter_taken")
    assert _state() == before
    called = ok(client.post(f"{API}/counters/{counter}/call-next", headers=floor.h_staff2))
    for action in ("start", "recall", "no-show", "hold"):
        response = client.post(f"{API}/tickets/{called['id']}/{action}", headers=floor.h_staff)
        assert_error(response, 403, "not_your_counter")
    assert db.session.get(Ticket, called["id"]).status == TicketStatus.CALLED


def test_the_branch_manager_may_take_over_a_counter(client, floor, scene):
    counter = scene["counter"]
    called = ok(client.post(f"{API}/counters/{counter}/call-next", headers=floor.h_staff2))
    started = ok(client.post(f"{API}/tickets/{called['id']}/start", headers=floor.h_manager))
    assert started["status"] == "serving"
    ok(client.post(f"{API}/tickets/{called['id']}/finish", headers=floor.h_manager))
    closed = ok(client.post(f"{API}/counters/{counter}/close", headers=floor.h_manager))
    assert closed["status"] == "closed"
    assert db.session.get(Counter, counter).status == CounterStatus.CLOSED
