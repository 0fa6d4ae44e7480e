"""Counters through API v1: listing, open / pause / close, and calling the next ticket."""

from sqlalchemy import select

from queue_app.branches.models import Counter, CounterStatus
from queue_app.extensions import db
from queue_app.tickets.models import JourneyEvent, Ticket, TicketStatus

from .apihelp import (
    API,
    assert_error,
    assert_invalid,
    issue,
    ok,
    post,
    row_counts,
)
from .sqlcount import statements_sent


def _counter_events(counter_id):
    db.session.commit()
    return db.session.scalars(
        select(JourneyEvent.kind)
        .where(JourneyEvent.counter_id == counter_id, JourneyEvent.ticket_id.is_(None))
        .order_by(JourneyEvent.seq)
    ).all()


# --- listing ---------------------------------------------------------------------------------


def test_list_counters(client, floor):
    teller = floor.counter_id("Teller 1")
    ok(post(client, f"/counters/{teller}/open", floor.h_staff))
    ticket = issue(client, "teller")
    ok(post(client, f"/counters/{teller}/call-next", floor.h_staff))
    body = ok(client.get(f"{API}/branches/JKT01/counters", headers=floor.h_staff))
    assert set(body) == {"items"}
    items = body["items"]
    assert [c["name"] for c in items] == ["Teller 1", "Teller 2", "CS 1", "Kredit 1"]
    first = items[0]
    assert first["id"] == teller
    assert first["services"] == ["teller"]
    assert first["status"] == "open"
    assert first["staff"] == {"username": "budi", "display_name": "budi"}
    assert first["current_ticket"]["id"] == ticket["id"]
    assert first["current_ticket"]["status"] == "called"
    cs = items[2]
    assert cs["services"] == ["cs", "loans"]  # in the counter's priority order
    assert (cs["status"], cs["staff"], cs["current_ticket"]) == ("closed", None, None)


def test_list_counters_of_an_unknown_branch_is_404(client, floor):
    response = client.get(f"{API}/branches/NOPE/counters", headers=floor.h_admin)
    assert_error(response, 404, "not_found")


def test_waiting_list(client, floor):
    a = issue(client, "teller")
    b = issue(client, "cs")
    c = issue(client, "teller", headers=floor.h_staff, priority="vip")
    body = ok(client.get(f"{API}/branches/JKT01/queue", headers=floor.h_staff))
    assert [t["id"] for t in body["items"]] == [a["id"], b["id"], c["id"]]
    assert [t["number"] for t in body["items"]] == ["A001", "B001", "A002"]
    assert all(t["status"] == "waiting" for t in body["items"])


def test_waiting_list_positions_agree_with_each_tickets_own_view(client, floor):
    """The list computes positions and estimates for all tickets at once; each must equal
    what the ticket's holder is told, queue by queue, with and without open counters."""
    ok(post(client, f"/counters/{floor.counter_id('Teller 1')}/open", floor.h_staff))
    issued = [issue(client, s) for s in ("teller", "cs", "teller", "loans", "teller", "cs")]
    body = ok(client.get(f"{API}/branches/JKT01/queue", headers=floor.h_staff))
    listed = {t["id"]: (t["position"], t["estimated_wait_s"]) for t in body["items"]}
    own = {}
    for t in issued:
        view = ok(client.get(f"{API}/tickets/{t['token']}"))
        own[t["id"]] = (view["position"], view["estimated_wait_s"])
    assert listed == own
    assert [listed[t["id"]][0] for t in issued] == [1, 1, 2, 1, 3, 2]
    assert listed[issued[0]["id"]][1] is not None  # a teller counter is open
    assert listed[issued[1]["id"]][1] is None  # no counter for cs is open


# --- open / pause / close --------------------------------------------------------------------


def test_open_pause_close(client, floor):
    counter = floor.counter_id("CS 1")
    opened = ok(post(client, f"/counters/{counter}/open", floor.h_staff))
    assert opened["status"] == "open"
    assert opened["staff"]["username"] == "budi"
    assert opened["services"] == ["cs", "loans"]
    again = ok(post(client, f"/counters/{counter}/open", floor.h_staff))  # idempotent
    assert again["status"] == "open"
    paused = ok(post(client, f"/counters/{counter}/pause", floor.h_staff, {"reason": "sholat"}))
    assert (paused["status"], paused["pause_reason"]) == ("paused", "sholat")
    assert paused["staff"]["username"] == "budi"  # still signed in
    resumed = ok(post(client, f"/counters/{counter}/open", floor.h_staff))
    assert (resumed["status"], resumed["pause_reason"]) == ("open", None)
    closed = ok(post(client, f"/counters/{counter}/close", floor.h_staff))
    assert (closed["status"], closed["staff"]) == ("closed", None)
    row = db.session.get(Counter, counter)
    assert (row.status, row.staff_id) == (CounterStatus.CLOSED, None)
    assert _counter_events(counter) == [
        "counter_opened",
        "counter_paused",
        "counter_opened",
        "counter_closed",
    ]


