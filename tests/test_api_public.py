"""The public part of API v1: branches, services, issuing a ticket and following it.

Kiosks and phones use these without a token; what needs one (VIP, staff and appointment
tickets) is refused without it.
"""

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from queue_app.accounts.services import revoke_api_token
from queue_app.customers.models import Customer
from queue_app.extensions import db
from queue_app.tickets.models import JourneyEvent, Ticket, TicketStatus

from .apihelp import (
    API,
    assert_error,
    assert_invalid,
    issue,
    ok,
    row_counts,
)

# --- branches and services -------------------------------------------------------------------


def test_index_names_the_openapi_document(client):
    body = ok(client.get(f"{API}/"))
    assert body["version"] == "v1"
    assert body["openapi"] == f"{API}/openapi.json"


def test_list_branches(client, floor):
    body = ok(client.get(f"{API}/branches"))
    assert set(body) == {"items"}
    by_code = {b["code"]: b for b in body["items"]}
    assert list(by_code) == ["JKT01", "MNL01"]  # ordered by code
    jkt = by_code["JKT01"]
    assert jkt["name"] == "Cabang JKT01"
    assert jkt["timezone"] == "Asia/Jakarta"
    assert by_code["MNL01"]["timezone"] == "Asia/Manila"
    assert jkt["locale"] == "id" and jkt["country"] == "ID"
    assert jkt["opening_hours"]["mon"] == [["08:00", "15:00"]]
    assert isinstance(jkt["is_open"], bool)


def test_inactive_branch_is_neither_listed_nor_found(client, floor):
    floor.other_branch.active = False
    db.session.commit()
    codes = [b["code"] for b in ok(client.get(f"{API}/branches"))["items"]]
    assert codes == ["JKT01"]
    assert_error(client.get(f"{API}/branches/MNL01"), 404, "not_found")
    assert_error(client.get(f"{API}/branches/MNL01/services"), 404, "not_found")


def test_get_branch(client, floor):
    body = ok(client.get(f"{API}/branches/JKT01"))
    assert (body["code"], body["timezone"]) == ("JKT01", "Asia/Jakarta")


def test_unknown_branch_is_404(client, floor):
    for path in [
        "/branches/NOPE",
        "/branches/NOPE/services",
        "/branches/jkt01",  # codes are exact
        "/branches/" + "X" * 300,
        "/branches/JKT%0001",  # a NUL byte must not reach the database
        "/branches/%F0%9F%98%80/services",
    ]:
        error = assert_error(client.get(API + path), 404, "not_found", ctx=path)
        assert "branch" in error["message"]


def test_list_services(client, floor):
    body = ok(client.get(f"{API}/branches/JKT01/services"))
    assert set(body) == {"items"}
    assert [(s["code"], s["prefix"]) for s in body["items"]] == [
        ("teller", "A"),
        ("cs", "B"),
        ("loans", "C"),
    ]
    teller = body["items"][0]
    assert teller["name"] == "Teller"
    assert teller["expected_duration_s"] == 240
    assert (teller["waiting"], teller["open_counters"]) == (0, 0)


def test_services_count_waiting_tickets_and_open_counters(client, floor):
    issue(client, "teller")
    issue(client, "teller")
    issue(client, "cs")
    ok(client.post(f"{API}/counters/{floor.counter_id('CS 1')}/open", headers=floor.h_staff))
    items = {s["code"]: s for s in ok(client.get(f"{API}/branches/JKT01/services"))["items"]}
    assert (items["teller"]["waiting"], items["teller"]["open_counters"]) == (2, 0)
    assert (items["cs"]["waiting"], items["cs"]["open_counters"]) == (1, 1)
    assert (items["loans"]["waiting"], items["loans"]["open_counters"]) == (0, 1)


def test_service_names_speak_the_callers_language(client, floor):
    cs = next(s for s in floor.branch.services if s.code == "cs")
    cs.names = {"id": "Layanan Nasabah", "en": "Customer Service"}
    db.session.commit()
    url = f"{API}/branches/JKT01/services"
    for language, name in [("en", "Customer Service"), ("id", "Layanan Nasabah")]:
        items = ok(client.get(url, headers={"Accept-Language": language}))["items"]
        assert items[1]["name"] == name, language
        assert items[1]["names"] == {"id": "Layanan Nasabah", "en": "Customer Service"}


