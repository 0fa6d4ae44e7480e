"""A branch's pre-arrival settings: the service (`branches/settings.py`), the API
(`GET/PATCH /api/v1/branches/<code>/settings`) and the page (`/admin/branches/<code>/settings`).

The bookable share must reach booking: the slot capacity `booking.services` computes follows a
changed share at once, and a slot with no bookable place left refuses the next booking.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from queue_app.accounts.models import Role
from queue_app.booking import services as booking
from queue_app.branches import settings
from queue_app.branches.models import Branch, LateArrival, Service
from queue_app.core.errors import Conflict, NotAllowed
from queue_app.extensions import db
from queue_app.i18n import ensure_compiled

from .apihelp import API, IsolatedClient, assert_error, assert_invalid, ok

PASSWORD = "rahasia-123"
SETTINGS = f"{API}/branches/JKT01/settings"
PAGE = "/admin/branches/JKT01/settings"


@pytest.fixture(scope="module", autouse=True)
def compiled(app):
    ensure_compiled(app)


def fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def svc(branch: Branch, code: str) -> Service:
    return db.session.scalar(
        select(Service).where(Service.branch_id == branch.id, Service.code == code)
    )


def future_open_day(branch: Branch, start: date) -> date:
    """The first weekday from `start` on that is not a holiday or closure of the branch."""
    day = start
    while day.weekday() >= 5 or booking.closed_reason(branch, day) is not None:
        day += timedelta(days=1)
    return day


# --- the service -----------------------------------------------------------------------------


def test_update_changes_what_differs_and_logs_after_the_commit(floor, now, caplog):
    branch = floor.branch
    caplog.set_level(logging.INFO, logger="queue_app.branches.settings")
    done = settings.update_pre_arrival_settings(
        branch,
        actor=floor.manager,
        now=now,
        check_in_early_s=600,
        check_in_late_s=900,  # the default: no change
        late_arrival="refuse",
        remote_intake=False,
        remote_move_back_places=5,
        remote_move_back_limit=0,
        services={"teller": {"bookable_percent": 100}},
    )
    assert {(c.field, c.service, c.old, c.new) for c in done} == {
        ("check_in_early_s", None, 1800, 600),
        ("late_arrival", None, "walk_in", "refuse"),
        ("remote_intake", None, True, False),
        ("remote_move_back_places", None, 3, 5),
        ("remote_move_back_limit", None, 2, 0),
        ("bookable_percent", "teller", 50, 100),
    }
    # nothing is told before the commit
    assert [r for r in caplog.records if "changed by" in r.getMessage()] == []
    db.session.commit()
    logged = [r.getMessage() for r in caplog.records if "changed by" in r.getMessage()]
    assert len(logged) == 6
    teller = "service teller bookable_percent 50 -> 100"
    assert any("JKT01" in m and "dewi" in m and teller in m for m in logged), logged
    b = fresh(Branch, branch.id)
    assert (b.check_in_early_s, b.check_in_late_s, b.late_arrival) == (600, 900, LateArrival.REFUSE)
    assert (b.remote_intake, b.remote_move_back_places, b.remote_move_back_limit) == (False, 5, 0)
    assert svc(b, "teller").bookable_percent == 100
    assert svc(b, "cs").bookable_percent == 50


def test_a_rolled_back_change_is_neither_kept_nor_logged(floor, now, caplog):
    caplog.set_level(logging.INFO, logger="queue_app.branches.settings")
    settings.update_pre_arrival_settings(
        floor.branch, actor=floor.manager, now=now, check_in_early_s=0
    )
    db.session.rollback()
    assert fresh(Branch, floor.branch.id).check_in_early_s == 1800
    assert [r for r in caplog.records if "changed by" in r.getMessage()] == []


@pytest.mark.parametrize(
    ("changes", "services", "bad"),
    [
        ({"check_in_early_s": -1}, None, {"check_in_early_s"}),
        ({"check_in_late_s": settings.MAX_CHECK_IN_S + 1}, None, {"check_in_late_s"}),
        ({"check_in_early_s": 60.0}, None, {"check_in_early_s"}),
        ({"check_in_early_s": True}, None, {"check_in_early_s"}),
        ({"remote_move_back_places": 0}, None, {"remote_move_back_places"}),
        ({"remote_move_back_limit": -1}, None, {"remote_move_back_limit"}),
        ({"late_arrival": "maybe"}, None, {"late_arrival"}),
        ({"remote_intake": "yes"}, None, {"remote_intake"}),
        ({"colour": "red"}, None, {"colour"}),
        (
            {"check_in_early_s": 600},  # fine, but the others are not: nothing changes
            {"teller": {"bookable_percent": 101}, "cs": {"bookable_percent": -5}},
            {"services.teller.bookable_percent", "services.cs.bookable_percent"},
        ),
        ({}, {"vip": {"bookable_percent": 10}}, {"services.vip"}),
        ({}, {"teller": {"slot_minutes": 10}}, {"services.teller.slot_minutes"}),
        ({}, {"teller": 40}, {"services.teller"}),
    ],
)
def test_invalid_settings_name_every_bad_field_and_change_nothing(
    floor, now, changes, services, bad
):
    with pytest.raises(settings.InvalidSettings) as caught:
        settings.update_pre_arrival_settings(
            floor.branch, actor=floor.manager, now=now, services=services, **changes
        )
    assert caught.value.status == 422
    assert set(caught.value.fields) == bad
    for name in bad:
        assert name in caught.value.message
    db.session.rollback()
    b = fresh(Branch, floor.branch.id)
    assert b.check_in_early_s == 1800
    assert [s.bookable_percent for s in b.services] == [50, 50, 50]


def test_only_admins_and_the_branch_managers_may_change_settings(floor, make, now):
    other_manager = make.user("maria", role=Role.BRANCH_MANAGER, branches=[floor.other_branch])
    executive = make.user("eko", role=Role.EXECUTIVE)
    for actor in (floor.staff, other_manager, executive):
        with pytest.raises(NotAllowed):
            settings.update_pre_arrival_settings(
                floor.branch, actor=actor, now=now, remote_intake=False
            )
    admin = make.user("root", role=Role.ADMIN)
    assert settings.update_pre_arrival_settings(
        floor.other_branch, actor=admin, now=now, remote_intake=False
    )
    assert settings.update_pre_arrival_settings(
        floor.other_branch, actor=other_manager, now=now, remote_intake=True
    )
    floor.manager.active = False
    with pytest.raises(NotAllowed):
        settings.set_bookable_share(svc(floor.branch, "teller"), 10, actor=floor.manager, now=now)


def test_the_slot_capacity_follows_the_bookable_share(floor, now):
    branch = floor.branch
    teller = svc(branch, "teller")  # served by Teller 1 and Teller 2
    day = future_open_day(branch, now.date() + timedelta(days=1))
    assert booking.capacity(teller) == 1  # 2 counters x 50 %, rounded down
    assert {s.capacity for s in booking.day_slots(branch, teller, day, now=now)} == {1}

    change = settings.set_bookable_share(teller, 100, actor=floor.manager, now=now)
    assert (change.field, change.service, change.old, change.new) == (
        "bookable_percent", "teller", 50, 100,
    )  # fmt: skip
    db.session.commit()
    slots = booking.day_slots(branch, teller, day, now=now)
    assert {s.capacity for s in slots} == {2}
    first = slots[0].start
    booking.book(branch, teller, first, now=now, customer=None, name="Ani")
    booking.book(branch, teller, first, now=now, customer=None, name="Budi")
    with pytest.raises(Conflict) as full:
        booking.book(branch, teller, first, now=now, customer=None, name="Citra")
    assert full.value.code == "slot_full"
    db.session.commit()

    # none kept for booking: no place in any slot; the two bookings stay
    settings.set_bookable_share(teller, 0, actor=floor.manager, now=now)
    db.session.commit()
    slots = booking.day_slots(branch, teller, day, now=now)
    assert {s.capacity for s in slots} == {0}
    assert slots[0].taken == 2 and slots[0].available == 0
    with pytest.raises(Conflict):
        booking.book(branch, teller, slots[1].start, now=now, customer=None, name="Dedi")
    # the same value again is no change
    same = settings.set_bookable_share(teller, 0, actor=floor.manager, now=now)
    assert same.old == same.new == 0


def test_bookable_shares_count_the_serving_counters(floor):
    shares = settings.bookable_shares(floor.branch)
    rows = {r.service.code: (r.counters, r.slot_capacity) for r in shares}
    # teller: Teller 1, Teller 2; cs: CS 1; loans: CS 1, Kredit 1
    assert rows == {"teller": (2, 1), "cs": (1, 0), "loans": (2, 1)}


def test_racing_changes_each_see_the_one_before(app, floor, now):
    """8 managers' sessions change the same share at the same instant: the branch lock puts
    them in a row, so each records as its old value the one committed just before it."""
    from queue_app.accounts.models import User

    from .test_races import run_threads

    branch_id, manager_id = floor.branch.id, floor.manager.id
    db.session.commit()

    def change(percent):
        branch = db.session.get(Branch, branch_id)
        actor = db.session.get(User, manager_id)
        done = settings.update_pre_arrival_settings(
            branch,
            actor=actor,
            now=now,
            services={"teller": {"bookable_percent": percent}},
            remote_move_back_places=percent // 10 + 10,
        )
        db.session.commit()
        db.session.remove()
        return {(c.field, c.old, c.new) for c in done}

    percents = [10, 20, 30, 40, 60, 70, 80, 90]
    results = run_threads(app, change, [(p,) for p in percents])
    shares = [next((old, new) for f, old, new in r if f == "bookable_percent") for r in results]
    olds = [old for old, _new in shares]
    assert len(set(olds)) == len(olds), f"two changes saw the same old value: {shares}"
    final = svc(fresh(Branch, branch_id), "teller").bookable_percent
    assert set(olds) == {50, *percents} - {final}
    # the branch's own setting changed in the same order
    places = [next(old for f, old, _new in r if f == "remote_move_back_places") for r in results]
    assert sorted(places) == sorted({3, *(p // 10 + 10 for p in percents)} - {final // 10 + 10})


# --- the API ---------------------------------------------------------------------------------


def test_the_api_needs_a_token_of_an_admin_or_the_branch_manager(client, floor, make):
    assert_error(client.get(SETTINGS), 401)
    assert_error(client.patch(SETTINGS, json={"remote_intake": False}), 401)
    assert_error(client.get(SETTINGS, headers={"Authorization": "Bearer nope"}), 401)
    for headers in (floor.h_staff, floor.h_cx, floor.h_exec, floor.h_other):
        assert_error(client.get(SETTINGS, headers=headers), 403, "forbidden")
        assert_error(client.patch(SETTINGS, json={"remote_intake": False}, headers=headers), 403)
    # a manager of JKT01 may not change MNL01
    assert_error(
        client.patch(f"{API}/branches/MNL01/settings", json={}, headers=floor.h_manager), 403
    )
    assert_error(client.get(f"{API}/branches/NOPE1/settings", headers=floor.h_admin), 404)
    too_long = f"{API}/branches/{'x' * 80}/settings"
    assert_error(client.patch(too_long, json={}, headers=floor.h_admin), 404)
    assert fresh(Branch, floor.branch.id).remote_intake is True
    ok(client.get(SETTINGS, headers=floor.h_manager))
    ok(client.get(f"{API}/branches/MNL01/settings", headers=floor.h_admin))


def test_get_shows_minutes_and_each_service(client, floor):
    body = ok(client.get(SETTINGS, headers=floor.h_manager))
    assert body["branch"] == "JKT01"
    assert body["check_in_early_min"] == 30 and body["check_in_early_s"] == 1800
    assert body["check_in_late_min"] == 15 and body["check_in_late_s"] == 900
    assert body["late_arrival"] == "walk_in"
    assert body["remote_intake"] is True
    assert (body["remote_move_back_places"], body["remote_move_back_limit"]) == (3, 2)
    assert body["services"]["teller"] == {
        "name": "Teller",
        "active": True,
        "bookable_percent": 50,
        "counters": 2,
        "slot_capacity": 1,
    }
    assert set(body["services"]) == {"teller", "cs", "loans"}


def test_patch_changes_the_settings_and_slots_follow(client, floor):
    day = future_open_day(floor.branch, datetime.now(UTC).date() + timedelta(days=7))
    slots_url = f"{API}/branches/JKT01/services/teller/slots?date={day.isoformat()}"
    assert {s["capacity"] for s in ok(client.get(slots_url))["items"]} == {1}

    body = ok(
        client.patch(
            SETTINGS,
            headers=floor.h_manager,
            json={
                "check_in_early_min": 20,
                "check_in_late_min": 5,
                "late_arrival": "refuse",
                "remote_intake": False,
                "remote_move_back_places": 4,
                "remote_move_back_limit": 1,
                "services": {"teller": {"bookable_percent": 100}, "cs": {}},
            },
        )
    )
    assert body["check_in_early_min"] == 20 and body["check_in_early_s"] == 1200
    assert body["services"]["teller"]["slot_capacity"] == 2
    assert {(c["field"], c["service"], c["old"], c["new"]) for c in body["changes"]} == {
        ("check_in_early_s", None, 1800, 1200),
        ("check_in_late_s", None, 900, 300),
        ("late_arrival", None, "walk_in", "refuse"),
        ("remote_intake", None, True, False),
        ("remote_move_back_places", None, 3, 4),
        ("remote_move_back_limit", None, 2, 1),
        ("bookable_percent", "teller", 50, 100),
    }
    b = fresh(Branch, floor.branch.id)
    assert (b.check_in_early_s, b.check_in_late_s) == (1200, 300)
    assert b.late_arrival == LateArrival.REFUSE
    assert (b.remote_intake, b.remote_move_back_places, b.remote_move_back_limit) == (False, 4, 1)
    # the public slot list answers with the new capacity at once
    assert {s["capacity"] for s in ok(client.get(slots_url))["items"]} == {2}

    # an admin closes booking of the service entirely; nothing else changes
    body = ok(
        client.patch(
            SETTINGS, headers=floor.h_admin, json={"services": {"teller": {"bookable_percent": 0}}}
        )
    )
    assert [(c["field"], c["new"]) for c in body["changes"]] == [("bookable_percent", 0)]
    assert {s["capacity"] for s in ok(client.get(slots_url))["items"]} == {0}
    start = ok(client.get(slots_url))["items"][0]["start"]
    booked = client.post(
        f"{API}/branches/JKT01/appointments",
        json={"service": "teller", "start": start, "customer": {"name": "Ani", "email": "a@b.id"}},
    )
    assert_error(booked, 409, "slot_full")
    # an empty body changes nothing
    assert ok(client.patch(SETTINGS, headers=floor.h_manager, json={}))["changes"] == []


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"check_in_early_min": -1}, ["check_in_early_min"]),
        ({"check_in_late_min": 241}, ["check_in_late_min"]),
        ({"check_in_early_min": "30"}, ["check_in_early_min"]),
        ({"check_in_early_min": 1.5}, ["check_in_early_min"]),
        ({"check_in_early_min": 10**30}, ["check_in_early_min"]),
        ({"remote_move_back_places": 0}, ["remote_move_back_places"]),
        ({"remote_move_back_limit": 11}, ["remote_move_back_limit"]),
        ({"remote_intake": "yes"}, ["remote_intake"]),
        ({"remote_intake": 1}, ["remote_intake"]),
        ({"late_arrival": "later"}, ["late_arrival"]),
        ({"late_arrival": None}, ["late_arrival"]),
        ({"colour": "red"}, ["colour"]),
        ({"services": {"teller": {"bookable_percent": 101}}}, ["services.teller"]),
        ({"services": {"teller": {"bookable_percent": True}}}, ["services.teller"]),
        ({"services": {"teller": {"slot_minutes": 5}}}, ["services.teller"]),
        ({"services": {"teller": 40}}, ["services.teller"]),
        ({"services": []}, ["services"]),
        ({"services": {"vip": {"bookable_percent": 10}}}, ["services.vip"]),
        ({"services": {"\x00": {"bookable_percent": 10}}}, ["services"]),
    ],
)
def test_patch_refuses_bad_values_with_their_field_names(client, floor, body, paths):
    response = client.patch(
        SETTINGS,
        headers=floor.h_manager,
        json={**body, "check_in_early_min": body.get("check_in_early_min", 10)},
    )
    assert_invalid(response, *paths, ctx=body)
    b = fresh(Branch, floor.branch.id)
    assert b.check_in_early_s == 1800  # the valid part of the body is not applied either
    assert svc(b, "teller").bookable_percent == 50


def test_patch_refuses_what_is_not_json(client, floor):
    response = client.patch(
        SETTINGS, headers={**floor.h_manager, "Content-Type": "application/json"}, data="{"
    )
    assert_error(response, 400, "bad_json")
    response = client.patch(SETTINGS, headers=floor.h_manager, json=[1, 2])
    assert response.status_code in (400, 422)
    assert_error(response, response.status_code)


# --- the page --------------------------------------------------------------------------------


@pytest.fixture
def people(make, monkeypatch):
    from .apihelp import fast_passwords

    fast_passwords(monkeypatch)
    jkt = make.branch(
        "JKT01", counters=[("Teller 1", ["teller"]), ("Teller 2", ["teller"]), ("CS 1", ["cs"])]
    )
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


def form_of(client, path=PAGE) -> dict[str, str]:
    """The form's fields as the page fills them in (checked boxes and radios only)."""
    page = client.get(path).get_data(as_text=True)
    fields = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        kind = re.search(r'type="([^"]+)"', tag)
        if kind and kind.group(1) in ("radio", "checkbox") and " checked" not in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields[name.group(1)] = value.group(1) if value else ""
    return fields


