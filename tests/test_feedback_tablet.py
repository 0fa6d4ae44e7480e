"""The feedback tablet at a counter: pairing it with a counter of its branch, its state (the
survey of the counter's last finished visit step), the signed rating token, rating through
the page with the device cookie, and the live push of the survey over Socket.IO.

Requests go through the isolating client with CSRF on (the tablet takes its CSRF token from
its state, as the page does). Times are real (the tablet's window and business day follow the
clock, kept clear of a local midnight by `tests/clock.py`); `time_machine` moves the clock for
the window and the token's expiry.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from queue_app.accounts.models import Role
from queue_app.branches.models import WEEKDAYS
from queue_app.customers.models import Customer
from queue_app.devices.models import Device, DeviceKind
from queue_app.devices.services import register_device
from queue_app.devices.web import cookie_name
from queue_app.extensions import db, socketio
from queue_app.feedback.models import FeedbackChannel, FeedbackResponse, SurveyConfig
from queue_app.feedback.tablet_state import SALT, tablet_steps
from queue_app.i18n import ensure_compiled
from queue_app.realtime import NAMESPACE, pusher
from queue_app.tickets import services as engine

from .apihelp import IsolatedClient, fast_passwords
from .clock import steady_clock

PASSWORD = "rahasia-123"
PAGE = "/feedback/tablet/"
STATE = "/feedback/tablet/state"
RATE = "/feedback/tablet/rate"
ALWAYS_OPEN = {day: [["00:00", "23:59:59.999999"]] for day in WEEKDAYS}


@pytest.fixture(scope="module", autouse=True)
def compiled(app):
    ensure_compiled(app)


@pytest.fixture(autouse=True)
def clock():
    """Each test's history (served minutes ago) within one business day (tests/clock.py)."""
    with steady_clock() as now:
        yield now


class Shop:
    """JKT01 (two teller counters) and MNL01 (one), staff, a manager, an admin."""

    def __init__(self, make):
        self.jkt = make.branch(
            "JKT01", counters=[("Teller 1", ["teller"]), ("Teller 2", ["teller"])]
        )
        self.mnl = make.branch(
            "MNL01",
            timezone="Asia/Manila",
            country="PH",
            locale="en",
            counters=[("Counter 1", ["teller"])],
        )
        for b in (self.jkt, self.mnl):
            b.opening_hours = ALWAYS_OPEN
        self.staff = make.user("budi", branches=[self.jkt], password=PASSWORD)
        self.staff2 = make.user("siti", branches=[self.jkt], password=PASSWORD)
        self.maria = make.user("maria", branches=[self.mnl], password=PASSWORD)
        self.manager = make.user(
            "dewi", role=Role.BRANCH_MANAGER, branches=[self.jkt], password=PASSWORD
        )
        self.admin = make.user("admin", role=Role.ADMIN, password=PASSWORD)
        self.t1 = make.counter(self.jkt, "Teller 1")
        self.t2 = make.counter(self.jkt, "Teller 2")
        self.m1 = make.counter(self.mnl, "Counter 1")
        self.who = {self.t1.id: self.staff, self.t2.id: self.staff2, self.m1.id: self.maria}
        db.session.commit()

    def served(self, counter, *, now=None, customer=None):
        """A ticket issued, called, started and finished (served) at `counter`, committed."""
        now = now or datetime.now(UTC)
        who = self.who[counter.id]
        ticket = engine.issue_ticket(
            counter.branch, counter.services[0], now=now - timedelta(minutes=5), customer=customer
        )
        if counter.status.value != "open":
            engine.open_counter(counter, who, now=now - timedelta(minutes=5))
        called = engine.call_next(counter, who, now=now - timedelta(minutes=4))
        assert called.id == ticket.id
        engine.start(called, who, now=now - timedelta(minutes=4))
        engine.finish(called, who, now=now, outcome="served")
        db.session.commit()
        return called


