"""Tokens are unguessable (at least 128 bits from `secrets`) and ids are no way in.

Bearer secrets, made from `secrets.token_urlsafe` (each checked by watching the call: the
token handed out contains what `secrets` returned, from at least 16 random bytes):

| token | made by | bits |
| --- | --- | --- |
| a visit's token (`/t/<token>`, the API's `/tickets/<token>/...`) | tickets/services.py | 192 |
| an API token (only its SHA-256 stored) | accounts/services.py | 256 |
| a device token (cookie `qa_device_*`, only its SHA-256 stored) | devices/services.py | 256 |

Signed links, `itsdangerous` HMAC (SHA-1, 160-bit signature) with `SECRET_KEY` and a salt of
their own: a booking's manage link and its hold, the rating link `/r/<signed>`, the feedback
tablet's rating token, the case recovery link `/r/case/<signed>`, the branch's arrival key
(`/b/<code>/here?k=`). Guessing one is guessing the signature (or the key: 384 random bits
in the embedded profile, `SECRET_KEY` in production); an altered or re-salted one is refused.

Short codes people type, not bearer secrets of the same kind, each limited otherwise:
one-time codes of the remote queue (6 digits, `secrets.randbelow`; 10 minutes, 5 tries, 3 per
contact per window, per-address limit), device pairing codes (6 of 31 characters,
`secrets.choice`; 30 minutes, and only a signed-in admin or branch manager can use one), and
booking codes (6 of 32 characters, `secrets.choice`, about 30 bits: read aloud and typed at
a kiosk; `BOOKING_CODE_RATE_LIMIT` per address on every lookup by code).

Not enumerable: a sequential id (of the visit, ticket, appointment, case, device or API
token) where a token is expected is refused exactly like a random string.
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import time_machine
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import select

from queue_app.accounts import services as accounts
from queue_app.accounts.models import ApiToken, Role
from queue_app.booking import links as booking_links
from queue_app.booking import services as booking
from queue_app.cases import links as case_links
from queue_app.devices.models import Device, DeviceKind
from queue_app.devices.services import register_device
from queue_app.extensions import db
from queue_app.feedback import links as feedback_links
from queue_app.feedback import tablet_state
from queue_app.tickets import remote

from .apihelp import API, fast_passwords

NOW = datetime(2026, 3, 17, 3, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Jakarta
MIN_BYTES = 16  # 128 bits


@pytest.fixture
def spy(monkeypatch):
    """Every `secrets.token_urlsafe` call: (bytes asked for, token returned)."""
    calls = []
    real = secrets.token_urlsafe

    def token_urlsafe(nbytes=None):
        value = real(nbytes)
        calls.append((nbytes, value))
        return value

    monkeypatch.setattr(secrets, "token_urlsafe", token_urlsafe)
    return calls


def _from_secrets(token: str, calls) -> int:
    """The bytes of the `secrets` call the token was made from (it must be one of them)."""
    made = [n for n, value in calls if value and value in token]
    assert made, f"{token!r} was not made by secrets.token_urlsafe"
    return made[-1]


@pytest.fixture
def branch(make):
    b = make.branch("JKT01")
    db.session.commit()
    return b


def test_visit_tokens(make, branch, spy, client):
    with time_machine.travel(NOW, tick=False):
        ticket = make.ticket(branch, "teller", now=NOW)
        db.session.commit()
        assert _from_secrets(ticket.token, spy) >= MIN_BYTES
        # the API's walk-in path (one statement on PostgreSQL, the ORM on SQLite)
        spy.clear()
        issued = client.post(f"{API}/branches/JKT01/tickets", json={"service": "teller"})
        assert issued.status_code == 201
        token = issued.get_json()["token"]
        assert _from_secrets(token, spy) >= MIN_BYTES
    tokens = {make.ticket(branch, "teller", now=NOW).token for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(base64.urlsafe_b64decode(t + "==")) >= MIN_BYTES for t in tokens)


def test_api_tokens(make, branch, spy, monkeypatch):
    fast_passwords(monkeypatch)
    user = make.user("budi", branches=[branch])
    token = accounts.create_api_token(user, name="t", now=NOW)
    db.session.commit()
    assert _from_secrets(token, spy) >= MIN_BYTES
    # only the hash is kept
    stored = db.session.scalars(select(ApiToken)).all()
    assert stored and all(token not in (row.token_hash or "") for row in stored)


def test_device_tokens(app_ctx, spy):
    device, token = register_device(DeviceKind.KIOSK, now=NOW)
    db.session.commit()
    assert _from_secrets(token, spy) >= MIN_BYTES
    assert token not in db.session.get(Device, device.id).token_hash


def _signature_bytes(token: str) -> int:
    signature = token.rsplit(".", 1)[1]
    return len(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))


def _signed_tokens(branch):
    """name -> (token, its serializer class, its salt)."""
    case = SimpleNamespace(id=1)
    ticket = SimpleNamespace(id=1, counter_id=1)
    appointment = SimpleNamespace(id=1, code="ABC234")
    timed = URLSafeTimedSerializer
    return {
        "booking manage": (
            booking_links.manage_token(appointment),
            timed,
            booking_links.MANAGE_SALT,
        ),
        "booking hold": (booking_links.hold_token(appointment), timed, booking_links.HOLD_SALT),
        "rating link": (feedback_links.link_token(ticket), timed, feedback_links.SALT),
        "tablet rating": (tablet_state.rating_token(ticket), timed, tablet_state.SALT),
        "case recovery": (case_links.recovery_token(case, 1), timed, case_links.SALT),
        "arrival key": (remote.arrival_key(branch), URLSafeSerializer, remote.ARRIVAL_SALT),
    }


def test_signed_links_carry_a_160_bit_signature_under_the_secret_key(app, branch):
    assert len(app.config["SECRET_KEY"]) >= 32
    for name, (token, serializer, salt) in _signed_tokens(branch).items():
        assert _signature_bytes(token) >= 20, name  # HMAC-SHA1
        assert serializer(app.config["SECRET_KEY"], salt=salt).loads(token) is not None, name
        with pytest.raises(BadSignature):  # the key is what makes it: another key, refused
            serializer("another-secret-key-of-the-same-length!!", salt=salt).loads(token)


def test_signed_links_refuse_altered_foreign_and_resalted_tokens(client, make, branch):
    with time_machine.travel(NOW, tick=False):
        bookable = make.branch("JKT09", counters=[("Loket 1", ["teller"]), ("Loket 2", ["teller"])])
        teller = next(s for s in bookable.services if s.code == "teller")
        start = datetime(2026, 3, 18, 2, 0, tzinfo=UTC)  # Wednesday 09:00 in Jakarta
        appointment = booking.book(bookable, teller, start, now=NOW, customer=None, name="Budi")
        db.session.commit()
        manage = booking_links.manage_token(appointment)
        assert client.get(f"/appointments/{manage}").status_code == 200
        altered = manage[:-2] + ("A" if manage[-2] != "A" else "B") + manage[-1]
        foreign = URLSafeTimedSerializer("not-the-key", salt=booking_links.MANAGE_SALT).dumps(
            {"a": appointment.id, "c": appointment.code}
        )
        hold = booking_links.hold_token(appointment)  # another salt: not a manage link
        for bad in (altered, foreign, hold, str(appointment.id), appointment.code):
            assert client.get(f"/appointments/{bad}").status_code == 404, bad
        # the arrival key of one branch is no key to another
        other = make.branch("JKT02")
        db.session.commit()
        assert remote.check_arrival_key(branch, remote.arrival_key(branch))
        assert not remote.check_arrival_key(other, remote.arrival_key(branch))
        assert not remote.check_arrival_key(branch, str(branch.id))


def _unknown_answer(client, method, path_of, *, json=None):
    """(status, body with the path taken out) for an id and for a random token."""
    answers = []
    for token in ("1", secrets.token_urlsafe(24)):
        path = path_of(token)
        response = client.open(path, method=method, json=json)
        body = response.get_data(as_text=True)
        for shown in (path, quote(path, safe=""), quote(path)):
            body = body.replace(shown, "<path>")
        answers.append((response.status_code, body))
    return answers


def test_sequential_ids_are_refused_like_random_strings(client, make, branch, monkeypatch):
    """An id where a token is expected is refused, and answered exactly like a random token
    (same status, same page but for the path): nothing tells that the row exists."""
    fast_passwords(monkeypatch)
    with time_machine.travel(NOW, tick=False):
        ticket = make.ticket(branch, "teller", now=NOW)
        admin = make.user("admin", role=Role.ADMIN)
        accounts.create_api_token(admin, name="t", now=NOW)
        device, _token = register_device(DeviceKind.KIOSK, now=NOW)
        db.session.commit()
        token_row = db.session.scalars(select(ApiToken)).one()
        # "1" below names rows that exist: the first of each table on an emptied database
        assert ticket.id == ticket.visit.id == device.id == token_row.id == 1
        for method, path_of, body in (
            ("GET", lambda t: f"/t/{t}", None),
            ("GET", lambda t: f"/t/{t}/rate", None),
            ("GET", lambda t: f"/r/{t}", None),
            ("GET", lambda t: f"/r/case/{t}", None),
            ("GET", lambda t: f"/appointments/{t}", None),
            ("POST", lambda t: f"{API}/tickets/{t}/feedback", {"nps": 9}),
            ("POST", lambda t: f"{API}/tickets/{t}/leave", None),
            ("POST", lambda t: f"{API}/tickets/{t}/arrival", {"key": "k"}),
        ):
            (id_status, id_body), (random_status, random_body) = _unknown_answer(
                client, method, path_of, json=body
            )
            assert id_status == random_status and id_status in (404, 410), path_of("1")
            assert id_body == random_body, path_of("1")
        # the id of a ticket, a visit or the API token row is no bearer token
        for value in ("1", token_row.token_hash):
            response = client.get(
                f"{API}/branches/JKT01/queue", headers={"Authorization": f"Bearer {value}"}
            )
            assert response.status_code == 401
        # nor is a device's id a device cookie: the pairing screen of a new device
        client.set_cookie("qa_device_kiosk", str(device.id))
        page = client.get("/kiosk/")
        assert page.status_code == 200 and 'data-testid="pairing-code"' in page.get_data(
            as_text=True
        )


def test_the_short_codes_come_from_secrets_too(monkeypatch, app_ctx):
    """Booking and pairing codes (`secrets.choice`) and one-time codes (`secrets.randbelow`)."""
    from queue_app.customers import verification
    from queue_app.devices import services as devices

    chosen = []
    real_choice, real_below = secrets.choice, secrets.randbelow
    monkeypatch.setattr(secrets, "choice", lambda seq: chosen.append("c") or real_choice(seq))
    monkeypatch.setattr(secrets, "randbelow", lambda n: chosen.append("r") or real_below(n))
    code = booking._new_code()
    assert len(code) == 6 and chosen.count("c") == 6
    chosen.clear()
    device, _token = register_device(DeviceKind.KIOSK, now=NOW)
    assert re.fullmatch(rf"[{devices.PAIRING_ALPHABET}]{{6}}", device.pairing_code)
    assert chosen.count("c") >= 6
    chosen.clear()
    one_time = verification.new_code()
    assert one_time.isdigit() and len(one_time) == verification.CODE_DIGITS and chosen == ["r"]