def test_inactive_service_is_not_offered(client, floor):
    loans = next(s for s in floor.branch.services if s.code == "loans")
    loans.active = False
    db.session.commit()
    codes = [s["code"] for s in ok(client.get(f"{API}/branches/JKT01/services"))["items"]]
    assert codes == ["teller", "cs"]
    before = row_counts()
    response = client.post(f"{API}/branches/JKT01/tickets", json={"service": "loans"})
    assert_error(response, 409, "service_unavailable")
    assert row_counts() == before


# --- issuing ---------------------------------------------------------------------------------


def test_issue_ticket(client, floor):
    response = client.post(f"{API}/branches/JKT01/tickets", json={"service": "teller"})
    body = ok(response, 201)
    assert body["number"] == "A001"
    assert body["status"] == "waiting"
    assert isinstance(body["id"], int)
    assert body["position"] == 1
    assert body["estimated_wait_s"] is None  # no counter open for teller: no invented number
    assert (body["branch"], body["service"], body["priority"], body["source"]) == (
        "JKT01",
        "teller",
        "normal",
        "kiosk",
    )
    assert body["step"] == 1
    second = issue(client, "teller")
    assert (second["number"], second["position"]) == ("A002", 2)
    assert issue(client, "cs")["number"] == "B001"  # numbered per service
    ticket = db.session.get(Ticket, body["id"])
    assert ticket.status == TicketStatus.WAITING
    kinds = db.session.scalars(
        select(JourneyEvent.kind).where(JourneyEvent.ticket_id == body["id"])
    ).all()
    assert kinds == ["issued"]


def test_ticket_token_is_an_unguessable_secret(client, floor):
    tokens = [issue(client, "teller")["token"] for _ in range(30)]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        # URL-safe base64: 6 bits per character; at least 128 bits of it
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token), token
        assert len(token) * 6 >= 128, token
    # no shared structure (a counter, a time stamp) between consecutive tokens
    assert len({t[:4] for t in tokens}) > 20


def test_estimated_wait_counts_open_counters(client, floor):
    first = issue(client, "teller")
    second = issue(client, "teller")
    ok(client.post(f"{API}/counters/{floor.counter_id('Teller 1')}/open", headers=floor.h_staff))
    # the estimator (waits.live) at the last change, 240 s per teller ticket without history:
    # the idle Teller 1 calls the first at once and the second after it, at 240 s
    followed = ok(client.get(f"{API}/tickets/{second['token']}"))
    assert (followed["position"], followed["estimated_wait_s"]) == (2, 240)
    assert ok(client.get(f"{API}/tickets/{first['token']}"))["estimated_wait_s"] == 0
    ok(client.post(f"{API}/counters/{floor.counter_id('Teller 2')}/open", headers=floor.h_staff2))
    # two idle counters share the queue: each calls one of the two at once
    followed = ok(client.get(f"{API}/tickets/{second['token']}"))
    assert (followed["position"], followed["estimated_wait_s"]) == (2, 0)
    assert ok(client.get(f"{API}/tickets/{first['token']}"))["estimated_wait_s"] == 0


def test_public_priorities_need_no_token(client, floor):
    body = issue(client, "teller", priority="elderly", source="mobile")
    assert (body["priority"], body["source"]) == ("elderly", "mobile")


def test_staff_only_tickets_need_a_token(client, floor):
    before = row_counts()
    for extra in [
        {"priority": "vip"},
        {"source": "staff"},
        {"source": "appointment", "appointment_due_at": "2026-03-03T10:00:00+07:00"},
        {"source": "appointment"},
        {"priority": "vip", "source": "mobile"},
    ]:
        response = client.post(f"{API}/branches/JKT01/tickets", json={"service": "teller", **extra})
        assert_error(response, 401, "unauthorized", ctx=extra)
    assert row_counts() == before