@pytest.fixture
def shop(make, monkeypatch):
    fast_passwords(monkeypatch)
    return Shop(make)


def new_client(app) -> IsolatedClient:
    return IsolatedClient(app, app.response_class, use_cookies=True)


def text_of(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


def csrf_from(client, path) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def signed_in(app, username) -> IsolatedClient:
    client = new_client(app)
    response = client.post(
        "/auth/login",
        data={
            "username": username,
            "password": PASSWORD,
            "csrf_token": csrf_from(client, "/auth/login"),
        },
    )
    assert response.status_code == 302
    client.get("/admin/devices?lang=en")  # English from here on
    return client


def pair(admin, code, branch, counter=None, name="Tablet Teller 1"):
    return admin.post(
        "/admin/devices/pair",
        data={
            "code": code,
            "branch": str(branch.id),
            "counter": str(counter.id) if counter is not None else "",
            "name": name,
            "csrf_token": csrf_from(admin, "/admin/devices"),
        },
    )


def shown_code(response) -> str:
    match = re.search(r'data-testid="pairing-code"[^>]*>([^<]+)<', response.get_data(as_text=True))
    assert match, "no pairing code on the page"
    return match.group(1).strip()


def tablet(app, branch, counter) -> tuple[Device, IsolatedClient]:
    """A feedback tablet paired with `counter` (straight in the database), and its browser."""
    now = datetime.now(UTC)
    device, token = register_device(DeviceKind.FEEDBACK, now=now)
    device.branch = branch
    device.counter = counter
    device.paired_at = now
    device.pairing_code = None
    device.name = f"Tablet {counter.name}"
    db.session.commit()
    client = new_client(app)
    client.set_cookie(cookie_name(DeviceKind.FEEDBACK), token)
    return device, client


def state_of(client) -> dict:
    response = client.get(STATE)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def rate(client, body, csrf=None):
    csrf = csrf if csrf is not None else state_of(client)["csrf"]
    return client.post(RATE, json=body, headers={"X-CSRFToken": csrf})


def error_code(response, status) -> str:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]["code"]


def responses() -> list[FeedbackResponse]:
    db.session.expire_all()
    return list(db.session.scalars(select(FeedbackResponse).order_by(FeedbackResponse.id)))


# --- pairing -------------------------------------------------------------------------------