def test_pause_without_a_reason(client, floor):
    counter = floor.counter_id("CS 1")
    ok(post(client, f"/counters/{counter}/open", floor.h_staff))
    assert ok(post(client, f"/counters/{counter}/pause", floor.h_staff))["pause_reason"] is None


def test_unknown_counter_is_404(client, floor):
    for action in ["open", "pause", "close", "call-next"]:
        for counter_id in ["999999", str(2**31), str(10**30)]:
            response = post(client, f"/counters/{counter_id}/{action}", floor.h_admin)
            error = assert_error(response, 404, "not_found", ctx=(action, counter_id))
            assert error["message"] == f"no counter {counter_id}"
        for counter_id in ["abc", "-1", "1.0", "%00"]:  # not a counter id at all
            response = post(client, f"/counters/{counter_id}/{action}", floor.h_admin)
            assert_error(response, 404, "not_found", ctx=(action, counter_id))


def test_pause_or_close_a_closed_counter_is_409(client, floor):
    counter = floor.counter_id("CS 1")
    response = post(client, f"/counters/{counter}/close", floor.h_manager)
    assert_error(response, 409, "counter_closed")
    response = post(client, f"/counters/{counter}/pause", floor.h_manager)
    assert_error(response, 409, "counter_not_open")


def test_pause_a_paused_counter_is_409(client, floor):
    counter = floor.counter_id("CS 1")
    ok(post(client, f"/counters/{counter}/open", floor.h_staff))
    ok(post(client, f"/counters/{counter}/pause", floor.h_staff))
    assert_error(post(client, f"/counters/{counter}/pause", floor.h_staff), 409, "counter_not_open")


def test_one_person_one_counter(client, floor):
    ok(post(client, f"/counters/{floor.counter_id('Teller 1')}/open", floor.h_staff))
    before = row_counts()
    response = post(client, f"/counters/{floor.counter_id('Teller 2')}/open", floor.h_staff)
    error = assert_error(response, 409, "signed_in_elsewhere")
    assert "Teller 1" in error["message"]
    assert db.session.get(Counter, floor.counter_id("Teller 2")).status == CounterStatus.CLOSED
    assert row_counts() == before


def test_a_busy_counter_cannot_pause_or_close(client, floor):
    counter = floor.counter_id("Teller 1")
    ok(post(client, f"/counters/{counter}/open", floor.h_staff))
    issue(client, "teller")
    called = ok(post(client, f"/counters/{counter}/call-next", floor.h_staff))
    for action in ("pause", "close"):
        error = assert_error(post(client, f"/counters/{counter}/{action}", floor.h_staff), 409)
        assert error["code"] == "counter_busy"
        assert called["number"] in error["message"]
    assert db.session.get(Counter, counter).status == CounterStatus.OPEN


def test_actions_without_arguments_refuse_a_body_they_do_not_understand(client, floor):
    counter = floor.counter_id("Teller 1")
    for action in ["open", "call-next", "close"]:
        response = post(client, f"/counters/{counter}/{action}", floor.h_staff, {"counter": 1})
        assert_invalid(response, "counter", ctx=action)
        response = client.post(
            f"{API}/counters/{counter}/{action}",
            data="{nope",
            content_type="application/json",
            headers=floor.h_staff,
        )
        assert_error(response, 400, "bad_json", ctx=action)
        # an empty object is fine (and so is no body at all: the other tests)
        response = post(client, f"/counters/{counter}/{action}", floor.h_staff, {})
        assert response.status_code < 300, (action, response.get_data(as_text=True))


def test_pause_validates_its_body(client, floor):
    counter = floor.counter_id("Teller 1")
    ok(post(client, f"/counters/{counter}/open", floor.h_staff))
    for body in [{"reason": 5}, {"reason": "x" * 121}, {"reason": "tab\there"}, {"why": "x"}]:
        response = post(client, f"/counters/{counter}/pause", floor.h_staff, body)
        assert_invalid(response, *body, ctx=body)
    assert db.session.get(Counter, counter).status == CounterStatus.OPEN


# --- call next -------------------------------------------------------------------------------


def test_call_next_calls_the_oldest_ticket(client, floor):
    counter = floor.counter_id("Teller 1")
    first = issue(client, "teller")
    issue(client, "teller")
    issue(client, "cs")  # not served here
    ok(post(client, f"/counters/{counter}/open", floor.h_staff))
    called = ok(post(client, f"/counters/{counter}/call-next", floor.h_staff))
    assert called["id"] == first["id"]
    assert called["number"] == "A001"
    assert called["status"] == "called"
    assert called["counter"] == {"id": counter, "name": "Teller 1"}
    assert called["called_at"] is not None
    assert called["position"] is None and called["estimated_wait_s"] is None
    followed = ok(client.get(f"{API}/tickets/{first['token']}"))
    assert followed["status"] == "called"
    assert followed["counter"]["name"] == "Teller 1"