def test_staff_only_tickets_with_a_token_of_the_branch(client, floor):
    vip = issue(client, "teller", headers=floor.h_staff, priority="vip")
    assert vip["priority"] == "vip"
    by_staff = issue(client, "cs", headers=floor.h_manager, source="staff")
    assert by_staff["source"] == "staff"
    due = datetime.now(UTC) + timedelta(minutes=5)
    appointment = issue(
        client,
        "loans",
        headers=floor.h_admin,
        source="appointment",
        appointment_due_at=due.isoformat(),
    )
    assert appointment["source"] == "appointment"
    ticket = db.session.get(Ticket, appointment["id"])
    assert abs((ticket.appointment_due_at - due).total_seconds()) < 1
    event = db.session.scalar(select(JourneyEvent).where(JourneyEvent.ticket_id == vip["id"]))
    assert event.actor_id == floor.staff.id


def test_staff_only_tickets_refused_to_others(client, floor):
    """Staff of another branch, CX agents and executives may not issue VIP tickets here."""
    before = row_counts()
    for who in ["h_other", "h_cx", "h_exec"]:
        for extra in [{"priority": "vip"}, {"source": "staff"}]:
            response = client.post(
                f"{API}/branches/JKT01/tickets",
                json={"service": "teller", **extra},
                headers=getattr(floor, who),
            )
            assert_error(response, 403, "forbidden", ctx=(who, extra))
    assert row_counts() == before


def test_a_garbled_token_is_refused_even_on_a_public_endpoint(client, floor):
    for authorization in [
        "Bearer qa_not-a-real-token",
        "Bearer",
        "Basic YWRtaW46ZGVtbw==",
        "Bearer    ",
    ]:
        response = client.post(
            f"{API}/branches/JKT01/tickets",
            json={"service": "teller"},
            headers={"Authorization": authorization},
        )
        assert_error(response, 401, "unauthorized", ctx=authorization)
    assert row_counts()["tickets"] == 0


def test_a_revoked_token_cannot_issue_vip(client, floor):
    token = floor.h_staff["Authorization"].split()[1]
    assert revoke_api_token(token, now=datetime.now(UTC))
    db.session.commit()
    response = client.post(
        f"{API}/branches/JKT01/tickets",
        json={"service": "teller", "priority": "vip"},
        headers=floor.h_staff,
    )
    assert_error(response, 401, "unauthorized")


def test_appointment_time_only_for_appointments(client, floor):
    """Routing puts due appointments first: a kiosk ticket may not claim to be one."""
    before = row_counts()
    soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    response = client.post(
        f"{API}/branches/JKT01/tickets",
        json={"service": "teller", "appointment_due_at": soon},
    )
    assert_invalid(response, "appointment_due_at")
    response = client.post(
        f"{API}/branches/JKT01/tickets",
        json={"service": "teller", "source": "mobile", "appointment_due_at": soon},
        headers=floor.h_staff,
    )
    assert_invalid(response, "appointment_due_at")
    assert row_counts() == before


def test_appointment_needs_its_time(client, floor):
    response = client.post(
        f"{API}/branches/JKT01/tickets",
        json={"service": "teller", "source": "appointment"},
        headers=floor.h_staff,
    )
    assert_error(response, 422, "missing_due_at")
    assert row_counts()["tickets"] == 0


def test_unknown_branch_when_issuing(client, floor):
    response = client.post(f"{API}/branches/NOPE/tickets", json={"service": "teller"})
    assert_error(response, 404, "not_found")


def test_unknown_service_in_the_body_is_422(client, floor):
    for service in ["nope", "TELLER", "x" * 32, "teller "]:
        response = client.post(f"{API}/branches/JKT01/tickets", json={"service": service})
        assert_invalid(response, "service", code="unknown_service", ctx=service)
    assert row_counts()["tickets"] == 0


def test_service_of_another_branch_is_unknown_here(client, floor):
    floor.other_branch.services[0].code = "remit"
    db.session.commit()
    response = client.post(f"{API}/branches/JKT01/tickets", json={"service": "remit"})
    assert_invalid(response, "service", code="unknown_service")


# --- malformed requests ----------------------------------------------------------------------


def test_malformed_json_is_400(client, floor):
    for raw in [
        b"{bad",
        b'{"service": "teller"',
        b"{'service': 'teller'}",
        b'{"service": "teller"} trailing',
        b"\xff\xfe{}",  # not UTF-8
        b'{"service": NaN}',  # not JSON, although Python's decoder takes it
        b'{"service": "teller", "x": Infinity}',
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the decoder's recursion limit
        b'{"customer": ' * 5_000 + b"1" + b"}" * 5_000,
        b"   ",
    ]:
        response = client.post(
            f"{API}/branches/JKT01/tickets", data=raw, content_type="application/json"
        )
        assert_error(response, 400, "bad_json", ctx=raw[:40])
    assert row_counts()["tickets"] == 0