def test_a_feedback_tablet_pairs_with_a_counter_of_its_branch(app, shop):
    screen = new_client(app)
    first = screen.get(PAGE)
    assert first.status_code == 200
    assert first.headers["Set-Cookie"].startswith(cookie_name(DeviceKind.FEEDBACK) + "=qd_")
    code = shown_code(first)
    assert "Feedback tablet" in text_of(first)  # the pairing screen speaks every language
    assert screen.get(STATE).status_code == 403  # not paired: no state, nothing registered
    device = db.session.scalar(select(Device))
    assert device.kind == DeviceKind.FEEDBACK and not device.is_paired

    admin = signed_in(app, "dewi")
    page = admin.get("/admin/devices").get_data(as_text=True)
    # the counter select lists the counters of the manager's branch
    assert f'<option value="{shop.t2.id}" data-branch="{shop.jkt.id}"' in page
    response = pair(admin, code, shop.jkt, shop.t2)
    assert response.status_code == 302, text_of(response)
    db.session.expire_all()
    device = db.session.get(Device, device.id)
    assert device.is_paired and device.counter_id == shop.t2.id
    listing = admin.get("/admin/devices").get_data(as_text=True)
    assert re.search(r'data-testid="device-counter">Teller 2<', listing)
    assert "Feedback tablet" in text_of(admin.get("/admin/devices"))

    status = screen.get("/devices/status?kind=feedback").get_json()
    assert status["state"] == "paired" and status["branch"] == "JKT01"
    page = screen.get(PAGE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="pairing-code"' not in html
    assert 'data-testid="counter">Teller 2<' in html and "Cabang JKT01" in html
    state = state_of(screen)
    assert state["counter"] == {"id": shop.t2.id, "name": "Teller 2"}
    assert state["survey"] is None and state["csrf"]


def test_a_tablet_needs_a_counter_and_the_counter_must_be_of_the_branch(app, shop):
    screen = new_client(app)
    code = shown_code(screen.get(PAGE))
    admin = signed_in(app, "admin")

    response = pair(admin, code, shop.jkt, None)
    assert response.status_code == 422
    assert "This device is a feedback tablet: choose the counter it stands at." in text_of(response)
    response = pair(admin, code, shop.jkt, shop.m1)  # MNL01's counter
    assert response.status_code == 422
    assert "That counter is not in the chosen branch." in text_of(response)
    response = admin.post(
        "/admin/devices/pair",
        data={
            "code": code,
            "branch": str(shop.jkt.id),
            "counter": "99999",
            "name": "Tablet",
            "csrf_token": csrf_from(admin, "/admin/devices"),
        },
    )
    assert response.status_code == 422
    db.session.expire_all()
    device = db.session.scalar(select(Device))
    assert not device.is_paired and device.counter_id is None and device.pairing_code

    # a kiosk ignores the counter field
    kiosk = new_client(app)
    kiosk_code = shown_code(kiosk.get("/devices/kiosk/"))
    assert pair(admin, kiosk_code, shop.jkt, shop.t1, name="Kiosk").status_code == 302
    db.session.expire_all()
    paired = db.session.scalar(select(Device).where(Device.kind == DeviceKind.KIOSK))
    assert paired.is_paired and paired.counter_id is None

    # and the tablet pairs once the counter is right
    assert pair(admin, code, shop.jkt, shop.t1).status_code == 302
    assert db.session.get(Device, device.id).counter_id == shop.t1.id


# --- the state -----------------------------------------------------------------------------


def test_the_state_offers_the_counters_last_finished_step_until_it_is_rated(app, shop):
    _, screen = tablet(app, shop.jkt, shop.t1)
    _, neighbour = tablet(app, shop.jkt, shop.t2)
    assert state_of(screen)["survey"] is None

    ticket = shop.served(shop.t1)
    survey = state_of(screen)["survey"]
    assert survey["number"] == ticket.number
    assert survey["service"]["names"] == {"id": "Teller", "en": "Teller"}
    # the network's default survey: NPS, CSAT, and the reasons as the optional third step
    assert survey["steps"] == ["nps", "csat", "reasons"]
    assert survey["reasons"] and "waiting_time" in survey["reasons"]
    assert survey["lang"] == "id"  # the branch's language: the customer gave none
    assert survey["token"] and survey["key"].startswith(ticket.number)
    assert "id" not in survey and "customer" not in survey
    assert state_of(neighbour)["survey"] is None  # another counter's tablet shows nothing

    # rated: nothing more to show
    assert rate(screen, {"token": survey["token"], "nps": 10}).status_code == 201
    assert state_of(screen)["survey"] is None

    # a customer who speaks English gets the survey in English
    customer = Customer(locale="en", name="Ann")
    db.session.add(customer)
    db.session.flush()
    second = shop.served(shop.t1, customer=customer)
    survey = state_of(screen)["survey"]
    assert survey["number"] == second.number and survey["lang"] == "en"

    # the window closes after FEEDBACK_TABLET_WINDOW_S (180 s)
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=179), tick=False):
        assert state_of(screen)["survey"]["number"] == second.number
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=185), tick=False):
        assert state_of(screen)["survey"] is None


