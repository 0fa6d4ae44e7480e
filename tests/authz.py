"""The world of the authorization matrix (tests/test_authorization_matrix.py): one branch with
everything an endpoint can name (counters, tickets, devices, an alert and its rule, a case, an
appointment and a held one), another branch, and one set of credentials per audience.

Every audience is a browser (or an API client) with its own cookies: a session cookie signed in
through the sign-in form (people), a device cookie (paired kiosk, display, feedback tablet), and
for people a bearer token of their own on `/api/` requests. The customer holds the secrets of a
visit: its ticket token, the booking code and links of an appointment, the rating link and the
recovery link of a case; everybody else asks with well-formed secrets of nobody.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_socketio.test_client import SocketIOTestClient
from socketio import packet

from queue_app.accounts.models import Role
from queue_app.alerts import services as alerts
from queue_app.alerts.models import AlertRule, Metric
from queue_app.booking import links as booking_links
from queue_app.booking import services as booking
from queue_app.branches.models import Counter, CounterService
from queue_app.cases import links as case_links
from queue_app.cases.models import Case
from queue_app.core.events import in_transaction
from queue_app.core.types import utcnow
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import register_device
from queue_app.devices.web import cookie_name
from queue_app.extensions import db
from queue_app.feedback import links as feedback_links
from queue_app.feedback.models import FeedbackChannel, FeedbackResponse
from queue_app.tickets import services as engine
from queue_app.webhooks import services as webhooks

from . import factories
from .apihelp import isolated_client

PASSWORD = "rahasia-123"

# --- audiences --------------------------------------------------------------------------

ANONYMOUS = "anonymous"
CUSTOMER = "customer"  # holds the secrets of a visit (ticket token, booking, rating links)
KIOSK = "kiosk"  # a kiosk paired with this branch
DISPLAY = "display"  # a lobby display paired with this branch
TABLET = "tablet"  # a feedback tablet paired with a counter of this branch
STAFF = "staff"  # staff of this branch
STAFF_OTHER = "staff_other"  # staff of another branch
MANAGER = "manager"  # the branch manager of this branch
MANAGER_OTHER = "manager_other"  # the branch manager of another branch
CX_AGENT = "cx_agent"  # the CX team, belonging to another branch (they read the network)
EXECUTIVE = "executive"
ADMIN = "admin"

NOBODY = (ANONYMOUS, CUSTOMER)
DEVICES = (KIOSK, DISPLAY, TABLET)
PEOPLE = (STAFF, STAFF_OTHER, MANAGER, MANAGER_OTHER, CX_AGENT, EXECUTIVE, ADMIN)
NOT_SIGNED_IN = NOBODY + DEVICES
AUDIENCES = NOT_SIGNED_IN + PEOPLE

# secrets that only the customer holds; the others ask with these look-alikes
LOOKALIKE = {
    "visit": "v" * 32,
    "signed": "eyJ0IjoxfQ.aGVsbG8.bm90LXNpZ25lZA",
    "booking_code": "ZZZ-ZZZ",
}


@dataclass
class Credentials:
    cookies: dict[str, str] = field(default_factory=dict)
    bearer: str | None = None
    csrf: str | None = None
    user: object = None


@dataclass
class World:
    branch: object
    other: object
    counter: object
    ticket: object  # waiting, for the staff actions
    kiosk_ticket: object
    visit_token: str  # the customer's waiting ticket
    rated_token: str  # the customer's finished, served visit (rating pages)
    rating_link: str
    recovery_token: str
    appointment: object
    manage_token: str
    hold_token: str
    alert: object
    rule: object
    case: object
    device: object  # a device of this branch (its id in URLs)
    webhook: object
    delivery: object
    users: dict
    credentials: dict[str, Credentials]
    tokens: dict[str, str]  # the device tokens by audience


def _next_weekday_at(tz: str, hour: int, minute: int, *, days_ahead: int = 3) -> datetime:
    zone = ZoneInfo(tz)
    day = utcnow().astimezone(zone).date() + timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def paired_device(kind: DeviceKind, branch, *, now, counter=None, name="Device") -> tuple:
    device, token = register_device(kind, now=now)
    device.branch = branch
    device.counter_id = counter.id if counter is not None else None
    device.paired_at = now
    device.pairing_code = None
    device.pairing_expires_at = None
    device.name = name
    db.session.flush()
    return device, token


def fresh_rule(branch):
    """An alert rule of its own, for a request that deletes one (`drop_rule` afterwards)."""
    rule = alerts.create_rule(
        db.session, branch, metric=Metric.LONGEST_WAIT_S, raise_at=3600, clear_at=600, now=utcnow()
    )
    db.session.commit()
    return rule


_spare = {"n": 0}


def fresh_counter(branch):
    """A closed counter of its own, for a request that opens, pauses, closes or calls at one."""
    teller = factories.service(branch, "teller")
    _spare["n"] += 1
    counter = Counter(branch_id=branch.id, name=f"Spare {_spare['n']}", position=99)
    counter.service_links = [CounterService(service_id=teller.id, position=0)]
    db.session.add(counter)
    db.session.commit()
    return counter


def drop_rule(rule_id: int) -> None:
    rule = db.session.get(AlertRule, rule_id)
    if rule is not None:
        alerts.delete_rule(rule, now=utcnow())
    db.session.commit()


def _unhappy_answer(make, branch, *, now, staff) -> FeedbackResponse:
    """A detractor's answer to a new visit step, announced as `record_response` does."""
    ticket = make.ticket(branch, "teller", now=now - timedelta(minutes=30))
    response = FeedbackResponse(
        ticket_id=ticket.id,
        visit_id=ticket.visit_id,
        branch_id=branch.id,
        service_id=ticket.service_id,
        counter_id=branch.counters[0].id,
        staff_id=staff.id,
        channel=FeedbackChannel.TABLET,
        nps=0,
        csat=1,
        reasons=[],
        locale="id",
        submitted_at=now,
        business_day=branch.business_day(now),
        wait_s=1500,
        quoted_wait_s=600,
        service_s=300,
        transfers=0,
    )
    db.session.add(response)
    db.session.flush()
    in_transaction("feedback.received", response=response, session=db.session, now=now)
    return response