def test_a_body_above_the_size_limit_is_413(client, floor):
    body = b'{"service": "teller", "customer": {"name": "' + b"x" * 1_100_000 + b'"}}'
    response = client.post(
        f"{API}/branches/JKT01/tickets", data=body, content_type="application/json"
    )
    assert_error(response, 413, "too_large")


INVALID_BODIES = [
    ({}, ["service"]),
    ({"service": 7}, ["service"]),
    ({"service": None}, ["service"]),
    ({"service": ""}, ["service"]),
    ({"service": "x" * 33}, ["service"]),
    ({"service": ["teller"]}, ["service"]),
    ({"service": "tel\x00ler"}, ["service"]),  # PostgreSQL cannot store NUL
    ({"service": "tel\ud800ler"}, ["service"]),  # a lone surrogate cannot be encoded
    ({"service": "teller", "priority": "king"}, ["priority"]),
    ({"service": "teller", "priority": 1}, ["priority"]),
    ({"service": "teller", "source": "fax"}, ["source"]),
    ({"service": "teller", "customer": "0812"}, ["customer"]),
    ({"service": "teller", "customer": {"phone": 812345}}, ["customer.phone"]),
    ({"service": "teller", "customer": {"phone": "12"}}, ["customer.phone"]),
    ({"service": "teller", "customer": {"phone": "0812\x003456"}}, ["customer.phone"]),
    ({"service": "teller", "customer": {"email": "a@b.c"}}, ["customer.email"]),
    ({"service": "teller", "customer": {"name": "x" * 121}}, ["customer.name"]),
    ({"service": "teller", "customer": {"external_id": ""}}, ["customer.external_id"]),
    ({"service": "teller", "colour": "red"}, ["colour"]),
    (
        {"service": "teller", "source": "appointment", "appointment_due_at": "tomorrow"},
        ["appointment_due_at"],
    ),
    (
        {"service": "teller", "source": "appointment", "appointment_due_at": "2026-03-03T10:00"},
        ["appointment_due_at"],  # naive: whose ten o'clock?
    ),
    (
        {
            "service": "teller",
            "source": "appointment",
            "appointment_due_at": "0001-01-01T00:00:00+05:00",
        },
        ["appointment_due_at"],  # would overflow when converted to UTC
    ),
    (
        {
            "service": "teller",
            "source": "appointment",
            "appointment_due_at": "9999-12-31T23:59:59-05:00",
        },
        ["appointment_due_at"],
    ),
]


def test_invalid_bodies_are_422_with_fields(client, floor):
    before = row_counts()
    for body, paths in INVALID_BODIES:
        response = client.post(f"{API}/branches/JKT01/tickets", json=body, headers=floor.h_staff)
        error = assert_invalid(response, *paths, ctx=body)
        assert "does not validate" in error["message"]
    assert row_counts() == before


def test_a_body_that_is_not_an_object_is_422(client, floor):
    for body in ["[]", '["teller"]', '"teller"', "42", "null", "true"]:
        response = client.post(
            f"{API}/branches/JKT01/tickets", data=body, content_type="application/json"
        )
        assert_invalid(response, "_schema", ctx=body)
    assert row_counts()["tickets"] == 0


def test_json_sent_as_another_media_type_is_not_read(client, floor):
    response = client.post(
        f"{API}/branches/JKT01/tickets", data='{"service": "teller"}', content_type="text/plain"
    )
    assert_invalid(response, "service")


def test_wrong_method_is_405_with_the_error_shape(client, floor):
    response = client.get(f"{API}/branches/JKT01/tickets")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]  # HTTP requires it on a 405
    response = client.delete(f"{API}/branches")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_unknown_api_path_is_404_with_the_error_shape(client):
    assert_error(client.get(f"{API}/nothing/here"), 404, "not_found")


# --- customers -------------------------------------------------------------------------------