def test_call_next_with_nobody_waiting_is_204(client, floor):
    counter = floor.counter_id("Kredit 1")
    issue(client, "teller")  # waits, but not for loans
    ok(post(client, f"/counters/{counter}/open", floor.h_staff))
    response = post(client, f"/counters/{counter}/call-next", floor.h_staff)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert db.session.scalar(select(Ticket.status)) == TicketStatus.WAITING


def test_call_next_on_a_closed_or_paused_counter_is_409(client, floor):
    counter = floor.counter_id("Teller 1")
    issue(client, "teller")
    response = post(client, f"/counters/{counter}/call-next", floor.h_manager)
    assert_error(response, 409, "counter_not_open")
    ok(post(client, f"/counters/{counter}/open", floor.h_staff))
    ok(post(client, f"/counters/{counter}/pause", floor.h_staff))
    response = post(client, f"/counters/{counter}/call-next", floor.h_staff)
    assert_error(response, 409, "counter_not_open")
    assert db.session.scalar(select(Ticket.status)) == TicketStatus.WAITING


def test_call_next_on_a_busy_counter_is_409(client, floor):
    counter = floor.counter_id("Teller 1")
    issue(client, "teller")
    second = issue(client, "teller")
    ok(post(client, f"/counters/{counter}/open", floor.h_staff))
    called = ok(post(client, f"/counters/{counter}/call-next", floor.h_staff))
    error = assert_error(post(client, f"/counters/{counter}/call-next", floor.h_staff), 409)
    assert error["code"] == "counter_busy"
    assert called["number"] in error["message"]
    assert db.session.get(Ticket, second["id"]).status == TicketStatus.WAITING
    ok(post(client, f"/tickets/{called['id']}/start", floor.h_staff))
    assert_error(post(client, f"/counters/{counter}/call-next", floor.h_staff), 409, "counter_busy")


def test_call_next_follows_the_counters_service_order(client, floor):
    counter = floor.counter_id("CS 1")  # cs first, then loans
    loans = issue(client, "loans")
    cs = issue(client, "cs")
    ok(post(client, f"/counters/{counter}/open", floor.h_manager))
    assert ok(post(client, f"/counters/{counter}/call-next", floor.h_manager))["id"] == cs["id"]
    ok(post(client, f"/tickets/{cs['id']}/start", floor.h_manager))
    ok(post(client, f"/tickets/{cs['id']}/finish", floor.h_manager))
    assert ok(post(client, f"/counters/{counter}/call-next", floor.h_manager))["id"] == loans["id"]


def test_call_next_only_for_services_the_staff_member_knows(client, floor, make):
    """A teller-only member of staff at the CS counter is never given a CS ticket."""
    teller = next(s for s in floor.branch.services if s.code == "teller")
    tono = make.user("tono", branches=[floor.branch], services=[teller])
    headers = make.auth(tono)
    db.session.commit()
    issue(client, "cs")
    issue(client, "loans")
    counter = floor.counter_id("CS 1")
    ok(post(client, f"/counters/{counter}/open", headers))
    assert post(client, f"/counters/{counter}/call-next", headers).status_code == 204
    assert (
        db.session.scalar(
            select(db.func.count()).select_from(Ticket).where(Ticket.status == TicketStatus.WAITING)
        )
        == 2
    )


def test_call_next_serves_priority_first_under_the_strict_policy(client, floor):
    counter = floor.counter_id("Teller 1")
    issue(client, "teller")
    elderly = issue(client, "teller", priority="elderly")
    vip = issue(client, "teller", headers=floor.h_staff, priority="vip")
    ok(post(client, f"/counters/{counter}/open", floor.h_staff))
    order = []
    for _ in range(3):
        called = ok(post(client, f"/counters/{counter}/call-next", floor.h_staff))
        order.append(called["id"])
        ok(post(client, f"/tickets/{called['id']}/no-show", floor.h_staff))
    assert order[:2] == [vip["id"], elderly["id"]]


def test_list_counters_reads_a_fixed_number_of_statements_whatever_the_counters(client, floor):
    """The counters come with their services, staff and current tickets in a fixed number of
    statements: none per counter (the counter screens and the load bench's resync read it)."""
    ids = [floor.counter_id(name) for name in ("Teller 1", "CS 1")]
    for counter_id, headers in zip(ids, (floor.h_staff, floor.h_staff2), strict=True):
        ok(post(client, f"/counters/{counter_id}/open", headers))
    issue(client, "teller")
    issue(client, "cs")
    for counter_id, headers in zip(ids, (floor.h_staff, floor.h_staff2), strict=True):
        ok(post(client, f"/counters/{counter_id}/call-next", headers))
    db.session.commit()
    db.session.expunge_all()  # as a new request finds it: nothing of the branch in the session
    with statements_sent() as sent:
        items = ok(client.get(f"{API}/branches/JKT01/counters", headers=floor.h_staff))["items"]
    assert [c["current_ticket"] is not None for c in items] == [True, False, True, False]
    assert items[2]["staff"]["username"] == "siti"
    # the token with its user; the branch; its counters with their services and staff; the
    # counters' current tickets with what the answer shows of them
    assert len(sent) <= 4, "\n".join(sent)