def build_world(app) -> World:
    now = utcnow()
    make = factories
    branch = make.branch(
        "JKT01",
        counters=[("Teller 1", ["teller"]), ("Teller 2", ["teller"]), ("CS 1", ["cs", "loans"])],
    )
    other = make.branch("MNL01", timezone="Asia/Manila", country="PH", locale="en")
    users = {
        STAFF: make.user("budi", branches=[branch], password=PASSWORD),
        STAFF_OTHER: make.user("jose", branches=[other], password=PASSWORD),
        MANAGER: make.user("dewi", role=Role.BRANCH_MANAGER, branches=[branch], password=PASSWORD),
        MANAGER_OTHER: make.user(
            "maria", role=Role.BRANCH_MANAGER, branches=[other], password=PASSWORD
        ),
        # the CX team reads the network; each agent still belongs to a branch (not this one)
        CX_AGENT: make.user("lina", role=Role.CX_AGENT, branches=[other], password=PASSWORD),
        EXECUTIVE: make.user("rudi", role=Role.EXECUTIVE, password=PASSWORD),
        ADMIN: make.user("admin", role=Role.ADMIN, password=PASSWORD),
    }
    counter = make.counter(branch, "Teller 1")
    served_at = make.counter(branch, "Teller 2")

    # a visit served and finished at Teller 2 (rating pages, the tablet's counter)
    rated = make.ticket(branch, "teller", now=now - timedelta(minutes=20))
    engine.open_counter(served_at, users[STAFF], now=now - timedelta(minutes=15))
    called = engine.call_next(served_at, users[STAFF], now=now - timedelta(minutes=15))
    assert called.id == rated.id
    engine.start(called, users[STAFF], now=now - timedelta(minutes=14))
    engine.finish(called, users[STAFF], now=now - timedelta(minutes=10))
    # the customer's waiting ticket, and one the staff actions are tried on
    waiting = make.ticket(branch, "teller", now=now - timedelta(minutes=5))
    ticket = make.ticket(branch, "cs", now=now - timedelta(minutes=4))
    kiosk_ticket = make.ticket(branch, "loans", now=now - timedelta(minutes=3))

    # an open alert and its rule
    rule = alerts.create_rule(
        db.session, branch, metric=Metric.QUEUE_LENGTH, raise_at=1, clear_at=0, now=now
    )
    raised = alerts.evaluate_branch(db.session, branch, now)
    assert raised, "the queue-length rule raises an alert"
    # a case from an unhappy answer
    response = _unhappy_answer(make, branch, now=now, staff=users[STAFF])
    case = db.session.scalar(db.select(Case).where(Case.response_id == response.id))
    assert case is not None, "an NPS of 0 opens a case"

    # an appointment booked, and a place held while the form is filled in
    teller = make.service(branch, "teller")
    appointment = booking.book(
        branch,
        teller,
        _next_weekday_at(branch.timezone, 9, 0),
        now=now,
        customer=None,
        name="Rina",
    )
    held = booking.hold(branch, teller, _next_weekday_at(branch.timezone, 10, 0), now=now)

    # a webhook of the network and one delivery of it (the admin's webhook pages)
    webhook, _ = webhooks.create_endpoint(
        url="https://hooks.bank.example/queue", events=["alert.raised"], now=now, name="DWH"
    )
    [delivery] = webhooks.record(
        db.session,
        "alert.raised",
        branch_id=branch.id,
        data={"matrix": True},
        now=now,
        endpoints=[webhook],
    )

    # the devices
    tokens = {}
    _, tokens[KIOSK] = paired_device(DeviceKind.KIOSK, branch, now=now, name="Kiosk")
    display, tokens[DISPLAY] = paired_device(DeviceKind.DISPLAY, branch, now=now, name="TV")
    _, tokens[TABLET] = paired_device(
        DeviceKind.FEEDBACK, branch, now=now, counter=served_at, name="Tablet"
    )
    db.session.commit()

    world = World(
        branch=branch,
        other=other,
        counter=counter,
        ticket=ticket,
        kiosk_ticket=kiosk_ticket,
        visit_token=waiting.visit.token,
        rated_token=rated.visit.token,
        rating_link=feedback_links.link_token(rated, now=now),
        recovery_token=case_links.recovery_token(case, 1),
        appointment=appointment,
        manage_token=booking_links.manage_token(appointment),
        hold_token=booking_links.hold_token(held),
        alert=raised[0],
        rule=rule,
        case=case,
        device=display,
        webhook=webhook,
        delivery=delivery,
        users=users,
        credentials={},
        tokens=tokens,
    )
    for audience in AUDIENCES:
        world.credentials[audience] = _credentials(app, world, audience)
    db.session.commit()
    return world


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = CSRF_FIELD.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def _credentials(app, world: World, audience: str) -> Credentials:
    """Sign in (people) or install the device cookie, the way a browser does, and keep the
    cookies the browser ends up with and the CSRF token of its session."""
    client = isolated_client(app)
    creds = Credentials()
    if audience in DEVICES:
        kind = {KIOSK: DeviceKind.KIOSK, DISPLAY: DeviceKind.DISPLAY, TABLET: DeviceKind.FEEDBACK}
        client.set_cookie(cookie_name(kind[audience]), world.tokens[audience])
    token = _csrf(client, "/auth/login")
    if audience in PEOPLE:
        user = world.users[audience]
        response = client.post(
            "/auth/login",
            data={"username": user.username, "password": PASSWORD, "csrf_token": token},
        )
        assert response.status_code in (302, 303), (audience, response.status_code)
        token = _csrf(client, "/")  # the session is new after signing in
        creds.user = user
        creds.bearer = factories.token(user)
    creds.csrf = token
    creds.cookies = {c.key: c.value for c in client._cookies.values()}
    return creds


def client_of(app, creds: Credentials):
    """A new browser with the audience's cookies (a sign-out or a cookie set by one request
    does not carry over to the next)."""
    client = isolated_client(app)
    for name, value in creds.cookies.items():
        client.set_cookie(name, value)
    return client


# --- Socket.IO ---------------------------------------------------------------------------


class ReasonClient(SocketIOTestClient):
    """Flask-SocketIO's test client, keeping the reason of a refused connection (the message
    of the `connect_error` a browser sees)."""

    refusal: str | None = None

    def connect(self, namespace=None, query_string=None, headers=None, auth=None):
        server = self.socketio.server
        send = server._send_packet  # the test client's own, installed by its constructor

        def spy(eio_sid, pkt):
            if eio_sid == self.eio_sid and pkt.packet_type == packet.CONNECT_ERROR:
                data = pkt.data
                self.refusal = data.get("message") if isinstance(data, dict) else data
            return send(eio_sid, pkt)

        server._send_packet = spy
        try:
            return super().connect(namespace, query_string, headers, auth)
        finally:
            server._send_packet = send
