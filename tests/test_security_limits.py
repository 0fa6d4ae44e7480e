"""Rate limits on every public endpoint that creates or changes something.

`LIMITED` names each public writing endpoint with the setting of its limit. The test walks
`app.url_map`: every writing route is either in `LIMITED`, in `NOT_LIMITED` with the reason,
or refuses an anonymous caller (staff pages and staff API: 401, 403 or the sign-in page). A
new public endpoint without a limit fails here until it is given one (or a reason).

For each limited endpoint the limit is set to 2 per minute (the clock frozen, so the three
requests share one window): the third answer is 429 with a message, in the API's error shape
or as a page in the customer's language, never the framework's bare 429 page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import time_machine

from queue_app.accounts.models import Role
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import pair_device, register_device
from queue_app.extensions import db, limiter
from queue_app.i18n import ensure_compiled

from .apihelp import API, assert_error, fast_passwords
from .test_security_csrf import writing_routes

NOW = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
CODE = "JKT01"

# endpoint -> (method, path, setting of its limit)
LIMITED = {
    # API, anonymous callers (per network address)
    "branches.issue_ticket": ("POST", f"{API}/branches/{CODE}/tickets", "API_ISSUE_RATE_LIMIT"),
    "appointments.book_appointment": (
        "POST",
        f"{API}/branches/{CODE}/appointments",
        "BOOKING_HOLD_RATE_LIMIT",
    ),
    "appointments.check_in": (
        "POST",
        f"{API}/branches/{CODE}/appointments/ABC234/check-in",
        "BOOKING_CODE_RATE_LIMIT",
    ),
    "appointments.cancel_appointment": (
        "POST",
        f"{API}/appointments/ABC234/cancel",
        "BOOKING_CODE_RATE_LIMIT",
    ),
    "appointments.reschedule_appointment": (
        "POST",
        f"{API}/appointments/ABC234/reschedule",
        "BOOKING_CODE_RATE_LIMIT",
    ),
    "remote.request_code": (
        "POST",
        f"{API}/branches/{CODE}/remote/codes",
        "REMOTE_CODE_RATE_LIMIT",
    ),
    "remote.join": ("POST", f"{API}/branches/{CODE}/remote/tickets", "REMOTE_JOIN_RATE_LIMIT"),
    "remote.confirm_arrival": ("POST", f"{API}/tickets/nope/arrival", "REMOTE_TICKET_RATE_LIMIT"),
    "remote.leave": ("POST", f"{API}/tickets/nope/leave", "REMOTE_TICKET_RATE_LIMIT"),
    "feedback.post_feedback": ("POST", f"{API}/tickets/nope/feedback", "FEEDBACK_RATE_LIMIT"),
    # pages (per network address; the kiosk's per device)
    "auth.login": ("POST", "/auth/login", "LOGIN_RATE_LIMIT"),
    "booking_pages.hold": ("POST", f"/b/{CODE}/book/teller", "BOOKING_HOLD_RATE_LIMIT"),
    "booking_pages.confirm": (
        "POST",
        f"/b/{CODE}/book/teller/details/nope",
        "BOOKING_HOLD_RATE_LIMIT",
    ),
    "booking_pages.cancel": ("POST", "/appointments/nope/cancel", "BOOKING_CODE_RATE_LIMIT"),
    "booking_pages.reschedule": (
        "POST",
        "/appointments/nope/reschedule",
        "BOOKING_CODE_RATE_LIMIT",
    ),
    "mobile.join": ("POST", f"/b/{CODE}/join", "REMOTE_CODE_RATE_LIMIT"),
    "mobile.verify": ("POST", f"/b/{CODE}/join/verify", "REMOTE_JOIN_RATE_LIMIT"),
    "mobile.here_confirm": ("POST", f"/b/{CODE}/here", "REMOTE_TICKET_RATE_LIMIT"),
    "mobile.leave": ("POST", "/t/nope/leave", "REMOTE_TICKET_RATE_LIMIT"),
    "feedback_pages.by_link": ("POST", "/r/nope", "FEEDBACK_RATE_LIMIT"),
    "feedback_pages.by_token": ("POST", "/t/nope/rate", "FEEDBACK_RATE_LIMIT"),
    "case_recovery.answer": ("POST", "/r/case/nope", "FEEDBACK_RATE_LIMIT"),
    "kiosk.issue": ("POST", "/kiosk/id/tickets", "KIOSK_RATE_LIMIT"),
    "kiosk.booking": ("POST", "/kiosk/id/booking", "KIOSK_RATE_LIMIT"),
}

# public writing endpoints without a limit of their own, and why
NOT_LIMITED = {
    # signing out creates nothing (and a limit would keep someone signed in)
    "auth.logout",
    # a paired device's rating: the survey's token is signed, names one finished step, valid
    # minutes; one response per step (unique index): it can create at most one row per step
    "feedback_tablet.rate",
}

MESSAGE = re.compile(r"Too many|Terlalu banyak")


@pytest.fixture(scope="module", autouse=True)
def compiled(app):
    ensure_compiled(app)


@pytest.fixture
def branch(make):
    b = make.branch(CODE)
    db.session.commit()
    return b


@pytest.fixture
def fresh_limits():
    limiter.reset()
    yield
    limiter.reset()


def _token(client) -> str:
    page = client.get("/auth/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _send(client, method, path, token):
    if path.startswith(API + "/"):
        return client.open(path, method=method, json={})
    return client.open(path, method=method, data={"csrf_token": token})


def test_every_public_writing_endpoint_is_limited_or_staff_only(client, app, branch):
    routes = {(endpoint, method): url for url, method, endpoint, _ex in writing_routes(app)}
    endpoints = {endpoint for endpoint, _m in routes}
    assert set(LIMITED) <= endpoints, set(LIMITED) - endpoints
    assert endpoints >= NOT_LIMITED
    staff_only = []
    for (endpoint, method), url in sorted(routes.items()):
        if endpoint in LIMITED or endpoint in NOT_LIMITED:
            continue
        response = _send(client, method, url, _token(client))
        location = response.headers.get("Location", "")
        refused = response.status_code in (401, 403) or (
            response.status_code in (302, 303) and "/auth/login" in location
        )
        assert refused, f"{method} {url} ({endpoint}) answers a stranger {response.status_code}"
        staff_only.append(endpoint)
    assert len(staff_only) >= 25


def _real_ticket(client, make, branch, path):
    """The page past the limit names the ticket: a real one (an unknown token is a 404)."""
    ticket = make.ticket(branch, "teller", now=NOW)
    db.session.commit()
    return path.replace("nope", ticket.token)


def _pending_join(client, make, branch, path):
    """The code page past the limit shows the join waiting for its code (none: the join
    page, where a join starts)."""
    with client.session_transaction() as session:
        session["mobile_pending_join"] = {
            "branch": CODE,
            "service": "teller",
            "contact": "0812-3456-7890",
            "masked": "+62 812 •••• 7890",
        }
    return path


def _on_a_kiosk(client, make, branch, path):
    """A paired kiosk (the limit counts per kiosk; a browser without one gets a new device,
    and a new cookie, with every answer)."""
    admin = make.user("admin", role=Role.ADMIN)
    client.set_cookie("qa_device_kiosk", _paired_kiosk(branch, admin))
    db.session.commit()
    return path


SETUP = {
    "mobile.leave": _real_ticket,
    "mobile.verify": _pending_join,
    "kiosk.issue": _on_a_kiosk,
    "kiosk.booking": _on_a_kiosk,
}


@pytest.mark.parametrize("endpoint", sorted(LIMITED))
def test_each_public_endpoint_answers_429_with_a_message_past_its_limit(
    client, app, make, branch, endpoint, monkeypatch, fresh_limits
):
    fast_passwords(monkeypatch)
    method, path, setting = LIMITED[endpoint]
    monkeypatch.setitem(app.config, setting, "2 per minute")
    with time_machine.travel(NOW, tick=False):
        if endpoint in SETUP:
            path = SETUP[endpoint](client, make, branch, path)
        token = _token(client)
        answers = [_send(client, method, path, token) for _ in range(3)]
    statuses = [a.status_code for a in answers]
    assert statuses[:2] != [429, 429] and 429 not in statuses[:2], statuses
    refused = answers[2]
    assert refused.status_code == 429, statuses
    if path.startswith(API + "/"):
        assert_error(refused, 429)
    else:
        assert refused.mimetype == "text/html"
        assert MESSAGE.search(refused.get_data(as_text=True)), refused.get_data(as_text=True)
    # another limit window: the endpoint answers again
    with time_machine.travel(NOW.replace(minute=2), tick=False):
        again = _send(client, method, path, _token(client))
    assert again.status_code != 429


def test_a_caller_with_a_bearer_token_is_not_limited_per_address(
    client, app, make, monkeypatch, fresh_limits
):
    fast_passwords(monkeypatch)
    branch = make.branch(CODE)
    staff = make.user("budi", branches=[branch])
    headers = make.auth(staff)
    db.session.commit()
    monkeypatch.setitem(app.config, "API_ISSUE_RATE_LIMIT", "2 per minute")
    path = f"{API}/branches/{CODE}/tickets"
    with time_machine.travel(NOW, tick=False):
        with_token = [
            client.post(path, json={"service": "teller"}, headers=headers).status_code
            for _ in range(4)
        ]
        assert with_token == [201] * 4
        anonymous = [client.post(path, json={"service": "teller"}).status_code for _ in range(3)]
        assert anonymous == [201, 201, 429]
        # a made-up token is no way round the limit (401, and counted)
        bogus = client.post(
            path, json={"service": "teller"}, headers={"Authorization": "Bearer nope"}
        )
        assert bogus.status_code == 429


def _paired_kiosk(branch, admin):
    device, token = register_device(DeviceKind.KIOSK, now=datetime.now(UTC))
    pair_device(device.pairing_code, branch, admin, name=f"Kiosk {device.id}", now=NOW)
    return token


def test_the_kiosk_limit_counts_per_kiosk_not_per_address(
    client, app, make, monkeypatch, fresh_limits
):
    fast_passwords(monkeypatch)
    branch = make.branch(CODE)
    admin = make.user("admin", role=Role.ADMIN)
    first, second = _paired_kiosk(branch, admin), _paired_kiosk(branch, admin)
    db.session.commit()
    monkeypatch.setitem(app.config, "KIOSK_RATE_LIMIT", "2 per minute")
    with time_machine.travel(NOW, tick=False):
        client.set_cookie("qa_device_kiosk", first)
        token = _token(client)
        answers = [
            client.post("/kiosk/id/tickets", data={"csrf_token": token}).status_code
            for _ in range(3)
        ]
        assert answers[2] == 429 and 429 not in answers[:2], answers
        # the other kiosk of the branch, same address: not affected
        client.set_cookie("qa_device_kiosk", second)
        assert client.post("/kiosk/id/tickets", data={"csrf_token": token}).status_code != 429
