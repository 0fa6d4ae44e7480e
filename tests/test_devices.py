"""Kiosks and lobby displays: registering, the pairing screen, pairing by code on the admin
page, revoking, tokens handed out ahead of time, the status poll, the demo devices.

Every request goes through the isolating client with CSRF on; forms post the token they
read from the page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask import g
from sqlalchemy import func, select

from queue_app.accounts.models import Role
from queue_app.core.types import utcnow
from queue_app.devices import services as devices
from queue_app.devices.models import Device, DeviceKind
from queue_app.devices.web import cookie_name, device_required
from queue_app.extensions import db
from queue_app.i18n import ensure_compiled

from .apihelp import IsolatedClient, fast_passwords

PASSWORD = "rahasia-123"
KIOSK_PAGE = "/devices/kiosk/"
DISPLAY_PAGE = "/devices/display/"


@pytest.fixture(scope="module", autouse=True)
def compiled(app):
    ensure_compiled(app)


@pytest.fixture
def people(make, monkeypatch):
    fast_passwords(monkeypatch)
    jkt = make.branch("JKT01")
    mnl = make.branch("MNL01", timezone="Asia/Manila", country="PH", locale="en")
    result = {
        "jkt": jkt,
        "mnl": mnl,
        "admin": make.user("admin", role=Role.ADMIN, password=PASSWORD),
        "manager": make.user("dewi", role=Role.BRANCH_MANAGER, branches=[jkt], password=PASSWORD),
        "other_manager": make.user(
            "maria", role=Role.BRANCH_MANAGER, branches=[mnl], password=PASSWORD
        ),
        "staff": make.user("budi", branches=[jkt], password=PASSWORD),
    }
    db.session.commit()
    return result


def new_client(app) -> IsolatedClient:
    return IsolatedClient(app, app.response_class, use_cookies=True)


def csrf_from(client, path) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
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
    assert response.status_code == 302, response.status_code
    return client


def text_of(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


def shown_code(response) -> str:
    match = re.search(r'data-testid="pairing-code"[^>]*>([^<]+)<', response.get_data(as_text=True))
    assert match, "no pairing code on the page"
    return match.group(1).strip()


def pair(admin, code, branch, name="Kiosk Lobi", csrf=True):
    data = {"code": code, "branch": str(branch.id) if branch else "", "name": name}
    if csrf:
        data["csrf_token"] = csrf_from(admin, "/admin/devices")
    return admin.post("/admin/devices/pair", data=data)


def revoke(admin, device_id):
    return admin.post(
        f"/admin/devices/{device_id}/revoke",
        data={"csrf_token": csrf_from(admin, "/admin/devices")},
    )


def the_device(**where) -> Device:
    db.session.expire_all()
    return db.session.scalar(select(Device).filter_by(**where))


# --- the whole flow --------------------------------------------------------------------


def test_pair_use_and_revoke_a_kiosk(app, people):
    kiosk = new_client(app)
    first = kiosk.get(KIOSK_PAGE)
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(cookie_name(DeviceKind.KIOSK) + "=qd_")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    code = shown_code(first)
    assert re.fullmatch(r"[2-9A-Z]{3} [2-9A-Z]{3}", code)
    page = text_of(first)
    # nobody chose a language on a new device: the instructions come in both
    assert "Pasangkan perangkat ini" in page and "Pair this device" in page
    assert "Kios tiket" in page
    # the same browser keeps its device and its code
    assert shown_code(kiosk.get(KIOSK_PAGE)) == code
    assert db.session.scalar(select(func.count()).select_from(Device)) == 1

    status = kiosk.get("/devices/status?kind=kiosk").get_json()
    assert status["state"] == "pending" and status["code"] == code

    admin = signed_in(app, "admin")
    listing = text_of(admin.get("/admin/devices"))
    assert "Menunggu pemasangan" in listing
    response = pair(admin, code.lower().replace(" ", "-"), people["jkt"], name="  Kiosk   Lobi ")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/devices"
    after = text_of(admin.get("/admin/devices"))
    assert "Kios tiket “Kiosk Lobi” sudah dipasangkan dengan Cabang JKT01" in after
    device = the_device(name="Kiosk Lobi")
    assert device.is_paired and device.branch_id == people["jkt"].id
    assert device.paired_by_id == people["admin"].id and device.pairing_code is None

    status = kiosk.get("/devices/status?kind=kiosk").get_json()
    assert status == {"kind": "kiosk", "state": "paired", "branch": "JKT01", "name": "Kiosk Lobi"}
    page = kiosk.get(KIOSK_PAGE)
    assert page.status_code == 200 and 'data-testid="device-paired"' in page.get_data(as_text=True)
    assert "Kiosk Lobi" in text_of(page)
    if "kiosk.index" in app.view_functions:
        surface = kiosk.get("/kiosk/")
        assert surface.status_code in (200, 302)
        assert 'data-testid="pairing-code"' not in surface.get_data(as_text=True)

    response = revoke(admin, device.id)
    assert response.status_code == 302
    assert "sudah dicabut" in text_of(admin.get("/admin/devices"))
    assert the_device(id=device.id).revoked_at is not None
    assert kiosk.get("/devices/status?kind=kiosk").get_json()["state"] == "unregistered"
    again = kiosk.get(KIOSK_PAGE)
    assert again.status_code == 200
    assert shown_code(again) != code
    assert again.headers["Set-Cookie"].startswith(cookie_name(DeviceKind.KIOSK) + "=qd_")
    if "kiosk.index" in app.view_functions:
        assert 'data-testid="pairing-code"' in kiosk.get("/kiosk/").get_data(as_text=True)


def test_a_manager_pairs_for_their_branch_and_not_for_another(app, people):
    kiosk = new_client(app)
    code = shown_code(kiosk.get(KIOSK_PAGE))
    other = signed_in(app, "maria")
    response = pair(other, code, people["jkt"])
    assert response.status_code == 403
    assert "Anda tidak boleh mengelola perangkat cabang ini." in text_of(response)
    # the form only offers the manager's own branches
    assert "Cabang JKT01" not in text_of(other.get("/admin/devices"))

    manager = signed_in(app, "dewi")
    assert pair(manager, code, people["jkt"], name="Kios 2").status_code == 302
    device = the_device(name="Kios 2")
    assert device.is_paired
    # maria neither sees nor revokes it
    assert "Kios 2" not in text_of(other.get("/admin/devices"))
    response = revoke(other, device.id)
    assert response.status_code == 403
    assert the_device(id=device.id).revoked_at is None
    assert "Kios 2" in text_of(manager.get("/admin/devices"))


def test_staff_and_anonymous_visitors_cannot_open_the_admin_page(app, people):
    anonymous = new_client(app)
    response = anonymous.get("/admin/devices")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    response = anonymous.post("/admin/devices/pair", data={"code": "ABCDEF"})
    assert response.status_code in (302, 400)  # no session: CSRF refuses before anything else
    staff = signed_in(app, "budi")
    assert staff.get("/admin/devices").status_code == 403


def test_an_expired_code_is_refused_and_listed_as_expired(app, people):
    past = utcnow() - timedelta(minutes=31)
    device, _ = devices.register_device(DeviceKind.DISPLAY, now=past)
    code = device.pairing_code
    db.session.commit()
    admin = signed_in(app, "admin")
    response = pair(admin, code, people["jkt"], name="Layar")
    assert response.status_code == 422
    assert "Kode pemasangan ini sudah kedaluwarsa" in text_of(response)
    assert not the_device(id=device.id).is_paired
    row = re.search(
        rf'<tr data-device="{device.id}" data-state="(\w+)"',
        admin.get("/admin/devices").get_data(as_text=True),
    )
    assert row and row.group(1) == "expired"


def test_an_expired_screen_shows_a_new_code(app, people):
    kiosk = new_client(app)
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False):
        code = shown_code(kiosk.get(KIOSK_PAGE))
    with time_machine.travel(start + devices.PAIRING_TTL + timedelta(seconds=1), tick=False):
        assert kiosk.get("/devices/status?kind=kiosk").get_json()["state"] == "expired"
        renewed = shown_code(kiosk.get(KIOSK_PAGE))
    assert renewed != code
    assert db.session.scalar(select(func.count()).select_from(Device)) == 1


@pytest.mark.parametrize(
    "form, status, message",
    [
        ({"code": "", "name": "Kios"}, 422, "Kode pemasangan terdiri atas 6"),
        ({"code": "ABC", "name": "Kios"}, 422, "Kode pemasangan terdiri atas 6"),
        ({"code": "ABC10O", "name": "Kios"}, 422, "Kode pemasangan terdiri atas 6"),
        ({"code": "ZZZ ZZZ", "name": "Kios"}, 404, "Tidak ada perangkat"),
        ({"code": "<CODE>", "name": ""}, 422, "Beri perangkat nama"),
        ({"code": "<CODE>", "name": "x" * 81}, 422, "Beri perangkat nama"),
        ({"code": "<CODE>", "name": "Kios", "branch": ""}, 422, "Pilih cabang"),
        ({"code": "<CODE>", "name": "Kios", "branch": "abc"}, 422, "Pilih cabang"),
        ({"code": "<CODE>", "name": "Kios", "branch": "999999"}, 422, "Pilih cabang"),
        ({"code": "<CODE>\x00", "name": "Kios"}, 422, "Kode pemasangan terdiri atas 6"),
        ({"code": "x" * 5000, "name": "Kios"}, 422, "Kode pemasangan terdiri atas 6"),
    ],
)
def test_bad_pairing_input_is_a_4xx_with_a_message(app, people, form, status, message):
    kiosk = new_client(app)
    code = shown_code(kiosk.get(KIOSK_PAGE))
    admin = signed_in(app, "admin")
    data = {"branch": str(people["jkt"].id), **form}
    data["code"] = data["code"].replace("<CODE>", code)
    data["csrf_token"] = csrf_from(admin, "/admin/devices")
    response = admin.post("/admin/devices/pair", data=data)
    assert response.status_code == status, text_of(response)[:300]
    assert message in text_of(response)
    assert (
        db.session.scalar(
            select(func.count()).select_from(Device).where(Device.paired_at.isnot(None))
        )
        == 0
    )


def test_pairing_needs_the_csrf_token(app, people):
    code = shown_code(new_client(app).get(KIOSK_PAGE))
    admin = signed_in(app, "admin")
    response = pair(admin, code, people["jkt"], csrf=False)
    assert response.status_code == 400
    assert "Formulir ini sudah terlalu lama" in text_of(response)
    assert not the_device(kind=DeviceKind.KIOSK).is_paired


def test_revoking_an_unknown_device_or_without_csrf(app, people):
    admin = signed_in(app, "admin")
    response = revoke(admin, 987654)
    assert response.status_code == 404 and "Perangkat ini tidak ada." in text_of(response)
    device, _ = devices.register_device(DeviceKind.KIOSK, now=utcnow())
    db.session.commit()
    assert admin.post(f"/admin/devices/{device.id}/revoke").status_code == 400
    assert the_device(id=device.id).revoked_at is None
    assert admin.get(f"/admin/devices/{device.id}/revoke").status_code == 405


def test_a_token_handed_out_ahead_of_time_is_installed_by_the_url(app, people):
    device, token = devices.register_device(DeviceKind.DISPLAY, now=utcnow())
    devices.pair_device(
        device.pairing_code, people["jkt"], people["admin"], name="Layar Lobi", now=utcnow()
    )
    db.session.commit()
    screen = new_client(app)
    response = screen.get(f"{DISPLAY_PAGE}?device_token={token}&lang=id&x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == f"{DISPLAY_PAGE}?lang=id&x=1"
    assert response.headers["Set-Cookie"].startswith(f"{cookie_name(DeviceKind.DISPLAY)}={token}")
    page = screen.get(DISPLAY_PAGE)
    assert "Layar Lobi" in text_of(page)
    assert 'data-testid="device-paired"' in page.get_data(as_text=True)


def test_a_token_of_the_wrong_kind_or_unknown_is_not_installed(app, people):
    device, token = devices.register_device(DeviceKind.DISPLAY, now=utcnow())
    devices.pair_device(
        device.pairing_code, people["jkt"], people["admin"], name="Layar", now=utcnow()
    )
    db.session.commit()
    kiosk = new_client(app)
    for handed in (token, "qd_unknown", "not-a-token", "x" * 500):
        response = kiosk.get(KIOSK_PAGE, query_string={"device_token": handed})
        assert response.status_code == 302
        assert "Set-Cookie" not in response.headers
    # a display's token in the kiosk's cookie counts for nothing: a new kiosk registers
    kiosk.set_cookie(cookie_name(DeviceKind.KIOSK), token)
    page = kiosk.get(KIOSK_PAGE)
    assert 'data-testid="pairing-code"' in page.get_data(as_text=True)
    assert the_device(id=device.id).is_paired


def test_the_status_endpoint(app, people):
    client = new_client(app)
    assert client.get("/devices/status?kind=kiosk").get_json() == {
        "kind": "kiosk",
        "state": "unregistered",
    }
    for query in ("", "?kind=", "?kind=printer", "?kind=%00"):
        response = client.get("/devices/status" + query)
        assert response.status_code == 400
        assert response.get_json()["error"]["message"]
    assert db.session.scalar(select(func.count()).select_from(Device)) == 0


def test_last_seen_is_written_at_most_once_a_minute(app, people):
    kiosk = new_client(app)
    start = datetime.now(UTC).replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        kiosk.get(KIOSK_PAGE)
    assert the_device(kind=DeviceKind.KIOSK).last_seen_at == start
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        kiosk.get("/devices/status?kind=kiosk")
    assert the_device(kind=DeviceKind.KIOSK).last_seen_at == start
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        kiosk.get("/devices/status?kind=kiosk")
    assert the_device(kind=DeviceKind.KIOSK).last_seen_at == start + timedelta(seconds=61)


def test_json_device_endpoints_answer_403_and_register_nothing(app, people):
    @device_required(DeviceKind.KIOSK, json=True)
    def endpoint():
        return {"device": g.device.name}

    with app.test_request_context("/kiosk/x"):
        response = endpoint()
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "device_not_paired"
    assert db.session.scalar(select(func.count()).select_from(Device)) == 0
    device, token = devices.register_device(DeviceKind.KIOSK, now=utcnow())
    devices.pair_device(device.pairing_code, people["jkt"], people["admin"], name="K", now=utcnow())
    db.session.commit()
    headers = {"Cookie": f"{cookie_name(DeviceKind.KIOSK)}={token}"}
    with app.test_request_context("/kiosk/x", headers=headers):
        assert endpoint() == {"device": "K"}
        assert g.branch_locale == "id"


def test_the_admin_list_shows_states_and_last_seen(app, people):
    now = utcnow()
    paired, _ = devices.register_device(DeviceKind.KIOSK, now=now)
    devices.pair_device(paired.pairing_code, people["jkt"], people["admin"], name="A", now=now)
    paired.last_seen_at = now
    pending, _ = devices.register_device(DeviceKind.DISPLAY, now=now)
    gone, _ = devices.register_device(DeviceKind.KIOSK, now=now)
    devices.pair_device(gone.pairing_code, people["mnl"], people["admin"], name="B", now=now)
    devices.revoke_device(gone, people["admin"], now=now)
    db.session.commit()
    page = signed_in(app, "admin").get("/admin/devices?lang=en")
    html = page.get_data(as_text=True)
    states = dict(re.findall(r'<tr data-device="(\d+)" data-state="(\w+)"', html))
    assert states == {str(paired.id): "paired", str(pending.id): "pending", str(gone.id): "revoked"}
    assert "WIB" in text_of(page)  # last seen in the branch's own time zone
    # a manager sees the devices of their branch only, and no unpaired ones
    manager = signed_in(app, "dewi").get("/admin/devices").get_data(as_text=True)
    assert re.findall(r'<tr data-device="(\d+)"', manager) == [str(paired.id)]


# --- the demo --------------------------------------------------------------------------


def test_the_demo_seed_pairs_a_kiosk_and_a_display_once(app, session, monkeypatch):
    from queue_app.demo import data
    from queue_app.demo.seed import seed

    fast_passwords(monkeypatch)
    seed(utcnow())
    session.commit()
    seed(utcnow())
    session.commit()
    demo = session.scalars(select(Device).order_by(Device.kind)).all()
    assert [(d.kind.value, d.name, d.branch.code) for d in demo] == [
        ("display", "Layar Lobi", "JKT01"),
        ("kiosk", "Kiosk Lobi", "JKT01"),
    ]
    assert all(d.is_paired for d in demo)
    for kind, name, _branch, token in data.DEMO_DEVICES:
        assert token.startswith(devices.TOKEN_PREFIX)
        client = new_client(app)
        page = f"/devices/{kind}/"
        assert client.get(page, query_string={"device_token": token}).status_code == 302
        assert name in text_of(client.get(page))