def test_customer_phone_is_stored_in_e164(client, floor):
    for phone in ["0812-3456-7890", "081234567890", "+62 812 3456 7890", "(0812) 3456 7890"]:
        body = issue(client, "teller", customer={"phone": phone, "name": "Ahmad Fauzi"})
        customer = db.session.get(Ticket, body["id"]).visit.customer
        assert (customer.phone, customer.name) == ("+6281234567890", "Ahmad Fauzi"), phone
    # one customer, found again each time
    assert db.session.scalar(select(db.func.count()).select_from(Customer)) == 1


def test_phone_is_read_in_the_branch_country(client, floor):
    body = issue(client, "teller", branch="MNL01", customer={"phone": "0917 123 4567"})
    assert db.session.get(Ticket, body["id"]).visit.customer.phone == "+639171234567"


def test_the_same_customer_is_found_again(client, floor):
    first = issue(client, "teller", customer={"phone": "0812-3456-7890"})
    second = issue(client, "cs", customer={"phone": "+6281234567890"})
    third = issue(client, "cs", customer={"external_id": "CIF001", "phone": "081234567890"})
    ids = {db.session.get(Ticket, t["id"]).visit.customer_id for t in (first, second, third)}
    assert len(ids) == 1
    assert db.session.scalar(select(db.func.count()).select_from(Customer)) == 1


def test_an_anonymous_caller_does_not_rename_a_customer(client, floor):
    issue(client, "teller", customer={"phone": "0812-3456-7890", "name": "Ahmad"})
    issue(client, "teller", customer={"phone": "0812-3456-7890", "name": "Mallory"})
    customer = db.session.scalar(select(Customer))
    assert customer.name == "Ahmad"


def test_staff_may_fill_in_a_missing_name(client, floor):
    issue(client, "teller", customer={"phone": "0812-3456-7890"})
    issue(
        client, "teller", headers=floor.h_staff, customer={"phone": "0812-3456-7890", "name": "Sri"}
    )
    assert db.session.scalar(select(Customer)).name == "Sri"


def test_only_the_branchs_staff_may_fill_in_a_name(client, floor):
    """A token of another branch (or of a CX agent) is no authority on this customer."""
    issue(client, "teller", customer={"phone": "0812-3456-7890"})
    for who in ("h_other", "h_cx", "h_exec"):
        issue(
            client,
            "teller",
            headers=getattr(floor, who),
            customer={"phone": "0812-3456-7890", "name": "Mallory"},
        )
    assert db.session.scalar(select(Customer)).name is None


def test_invalid_phone_is_422(client, floor):
    before = row_counts()
    for phone in ["12345", "not a phone", "+1 555", "0812", "+62 000 0000 0000", "+999 1234"]:
        response = client.post(
            f"{API}/branches/JKT01/tickets",
            json={"service": "teller", "customer": {"phone": phone}},
        )
        error = assert_error(response, 422, "invalid_phone", ctx=phone)
        assert phone in error["message"]
    assert row_counts() == before


def test_failed_issue_leaves_no_customer_behind(client, floor):
    """The customer is recorded before the ticket; when the ticket fails, neither stays."""
    cs = next(s for s in floor.branch.services if s.code == "cs")
    cs.active = False
    db.session.commit()
    before = row_counts()
    response = client.post(
        f"{API}/branches/JKT01/tickets",
        json={"service": "cs", "customer": {"phone": "0812-3456-7890", "name": "Ahmad"}},
    )
    assert_error(response, 409, "service_unavailable")
    assert row_counts() == before
    assert db.session.scalar(select(Customer)) is None


# --- following a ticket ----------------------------------------------------------------------


def test_follow_a_ticket_by_its_token(client, floor):
    issued = issue(client, "teller")
    body = ok(client.get(f"{API}/tickets/{issued['token']}"))
    assert body["number"] == "A001"
    assert body["status"] == "waiting"
    assert body["position"] == 1
    assert "estimated_wait_s" in body
    # what the holder of the token sees: no ids, no staff notes, no token echo
    assert not {"id", "token", "handover_note", "outcome_code"} & set(body)


def test_unknown_token_is_404(client, floor):
    issue(client, "teller")
    for token in ["nope", "x" * 65, "x" * 500, "abc%00def", "%00", "%F0%9F%98%80"]:
        error = assert_error(client.get(f"{API}/tickets/{token}"), 404, "not_found", ctx=token)
        assert error["message"] == "no ticket has this token"
