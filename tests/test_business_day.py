"""Business-day roll-over: numbers restart at local midnight of the branch, not UTC midnight.

A ticket at 23:59 and one at 00:01 local time, in Jakarta (UTC+7) and in Manila (UTC+8):
the second restarts at 001 on the new business day and the first one's row stays. Once with
explicit clocks through the engine, once through the HTTP API with the clock frozen.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from queue_app.branches.models import network_day
from queue_app.tickets import services as engine
from queue_app.tickets.models import Ticket, TicketSequence, Visit

ZONES = ["Asia/Jakarta", "Asia/Manila"]


def local(zone: str, *args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


def rows(session, branch_id):
    return session.execute(
        select(Ticket.number, Ticket.business_day, Ticket.sequence, Ticket.issued_at)
        .where(Ticket.branch_id == branch_id)
        .order_by(Ticket.issued_at, Ticket.id)
    ).all()


@pytest.mark.parametrize("zone", ZONES)
def test_numbers_restart_at_local_midnight(make, session, zone):
    b = make.branch(timezone=zone, country="ID" if zone == "Asia/Jakarta" else "PH")
    before_midnight = local(zone, 2026, 3, 3, 23, 59)
    also_before = local(zone, 2026, 3, 3, 23, 59, 59)
    after_midnight = local(zone, 2026, 3, 4, 0, 1)
    then = local(zone, 2026, 3, 4, 0, 2)

    numbers = [make.ticket(b, now=t).number for t in (before_midnight, also_before)]
    numbers += [make.ticket(b, now=t).number for t in (after_midnight, then)]
    # another service has its own numbers on the new day too
    numbers.append(make.ticket(b, "cs", now=after_midnight).number)
    session.commit()

    assert numbers == ["A001", "A002", "A001", "A002", "B001"]
    assert [(r.number, r.business_day, r.sequence) for r in rows(session, b.id)] == [
        ("A001", date(2026, 3, 3), 1),
        ("A002", date(2026, 3, 3), 2),
        ("A001", date(2026, 3, 4), 1),
        ("B001", date(2026, 3, 4), 1),
        ("A002", date(2026, 3, 4), 2),
    ]
    # both days' history is kept, stored in UTC
    stored = rows(session, b.id)
    assert stored[0].issued_at == before_midnight
    assert stored[0].issued_at.utcoffset() == timedelta(0)
    counters = session.execute(
        select(TicketSequence.business_day, TicketSequence.last_value)
        .where(
            TicketSequence.branch_id == b.id,
            TicketSequence.service_id == make.service(b, "teller").id,
        )
        .order_by(TicketSequence.business_day)
    ).all()
    assert [tuple(c) for c in counters] == [(date(2026, 3, 3), 2), (date(2026, 3, 4), 2)]


@pytest.mark.parametrize(("zone", "offset_h"), [("Asia/Jakarta", 7), ("Asia/Manila", 8)])
def test_utc_midnight_is_not_a_new_business_day(make, session, zone, offset_h):
    """Around UTC midnight it is morning in the branch: numbering goes on."""
    b = make.branch(timezone=zone)
    morning = local(zone, 2026, 3, 3, offset_h - 1, 59)  # 23:59 UTC on 2 March
    later = local(zone, 2026, 3, 3, offset_h, 1)  # 00:01 UTC on 3 March
    assert morning.astimezone(ZoneInfo("UTC")).date() == date(2026, 3, 2)
    first, second = make.ticket(b, now=morning), make.ticket(b, now=later)
    session.commit()
    assert (first.number, second.number) == ("A001", "A002")
    assert first.business_day == second.business_day == date(2026, 3, 3)


def test_the_same_instant_is_a_different_day_in_each_branch(make, session):
    """16:30 UTC is 23:30 on 3 March in Jakarta and already 00:30 on 4 March in Manila."""
    jakarta = make.branch(timezone="Asia/Jakarta")
    manila = make.branch(timezone="Asia/Manila", country="PH")
    instant = local("Asia/Jakarta", 2026, 3, 3, 23, 30)  # 16:30 UTC, 00:30 in Manila
    a = make.ticket(jakarta, now=instant)
    m = make.ticket(manila, now=instant)
    session.commit()
    assert a.business_day == date(2026, 3, 3)
    assert m.business_day == date(2026, 3, 4)


def test_a_network_day_is_the_earliest_business_day_of_its_branches(make):
    """A view over several branches ends "yesterday" only on days over in all of them."""
    jakarta = make.branch(timezone="Asia/Jakarta")
    manila = make.branch(timezone="Asia/Manila", country="PH")
    half_past_four = datetime(2026, 3, 3, 16, 30, tzinfo=ZoneInfo("UTC"))
    assert network_day([manila, jakarta], half_past_four) == date(2026, 3, 3)
    assert network_day([manila], half_past_four) == date(2026, 3, 4)
    # 17:30 UTC: 4 March in both, though still 3 March in UTC
    half_past_five = half_past_four + timedelta(hours=1)
    assert network_day([jakarta, manila], half_past_five) == date(2026, 3, 4)
    assert network_day([], half_past_five) == date(2026, 3, 3)


def test_transfer_after_midnight_keeps_the_number_of_yesterday(make, session):
    """A visit that crosses midnight keeps its number; the new step belongs to the new day."""
    zone = "Asia/Jakarta"
    b = make.branch(timezone=zone)
    staff = make.user(branches=[b])
    counter = make.counter(b, "Loket 1")
    evening = local(zone, 2026, 3, 3, 23, 58)
    make.open_counter(counter, staff, now=evening)
    ticket = make.ticket(b, now=evening)
    engine.call_next(counter, staff, now=evening)
    nxt = engine.transfer(
        ticket, staff, now=local(zone, 2026, 3, 4, 0, 1), service=make.service(b, "cs")
    )
    fresh = make.ticket(b, "cs", now=local(zone, 2026, 3, 4, 0, 2))
    session.commit()
    assert (ticket.business_day, nxt.business_day) == (date(2026, 3, 3), date(2026, 3, 4))
    assert nxt.number == "A001" and nxt.sequence is None
    assert fresh.number == "B001"  # the transfer took no number from the new day


# --- through the HTTP API, with the real clock frozen ------------------------------------


def _issue(client, code, service="teller"):
    response = client.post(f"/api/v1/branches/{code}/tickets", json={"service": service})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("zone", ZONES)
def test_roll_over_through_the_api(client, make, session, zone):
    b = make.branch("RO01", timezone=zone)
    session.commit()

    with time_machine.travel(local(zone, 2026, 3, 3, 23, 59), tick=False):
        first = _issue(client, "RO01")
        second = _issue(client, "RO01")
    with time_machine.travel(local(zone, 2026, 3, 4, 0, 1), tick=False):
        third = _issue(client, "RO01")

    assert [t["number"] for t in (first, second, third)] == ["A001", "A002", "A001"]
    assert third["status"] == "waiting"
    # the ticket of yesterday is still there, and still found by its token
    response = client.get(f"/api/v1/tickets/{first['token']}")
    assert response.status_code == 200
    assert response.get_json()["number"] == "A001"

    stored = session.execute(
        select(Ticket.id, Ticket.number, Ticket.business_day, Ticket.issued_at, Visit.token)
        .join(Visit, Visit.id == Ticket.visit_id)
        .where(Ticket.branch_id == b.id)
        .order_by(Ticket.id)
    ).all()
    assert [(r.number, r.business_day) for r in stored] == [
        ("A001", date(2026, 3, 3)),
        ("A002", date(2026, 3, 3)),
        ("A001", date(2026, 3, 4)),
    ]
    assert [r.id for r in stored] == [first["id"], second["id"], third["id"]]
    assert [r.token for r in stored] == [first["token"], second["token"], third["token"]]
    # the frozen clock is what was stored, in UTC
    assert stored[0].issued_at == local(zone, 2026, 3, 3, 23, 59)
    assert stored[2].issued_at == local(zone, 2026, 3, 4, 0, 1)