def test_a_step_that_left_without_service_hides_the_last_survey(app, shop):
    _, screen = tablet(app, shop.jkt, shop.t1)
    shop.served(shop.t1)
    assert state_of(screen)["survey"] is not None
    now = datetime.now(UTC)
    engine.issue_ticket(shop.jkt, shop.t1.services[0], now=now)
    called = engine.call_next(shop.t1, shop.staff, now=now + timedelta(seconds=1))
    engine.mark_no_show(called, shop.staff, now=now + timedelta(seconds=2))
    db.session.commit()
    # the counter's last step left without service: its customer, and the one before, are gone
    assert state_of(screen)["survey"] is None


def test_yesterdays_step_closed_by_the_night_job_is_not_offered(app, shop):
    _, screen = tablet(app, shop.jkt, shop.t1)
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    engine.issue_ticket(shop.jkt, shop.t1.services[0], now=yesterday)
    engine.open_counter(shop.t1, shop.staff, now=yesterday)
    ticket = engine.call_next(shop.t1, shop.staff, now=yesterday)
    engine.start(ticket, shop.staff, now=yesterday)
    db.session.commit()
    assert engine.close_past_business_days(shop.jkt, now=now) == 1  # finished just now
    db.session.commit()
    assert ticket.status.value == "finished" and ticket.finished_at == now
    assert state_of(screen)["survey"] is None


def test_a_tablet_whose_counter_is_gone_stays_idle(app, shop, sockets):
    device, screen = tablet(app, shop.jkt, shop.t1)
    token = screen.get_cookie(cookie_name(DeviceKind.FEEDBACK)).value
    shop.served(shop.t1)
    device.counter_id = None  # the counter was deleted (the column is SET NULL)
    db.session.commit()
    assert screen.get(PAGE).status_code == 200
    state = state_of(screen)
    assert state["counter"] is None and state["survey"] is None
    assert not sockets({"qa_device_feedback": token}).is_connected(NAMESPACE)


def test_the_tablet_asks_at_most_three_things(app, shop):
    def steps(**fields):
        return tablet_steps(SurveyConfig(branch_id=shop.jkt.id, **fields))

    every = ["waiting_time", "process"]
    assert steps(ask_nps=True, ask_csat=True, ask_ces=True, reasons=every, ask_comment=True) == [
        "nps",
        "csat",
        "ces",
    ]
    assert steps(ask_nps=True, ask_csat=True, ask_ces=False, reasons=every, ask_comment=True) == [
        "nps",
        "csat",
        "reasons",
    ]
    assert steps(ask_nps=True, ask_csat=False, ask_ces=False, reasons=every, ask_comment=True) == [
        "nps",
        "reasons",
        "comment",
    ]
    assert steps(ask_nps=False, ask_csat=True, ask_ces=True, reasons=[], ask_comment=True) == [
        "csat",
        "ces",
        "comment",
    ]
    assert steps(ask_nps=False, ask_csat=False, ask_ces=False, reasons=[], ask_comment=False) == []

    # a touchpoint that asks nothing shows no survey at all
    db.session.add(
        SurveyConfig(
            branch_id=shop.jkt.id,
            service_id=None,
            ask_nps=False,
            ask_csat=False,
            ask_ces=False,
            ask_comment=False,
            reasons=[],
        )
    )
    db.session.commit()
    _, screen = tablet(app, shop.jkt, shop.t1)
    shop.served(shop.t1)
    assert state_of(screen)["survey"] is None


# --- rating --------------------------------------------------------------------------------


def test_rating_through_the_tablet_records_one_response(app, shop):
    _, screen = tablet(app, shop.jkt, shop.t1)
    ticket = shop.served(shop.t1)
    state = state_of(screen)
    token = state["survey"]["token"]
    body = {"token": token, "nps": 9, "csat": 4, "reasons": ["waiting_time"], "locale": "en"}
    response = rate(screen, body, state["csrf"])
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["number"] == ticket.number
    [saved] = responses()
    assert saved.ticket_id == ticket.id and saved.channel == FeedbackChannel.TABLET
    assert (saved.nps, saved.csat, saved.ces) == (9, 4, None)
    assert saved.reasons == ["waiting_time"] and saved.locale == "en"
    assert saved.counter_id == shop.t1.id and saved.staff_id == shop.staff.id

    # a double tap: the second answer is refused with already_rated, nothing is doubled
    assert error_code(rate(screen, body), 409) == "already_rated"
    assert len(responses()) == 1