def text_of(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


def test_the_page_needs_a_manager_of_the_branch_or_an_admin(app, people):
    anonymous = new_client(app)
    response = anonymous.get(PAGE)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert signed_in(app, "budi").get(PAGE).status_code == 403
    other = signed_in(app, "maria")
    assert other.get(PAGE).status_code == 403
    assert other.get("/admin/branches/MNL01/settings").status_code == 200
    manager = signed_in(app, "dewi")
    assert manager.get("/admin/branches/MNL01/settings").status_code == 403
    assert manager.get("/admin/branches/NOPE1/settings").status_code == 404
    page = manager.get(PAGE)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    form = form_of(manager)
    assert form["check_in_early_min"] == "30" and form["check_in_late_min"] == "15"
    assert form["late_arrival"] == "walk_in" and form["remote_intake"] == "1"
    assert form["bookable_percent-teller"] == "50" and form["bookable_percent-cs"] == "50"
    assert 'data-testid="capacity-teller">1<' in page.get_data(as_text=True)
    # the managers find the page from the devices page
    devices = manager.get("/admin/devices").get_data(as_text=True)
    assert 'href="/admin/branches/JKT01/settings"' in devices
    assert "/admin/branches/MNL01/settings" not in devices
    admin_devices = signed_in(app, "admin").get("/admin/devices").get_data(as_text=True)
    assert "/admin/branches/MNL01/settings" in admin_devices


def test_saving_the_form_changes_the_settings(app, people, caplog):
    caplog.set_level(logging.INFO, logger="queue_app.branches.settings")
    manager = signed_in(app, "dewi")
    form = form_of(manager)
    form.update(
        {
            "check_in_early_min": "45",
            "late_arrival": "refuse",
            "remote_move_back_places": "6",
            "bookable_percent-teller": "100",
        }
    )
    del form["remote_intake"]  # the box unticked: the browser sends nothing
    response = manager.post(PAGE, data=form)
    assert response.status_code == 302 and response.headers["Location"].endswith(PAGE)
    b = fresh(Branch, people["jkt"].id)
    assert (b.check_in_early_s, b.check_in_late_s) == (2700, 900)
    assert b.late_arrival == LateArrival.REFUSE
    assert (b.remote_intake, b.remote_move_back_places) == (False, 6)
    assert svc(b, "teller").bookable_percent == 100 and svc(b, "cs").bookable_percent == 50
    assert sum("changed by dewi" in r.getMessage() for r in caplog.records) == 5
    page = manager.get(PAGE)
    assert "5" in text_of(page) and 'class="flash flash-success"' in page.get_data(as_text=True)
    assert 'data-testid="capacity-teller">2<' in page.get_data(as_text=True)
    # sending it again unchanged changes nothing
    again = manager.post(PAGE, data=form_of(manager))
    assert again.status_code == 302
    assert sum("changed by dewi" in r.getMessage() for r in caplog.records) == 5


def test_a_form_sends_only_what_its_user_changed(app, people):
    """Two managers open the page; the second saves after the first: the first's change of
    another setting stays."""
    first, second = signed_in(app, "dewi"), signed_in(app, "admin")
    form_first, form_second = form_of(first), form_of(second)
    form_first["check_in_late_min"] = "20"
    assert first.post(PAGE, data=form_first).status_code == 302
    form_second["bookable_percent-cs"] = "0"
    assert second.post(PAGE, data=form_second).status_code == 302
    b = fresh(Branch, people["jkt"].id)
    assert b.check_in_late_s == 1200
    assert svc(b, "cs").bookable_percent == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("check_in_early_min", "-5"),
        ("check_in_early_min", "abc"),
        ("check_in_late_min", "241"),
        ("remote_move_back_places", "0"),
        ("remote_move_back_limit", "1.5"),
        ("bookable_percent-teller", "150"),
        ("bookable_percent-teller", ""),
        ("late_arrival", "never"),
    ],
)
def test_bad_values_are_shown_next_to_their_field(app, people, field, value):
    manager = signed_in(app, "dewi")
    form = form_of(manager)
    form[field] = value
    form["check_in_late_min"] = form["check_in_late_min"] if field == "check_in_late_min" else "25"
    response = manager.post(PAGE, data=form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'id="error-{field}"' in html
    assert 'role="alert"' in html
    if field != "late_arrival":
        # what was typed stays in the field, marked
        marked = rf'name="{field}"[^>]*value="{re.escape(value)}"[^>]*aria-invalid="true"'
        assert re.search(marked, html), html
    b = fresh(Branch, people["jkt"].id)
    assert b.check_in_late_s == 900  # the valid change in the same form is not saved either


def test_saving_needs_the_csrf_token_and_the_right_branch(app, people):
    manager = signed_in(app, "dewi")
    form = form_of(manager)
    form["check_in_early_min"] = "5"
    response = manager.post(PAGE, data={k: v for k, v in form.items() if k != "csrf_token"})
    assert response.status_code == 400
    assert fresh(Branch, people["jkt"].id).check_in_early_s == 1800
    # the manager of another branch is refused even with a valid token
    other = signed_in(app, "maria")
    form["csrf_token"] = csrf_from(other, "/admin/branches/MNL01/settings")
    assert other.post(PAGE, data=form).status_code == 403
    assert fresh(Branch, people["jkt"].id).check_in_early_s == 1800
    assert signed_in(app, "budi").post(PAGE, data=form).status_code in (400, 403)
    assert fresh(Branch, people["jkt"].id).check_in_early_s == 1800


def test_the_page_in_english(app, people):
    admin = signed_in(app, "admin")
    page = admin.get(PAGE + "?lang=en")
    assert '<html lang="en">' in page.get_data(as_text=True)
    text = text_of(page)
    assert "Bookable share of each service" in text and "Save settings" in text