def test_bad_answers_and_requests_are_4xx(app, shop):
    _, screen = tablet(app, shop.jkt, shop.t1)
    shop.served(shop.t1)
    state = state_of(screen)
    token, csrf = state["survey"]["token"], state["csrf"]
    cases = [
        ({"token": token, "nps": 11}, 422),
        ({"token": token, "nps": "9"}, 422),
        ({"token": token, "nps": True}, 422),
        ({"token": token, "csat": 0}, 422),
        ({"token": token, "ces": 3}, 422),  # the default survey does not ask CES
        ({"token": token, "reasons": "waiting_time"}, 422),
        ({"token": token, "reasons": ["no_such_reason"]}, 422),
        ({"token": token}, 422),  # says nothing
    ]
    for body, status in cases:
        response = screen.post(RATE, json=body, headers={"X-CSRFToken": csrf})
        assert response.status_code == status, (body, response.get_data(as_text=True))
        error_code(response, status)
    assert error_code(screen.post(RATE, data="nps=9", headers={"X-CSRFToken": csrf}), 400)
    assert error_code(screen.post(RATE, json=[1, 2], headers={"X-CSRFToken": csrf}), 400)
    # without the CSRF token
    assert error_code(screen.post(RATE, json={"token": token, "nps": 9}), 400) == "csrf"
    # a browser that is not a paired tablet (with a CSRF token of its own session)
    stranger = new_client(app)
    response = rate(stranger, {"token": token, "nps": 9}, csrf_from(stranger, "/auth/login"))
    assert error_code(response, 403) == "device_not_paired"
    assert responses() == []


def test_an_altered_or_expired_token_is_refused(app, shop):
    _, screen = tablet(app, shop.jkt, shop.t1)
    ticket = shop.served(shop.t1)
    token = state_of(screen)["survey"]["token"]
    payload, _, signature = token.rpartition(".")
    altered = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    for bad in (altered, token[:-2], "", None, 12, "x" * 1000):
        assert error_code(rate(screen, {"token": bad, "nps": 9}), 404) == "survey_expired", bad
    # signed with the right key but another salt (a booking link, say): refused as well
    other_salt = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="booking.manage")
    forged = other_salt.dumps({"t": ticket.id, "c": shop.t1.id})
    assert error_code(rate(screen, {"token": forged, "nps": 9}), 404) == "survey_expired"
    # too old: FEEDBACK_TABLET_TOKEN_S (300 s)
    later = datetime.now(UTC) + timedelta(seconds=301)
    csrf = state_of(screen)["csrf"]
    with time_machine.travel(later, tick=False):
        response = rate(screen, {"token": token, "nps": 9}, csrf)
        assert error_code(response, 404) == "survey_expired"
    assert responses() == []
    # the same token, still fresh, works
    assert rate(screen, {"token": token, "nps": 9}).status_code == 201


def test_another_counters_or_branchs_tablet_cannot_rate_this_step(app, shop):
    _, screen = tablet(app, shop.jkt, shop.t1)
    _, neighbour = tablet(app, shop.jkt, shop.t2)
    _, manila = tablet(app, shop.mnl, shop.m1)
    shop.served(shop.t1)
    token = state_of(screen)["survey"]["token"]
    assert error_code(rate(manila, {"token": token, "nps": 0}), 403) == "not_this_tablet"
    assert error_code(rate(neighbour, {"token": token, "nps": 0}), 403) == "not_this_tablet"
    # a token naming another counter's ticket, signed with the real key (a leaked secret
    # aside, impossible): the ticket must stand at the tablet's own counter as well
    manila_ticket = shop.served(shop.m1)
    signer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT)
    crossed = signer.dumps({"t": manila_ticket.id, "c": shop.t1.id})
    assert error_code(rate(screen, {"token": crossed, "nps": 0}), 403) == "not_this_tablet"
    assert responses() == []


def test_a_revoked_tablet_cannot_rate(app, shop):
    device, screen = tablet(app, shop.jkt, shop.t1)
    shop.served(shop.t1)
    state = state_of(screen)
    device.revoked_at = datetime.now(UTC)
    db.session.commit()
    response = screen.post(
        RATE,
        json={"token": state["survey"]["token"], "nps": 9},
        headers={"X-CSRFToken": state["csrf"]},
    )
    assert error_code(response, 403) == "device_not_paired"
    assert db.session.scalar(select(func.count()).select_from(FeedbackResponse)) == 0


# --- live: Socket.IO -----------------------------------------------------------------------


@pytest.fixture
def sockets(app):
    """Flask-SocketIO test clients on the test application's server, closed afterwards."""
    server = socketio.server = pusher(app).server
    saved = (server.async_handlers, server.eio.async_handlers)
    opened = []

    def connect(cookies):
        db.session.commit()
        fc = app.test_client()
        for name, value in cookies.items():
            fc.set_cookie(name, value)
        with app.app_context():
            client = socketio.test_client(app, namespace=NAMESPACE, flask_test_client=fc)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        if client.is_connected(NAMESPACE):
            with app.app_context():
                client.disconnect(NAMESPACE)
    pusher(app).drain()
    for name in ("_send_packet", "_send_eio_packet"):
        server.__dict__.pop(name, None)
    server.async_handlers, server.eio.async_handlers = saved


def received(client, name):
    return [e["args"][0] for e in client.get_received(NAMESPACE) if e["name"] == name]


def test_the_survey_is_pushed_to_the_counters_tablets_after_the_finish(app, shop, sockets):
    def paired(counter, branch=shop.jkt):
        now = datetime.now(UTC)
        device, token = register_device(DeviceKind.FEEDBACK, now=now)
        device.branch, device.counter, device.paired_at = branch, counter, now
        device.pairing_code = None
        db.session.commit()
        return token

    t1_token = paired(shop.t1)
    mine = sockets({"qa_device_feedback": t1_token})
    other = sockets({"qa_device_feedback": paired(shop.t2)})
    assert mine.is_connected(NAMESPACE) and other.is_connected(NAMESPACE)
    [snapshot] = received(mine, "snapshot")
    assert snapshot["audience"] == "feedback" and snapshot["every_seq"] is False
    assert snapshot["counter"] == {"id": shop.t1.id, "name": "Teller 1"}
    assert snapshot["survey"] is None
    received(other, "snapshot")

    ticket = shop.served(shop.t1)
    pusher(app).drain()
    changes = received(mine, "change")
    assert [c["kind"] for c in changes] == ["finish"]  # nothing else of the floor
    survey = changes[0]["survey"]
    assert survey["number"] == ticket.number and survey["steps"] == ["nps", "csat", "reasons"]
    assert changes[0]["seq"] > snapshot["seq"]
    assert received(other, "change") == []  # the other counter's tablet hears nothing

    # the pushed token rates, through the page, with the tablet's cookie
    screen = new_client(app)
    screen.set_cookie(cookie_name(DeviceKind.FEEDBACK), t1_token)
    assert rate(screen, {"token": survey["token"], "nps": 9, "csat": 4}).status_code == 201
    # a tablet waiting to be paired, or an unknown token, hears nothing
    _, pending = register_device(DeviceKind.FEEDBACK, now=datetime.now(UTC))
    db.session.commit()
    for token in (pending, "qd_not-a-token"):
        assert not sockets({"qa_device_feedback": token}).is_connected(NAMESPACE)
