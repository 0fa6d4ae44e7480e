"""Serving tickets through API v1: call, start, finish, recall, no-show, transfer, hold,
resume, cancel; illegal transitions (409), validation (422) and a whole visit."""

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from queue_app.branches.models import Counter
from queue_app.extensions import db
from queue_app.tickets import services as tickets
from queue_app.tickets.models import JourneyEvent, Ticket, TicketStatus, Visit

from .apihelp import (
    API,
    assert_error,
    assert_invalid,
    issue,
    ok,
    post,
    row_counts,
)
from .sqlcount import first_table, statements_sent

ACTIONS = ["call", "start", "finish", "recall", "no-show", "transfer", "hold", "resume", "cancel"]


@pytest.fixture
def desk(client, floor):
    """budi is signed in at Teller 1, siti at CS 1."""
    teller, cs = floor.counter_id("Teller 1"), floor.counter_id("CS 1")
    ok(post(client, f"/counters/{teller}/open", floor.h_staff))
    ok(post(client, f"/counters/{cs}/open", floor.h_staff2))
    return {"teller": teller, "cs": cs, "h": floor.h_staff, "h_cs": floor.h_staff2}


def _status(ticket_id):
    db.session.commit()
    return db.session.scalar(select(Ticket.status).where(Ticket.id == ticket_id))


def _called(client, desk):
    issue(client, "teller")
    return ok(post(client, f"/counters/{desk['teller']}/call-next", desk["h"]))


def _serving(client, desk):
    ticket = _called(client, desk)
    return ok(post(client, f"/tickets/{ticket['id']}/start", desk["h"]))


def _body_for(action, desk):
    return {"transfer": {"service": "cs"}, "call": {"counter_id": desk["teller"]}}.get(action)


# --- unknown tickets -------------------------------------------------------------------------


def test_unknown_ticket_is_404(client, floor, desk):
    for action in ACTIONS:
        for ticket_id in ["999999", str(2**31), str(10**30)]:
            response = post(
                client, f"/tickets/{ticket_id}/{action}", floor.h_admin, _body_for(action, desk)
            )
            error = assert_error(response, 404, "not_found", ctx=(action, ticket_id))
            assert error["message"] == f"no ticket {ticket_id}"
        for ticket_id in ["abc", "-1", "1.5", "%00"]:  # not a ticket id at all
            response = post(client, f"/tickets/{ticket_id}/{action}", floor.h_admin)
            assert_error(response, 404, "not_found", ctx=(action, ticket_id))


def test_unknown_action_is_404(client, floor, desk):
    ticket = issue(client, "teller")
    assert_error(post(client, f"/tickets/{ticket['id']}/teleport", floor.h_admin), 404)


# --- each action -----------------------------------------------------------------------------


def test_call_a_particular_ticket(client, floor, desk):
    issue(client, "teller")
    second = issue(client, "teller")
    called = ok(post(client, f"/tickets/{second['id']}/call", desk["h"]))
    assert (called["id"], called["status"]) == (second["id"], "called")
    assert called["counter"] == {"id": desk["teller"], "name": "Teller 1"}


def test_call_to_a_named_counter(client, floor, desk):
    ticket = issue(client, "cs")
    called = ok(
        post(client, f"/tickets/{ticket['id']}/call", floor.h_manager, {"counter_id": desk["cs"]})
    )
    assert called["counter"]["name"] == "CS 1"


def test_call_without_a_counter_of_ones_own_is_409(client, floor, desk):
    ticket = issue(client, "teller")
    response = post(client, f"/tickets/{ticket['id']}/call", floor.h_manager)
    error = assert_error(response, 409, "conflict")
    assert "open a counter first" in error["message"]
    assert _status(ticket["id"]) == TicketStatus.WAITING


def test_call_to_an_unknown_counter_is_422(client, floor, desk):
    ticket = issue(client, "teller")
    for counter_id in [999_999, 2**31 - 1]:
        response = post(
            client, f"/tickets/{ticket['id']}/call", desk["h"], {"counter_id": counter_id}
        )
        assert_invalid(response, "counter_id", code="unknown_counter", ctx=counter_id)
    assert _status(ticket["id"]) == TicketStatus.WAITING


def test_call_counter_id_must_be_a_valid_id(client, floor, desk):
    ticket = issue(client, "teller")
    for counter_id in [0, -3, 2**31, 10**30, 1.5, 1.0, "1", True, None, [1], {"id": 1}]:
        response = post(
            client, f"/tickets/{ticket['id']}/call", desk["h"], {"counter_id": counter_id}
        )
        assert_invalid(response, "counter_id", ctx=counter_id)
    assert _status(ticket["id"]) == TicketStatus.WAITING


def test_call_to_a_counter_that_does_not_serve_the_service_is_409(client, floor, desk):
    ticket = issue(client, "loans")
    response = post(client, f"/tickets/{ticket['id']}/call", desk["h"])  # Teller 1
    assert_error(response, 409, "service_not_served")


def test_start_and_finish(client, floor, desk):
    called = _called(client, desk)
    started = ok(post(client, f"/tickets/{called['id']}/start", desk["h"]))
    assert (started["status"], started["started_at"] is not None) == ("serving", True)
    finished = ok(
        post(
            client,
            f"/tickets/{called['id']}/finish",
            desk["h"],
            {"outcome": "cash_deposit", "note": "setor tunai\nRp 5.000.000"},
        )
    )
    assert finished["status"] == "finished"
    assert finished["outcome_code"] == "cash_deposit"
    assert finished["finished_at"] is not None
    ticket = db.session.get(Ticket, called["id"])
    assert ticket.notes == "setor tunai\nRp 5.000.000"
    assert ticket.visit.closed_at is not None


def test_finish_without_an_outcome(client, floor, desk):
    serving = _serving(client, desk)
    assert ok(post(client, f"/tickets/{serving['id']}/finish", desk["h"]))["outcome_code"] is None


def test_finish_validates_its_body(client, floor, desk):
    serving = _serving(client, desk)
    for body in [
        {"outcome": "Cash Deposit"},
        {"outcome": ""},
        {"outcome": "x" * 41},
        {"outcome": "ok\n"},
        {"outcome": 3},
        {"note": "x" * 2001},
        {"note": "nul\x00"},
        {"note": ["a"]},
        {"result": "ok"},
    ]:
        response = post(client, f"/tickets/{serving['id']}/finish", desk["h"], body)
        assert_invalid(response, *body, ctx=body)
    assert _status(serving["id"]) == TicketStatus.SERVING
    assert row_counts()["journey_events"] == 5  # issued, 2 x counter_opened, called, start


def test_recall_then_no_show_past_the_limit(client, floor, desk):
    floor.branch.recall_limit = 2
    db.session.commit()
    called = _called(client, desk)
    for n in (1, 2):
        recalled = ok(post(client, f"/tickets/{called['id']}/recall", desk["h"]))
        assert (recalled["status"], recalled["recall_count"]) == ("called", n)
    last = ok(post(client, f"/tickets/{called['id']}/recall", desk["h"]))
    assert last["status"] == "no_show"
    # the counter is free again
    assert post(client, f"/counters/{desk['teller']}/call-next", desk["h"]).status_code == 204


def test_no_show(client, floor, desk):
    called = _called(client, desk)
    gone = ok(post(client, f"/tickets/{called['id']}/no-show", desk["h"]))
    assert (gone["status"], gone["finished_at"] is not None) == ("no_show", True)


def test_hold_and_resume(client, floor, desk):
    """A held ticket frees the counter and, resumed, is first in line for that counter."""
    serving = _serving(client, desk)
    later = issue(client, "teller")
    held = ok(post(client, f"/tickets/{serving['id']}/hold", desk["h"], {"note": "ambil KTP"}))
    assert held["status"] == "held"
    assert db.session.get(Ticket, serving["id"]).notes == "ambil KTP"
    # meanwhile the counter serves someone else
    other = ok(post(client, f"/counters/{desk['teller']}/call-next", desk["h"]))
    assert other["id"] == later["id"]
    ok(post(client, f"/tickets/{other['id']}/no-show", desk["h"]))
    resumed = ok(post(client, f"/tickets/{serving['id']}/resume", desk["h"]))
    assert resumed["status"] == "waiting"
    assert resumed["position"] == 1
    issue(client, "teller")
    again = ok(post(client, f"/counters/{desk['teller']}/call-next", desk["h"]))
    assert again["id"] == serving["id"]


def test_cancel(client, floor, desk):
    waiting = issue(client, "teller")
    cancelled = ok(post(client, f"/tickets/{waiting['id']}/cancel", desk["h"], {"reason": "left"}))
    assert cancelled["status"] == "cancelled"
    followed = ok(client.get(f"{API}/tickets/{waiting['token']}"))
    assert (followed["status"], followed["position"]) == ("cancelled", None)
    event = db.session.scalar(
        select(JourneyEvent).where(
            JourneyEvent.ticket_id == waiting["id"], JourneyEvent.kind == "cancel"
        )
    )
    assert event.data == {"with_note": True}
    assert db.session.get(Ticket, waiting["id"]).notes == "left"


# --- illegal transitions ---------------------------------------------------------------------


ILLEGAL = [
    # (state the ticket is brought to, action that may not follow, error code)
    ("waiting", "start", "cannot_start"),
    ("waiting", "finish", "cannot_finish"),
    ("waiting", "recall", "cannot_recall"),
    ("waiting", "no-show", "cannot_no_show"),
    ("waiting", "transfer", "cannot_transfer"),
    ("waiting", "hold", "cannot_hold"),
    ("waiting", "resume", "cannot_resume"),
    ("called", "finish", "cannot_finish"),
    ("called", "resume", "cannot_resume"),
    ("called", "call", "cannot_call"),
    ("serving", "start", "cannot_start"),
    ("serving", "recall", "cannot_recall"),
    ("serving", "no-show", "cannot_no_show"),
    ("serving", "cancel", "cannot_cancel"),
    ("serving", "call", "cannot_call"),
    ("held", "start", "cannot_start"),
    ("held", "finish", "cannot_finish"),
    ("held", "hold", "cannot_hold"),
    ("finished", "finish", "cannot_finish"),
    ("finished", "cancel", "cannot_cancel"),
    ("finished", "start", "cannot_start"),
    ("finished", "call", "cannot_call"),
    ("finished", "transfer", "cannot_transfer"),
    ("cancelled", "resume", "cannot_resume"),
    ("cancelled", "call", "cannot_call"),
    ("no_show", "recall", "cannot_recall"),
    ("no_show", "start", "cannot_start"),
    ("transferred", "finish", "cannot_finish"),
    ("transferred", "cancel", "cannot_cancel"),
]


def _bring_to(client, desk, state):
    ticket = issue(client, "teller")
    tid, h = ticket["id"], desk["h"]
    steps = {
        "waiting": [],
        "called": ["call"],
        "serving": ["call", "start"],
        "held": ["call", "hold"],
        "finished": ["call", "start", "finish"],
        "cancelled": ["cancel"],
        "no_show": ["call", "no-show"],
        "transferred": ["call", "transfer"],
    }[state]
    for step in steps:
        ok(post(client, f"/tickets/{tid}/{step}", h, _body_for(step, desk)))
    assert _status(tid).value == state
    return tid


@pytest.mark.parametrize("state", sorted({state for state, _, _ in ILLEGAL}))
def test_illegal_transition_is_409(client, floor, desk, state):
    tid = _bring_to(client, desk, state)
    before = row_counts()
    for this_state, action, code in ILLEGAL:
        if this_state != state:
            continue
        response = post(client, f"/tickets/{tid}/{action}", desk["h"], _body_for(action, desk))
        error = assert_error(response, 409, code, ctx=(state, action))
        assert state in error["message"], error
        assert _status(tid).value == state
    assert row_counts() == before  # not even a journal entry


# --- transfer and a whole visit --------------------------------------------------------------


def test_a_whole_visit_through_the_api(client, floor, desk):
    """Issue at the kiosk, teller calls and starts, transfers to CS with a note; CS calls the
    same customer (same number, same visit), reads the note and finishes."""
    issued = ok(
        client.post(
            f"{API}/branches/JKT01/tickets",
            json={"service": "teller", "customer": {"phone": "0812-3456-7890", "name": "Ahmad"}},
        ),
        201,
    )
    token = issued["token"]
    assert ok(client.get(f"{API}/tickets/{token}"))["position"] == 1

    called = ok(post(client, f"/counters/{desk['teller']}/call-next", desk["h"]))
    assert called["id"] == issued["id"]
    assert ok(client.get(f"{API}/tickets/{token}"))["status"] == "called"
    ok(post(client, f"/tickets/{called['id']}/start", desk["h"]))
    note = "Nasabah ingin membuka deposito; KTP sudah dicek."
    nxt = ok(
        post(
            client,
            f"/tickets/{called['id']}/transfer",
            desk["h"],
            {"service": "cs", "note": note, "keep_place": True},
        )
    )
    assert nxt["id"] != called["id"]
    assert (nxt["number"], nxt["step"], nxt["status"], nxt["service"]) == (
        "A001",
        2,
        "waiting",
        "cs",
    )
    assert nxt["handover_note"] == note
    assert _status(called["id"]) == TicketStatus.TRANSFERRED
    # the teller counter is free
    assert post(client, f"/counters/{desk['teller']}/call-next", desk["h"]).status_code == 204

    followed = ok(client.get(f"{API}/tickets/{token}"))  # the token follows the visit
    assert (followed["number"], followed["status"], followed["service"]) == (
        "A001",
        "waiting",
        "cs",
    )
    assert followed["position"] == 1
    assert "handover_note" not in followed  # staff notes are not for the customer

    at_cs = ok(post(client, f"/counters/{desk['cs']}/call-next", desk["h_cs"]))
    assert at_cs["id"] == nxt["id"]
    assert at_cs["handover_note"] == note
    ok(post(client, f"/tickets/{at_cs['id']}/start", desk["h_cs"]))
    done = ok(
        post(client, f"/tickets/{at_cs['id']}/finish", desk["h_cs"], {"outcome": "deposit_opened"})
    )
    assert done["status"] == "finished"
    followed = ok(client.get(f"{API}/tickets/{token}"))
    assert (followed["status"], followed["position"], followed["estimated_wait_s"]) == (
        "finished",
        None,
        None,
    )

    visit = db.session.scalar(select(Visit))
    assert [t.step for t in visit.tickets] == [1, 2]
    assert visit.customer.phone == "+6281234567890"
    assert visit.closed_at is not None
    kinds = db.session.scalars(
        select(JourneyEvent.kind)
        .where(JourneyEvent.visit_id == visit.id)
        .order_by(JourneyEvent.seq)
    ).all()
    assert kinds == [
        "issued",
        "called",
        "start",
        "transfer",
        "transferred_in",
        "called",
        "start",
        "finish",
    ]
    actors = db.session.scalars(
        select(JourneyEvent.actor_id)
        .where(JourneyEvent.visit_id == visit.id)
        .order_by(JourneyEvent.seq)
    ).all()
    assert actors == [None] + [floor.staff.id] * 4 + [floor.staff2.id] * 3
    seqs = db.session.scalars(select(JourneyEvent.seq).order_by(JourneyEvent.seq)).all()
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # the branch's sequence has no gap


def test_transfer_to_a_counter(client, floor, desk):
    """Sent to a counter, only that counter may call the ticket."""
    kredit = floor.counter_id("Kredit 1")
    ok(post(client, f"/counters/{kredit}/open", floor.h_manager))
    serving = _serving(client, desk)
    nxt = ok(
        post(
            client,
            f"/tickets/{serving['id']}/transfer",
            desk["h"],
            {"counter_id": kredit, "service": "loans", "note": "KPR"},
        )
    )
    assert (nxt["service"], nxt["status"], nxt["position"]) == ("loans", "waiting", 1)
    # CS 1 serves loans too, but the ticket was sent to Kredit 1
    assert post(client, f"/counters/{desk['cs']}/call-next", desk["h_cs"]).status_code == 204
    called = ok(post(client, f"/counters/{kredit}/call-next", floor.h_manager))
    assert (called["id"], called["handover_note"]) == (nxt["id"], "KPR")


def test_transfer_to_a_closed_counter_is_409(client, floor, desk):
    """Nobody would ever call a ticket sent to a closed counter."""
    serving = _serving(client, desk)
    before = row_counts()
    response = post(
        client,
        f"/tickets/{serving['id']}/transfer",
        desk["h"],
        {"counter_id": floor.counter_id("Kredit 1")},
    )
    assert_error(response, 409, "counter_closed")
    assert _status(serving["id"]) == TicketStatus.SERVING
    assert row_counts() == before


def test_transfer_to_the_back_of_the_queue(client, floor, desk):
    serving = _serving(client, desk)
    waiting = issue(client, "cs")
    nxt = ok(
        post(
            client,
            f"/tickets/{serving['id']}/transfer",
            desk["h"],
            {"service": "cs", "keep_place": False},
        )
    )
    assert nxt["position"] == 2
    assert ok(client.get(f"{API}/tickets/{waiting['token']}"))["position"] == 1


TRANSFER_REFUSALS = [
    ({}, "missing_target", None),
    ({"note": "no target"}, "missing_target", None),
    ({"service": "teller"}, "same_target", None),
    ({"service": "nope"}, "unknown_service", "service"),
    ({"counter_id": 999_999}, "unknown_counter", "counter_id"),
    ({"service": 5}, "invalid", "service"),
    ({"counter_id": "2"}, "invalid", "counter_id"),
    ({"counter_id": 2**40}, "invalid", "counter_id"),
    ({"service": "cs", "keep_place": "yes"}, "invalid", "keep_place"),
    ({"service": "cs", "keep_place": 1}, "invalid", "keep_place"),
    ({"service": "cs", "note": "x" * 2001}, "invalid", "note"),
    ({"service": "cs", "to": "CS 1"}, "invalid", "to"),
]


def test_transfer_refusals(client, floor, desk):
    serving = _serving(client, desk)
    before = row_counts()
    for body, code, field in TRANSFER_REFUSALS:
        response = post(client, f"/tickets/{serving['id']}/transfer", desk["h"], body)
        if field:
            assert_invalid(response, field, code=code, ctx=body)
        else:
            assert_error(response, 422, code, ctx=body)
    assert _status(serving["id"]) == TicketStatus.SERVING
    assert row_counts() == before


def test_transfer_to_a_counter_of_another_branch_is_422(client, floor, desk):
    serving = _serving(client, desk)
    foreign = floor.other_branch.counters[0].id
    response = post(
        client, f"/tickets/{serving['id']}/transfer", desk["h"], {"counter_id": foreign}
    )
    assert_error(response, 422, "bad_counter")
    assert _status(serving["id"]) == TicketStatus.SERVING


def test_transfer_needs_a_body(client, floor, desk):
    serving = _serving(client, desk)
    response = client.post(f"{API}/tickets/{serving['id']}/transfer", headers=desk["h"])
    assert response.status_code == 422
    assert_error(response, 422)


def test_actions_without_arguments_refuse_unknown_fields(client, floor, desk):
    called = _called(client, desk)
    for action in ["start", "recall", "no-show", "resume"]:
        response = post(client, f"/tickets/{called['id']}/{action}", desk["h"], {"outcome": "x"})
        assert_invalid(response, "outcome", ctx=action)
        response = client.post(
            f"{API}/tickets/{called['id']}/{action}",
            data="[",
            content_type="application/json",
            headers=desk["h"],
        )
        assert_error(response, 400, "bad_json", ctx=action)
    assert _status(called["id"]) == TicketStatus.CALLED


def test_a_counter_of_another_branch_cannot_call_here(client, floor, desk):
    """Even an admin (who may work anywhere) cannot call a JKT01 ticket to a Manila counter."""
    ticket = issue(client, "teller")
    manila = floor.other_branch.counters[0].id
    ok(post(client, f"/counters/{manila}/open", floor.h_admin))
    response = post(client, f"/tickets/{ticket['id']}/call", floor.h_admin, {"counter_id": manila})
    assert_error(response, 404, "not_found")
    assert _status(ticket["id"]) == TicketStatus.WAITING
    assert db.session.get(Counter, manila).staff_id is not None


def _selects(fn):
    """`fn()`, and the tables its SELECT statements read first (`sqlcount.first_table`)."""
    with statements_sent() as sent:
        result = fn()
    return result, [first_table(s) for s in sent if s.lstrip().upper().startswith("SELECT")]


def test_start_and_finish_read_the_ticket_with_what_they_check_in_one_statement(
    client, floor, desk
):
    """The token comes with its user and the user's branches, the locked ticket with its
    counter, visit and service: no statement of its own reads any of them. The ticket is
    read once: the view's lookup locks it, and the action takes it from there."""
    called = _called(client, desk)
    db.session.expire_all()
    started, reads = _selects(lambda: ok(post(client, f"/tickets/{called['id']}/start", desk["h"])))
    assert started["status"] == "serving"
    assert reads.count("tickets") == 1, reads  # found (404) and locked with the rest
    assert not {"branches", "counters", "visits", "services", "users"} & set(reads), reads
    db.session.expire_all()
    finished, reads = _selects(
        lambda: ok(post(client, f"/tickets/{called['id']}/finish", desk["h"]))
    )
    assert finished["status"] == "finished" and finished["finished_at"] is not None
    assert reads.count("tickets") == 1, reads
    assert not {"branches", "counters", "visits", "services", "users"} & set(reads), reads
    assert db.session.get(Ticket, called["id"]).visit.closed_at is not None


def test_call_next_reads_the_counter_once_and_the_queue_with_the_counters_own_ticket(
    client, floor, desk
):
    """The view's lookup locks the counter and the action takes it from there; the services
    the counter's staff may serve are one statement (no load of the services or of the
    competences); the waiting tickets and the ticket the counter may still have are one read;
    the claimed ticket comes with the service its answer names."""
    issue(client, "teller")
    db.session.expire_all()
    called, reads = _selects(
        lambda: ok(post(client, f"/counters/{desk['teller']}/call-next", desk["h"]))
    )
    assert (called["status"], called["service"]) == ("called", "teller")
    assert called["service_name"]
    assert reads.count("counters") == 1, reads
    assert reads.count("counter_services") == 1, reads
    assert not {"services", "user_services"} & set(reads), reads
    # the queue with the counter's own ticket, the claim, and whether a customer near the
    # front of this queue is to be told (notify)
    assert reads.count("tickets") == 3, reads


def test_call_next_still_refuses_while_the_counter_has_a_ticket(client, floor, desk):
    """The counter's own ticket, read with the queue, stops the call: called, then serving."""
    first = _called(client, desk)
    issue(client, "teller")
    for status in ("called", "serving"):
        response = post(client, f"/counters/{desk['teller']}/call-next", desk["h"])
        error = assert_error(response, 409, "counter_busy")
        assert f"{first['number']} ({status})" in error["message"], error
        if status == "called":
            ok(post(client, f"/tickets/{first['id']}/start", desk["h"]))
    waiting = db.session.scalars(select(Ticket).where(Ticket.status == TicketStatus.WAITING)).all()
    assert len(waiting) == 1


def test_a_row_is_locked_once_per_transaction(client, floor, desk):
    """A second lock of the same ticket in one transaction sends nothing and gives the same
    object; after the commit the next lock reads (and locks) it again."""
    ticket_id = _called(client, desk)["id"]
    db.session.commit()
    with statements_sent() as sent:
        first = tickets.lock_ticket(ticket_id)
        again = tickets.lock_ticket(ticket_id)
    assert again is first and len(sent) == 1, sent
    db.session.commit()
    with statements_sent() as sent:
        tickets.lock_ticket(ticket_id)
    assert len(sent) == 1, sent
    db.session.rollback()


def test_a_savepoint_rolled_back_forgets_the_locks_taken_in_it(client, floor, desk, is_postgres):
    """Rolling back to a savepoint releases the row locks taken after it (PostgreSQL): the
    next lock must take the lock again, not trust the memory of it."""
    ticket_id = _called(client, desk)["id"]
    db.session.commit()
    savepoint = db.session.begin_nested()
    tickets.lock_ticket(ticket_id)
    savepoint.rollback()
    with statements_sent() as sent:
        tickets.lock_ticket(ticket_id)
    assert len(sent) == 1, sent
    if is_postgres:  # the lock is really held again: another connection cannot take it
        with db.engine.connect() as other, pytest.raises(OperationalError, match="lock"):
            other.execute(
                text("SELECT id FROM tickets WHERE id = :id FOR UPDATE NOWAIT"), {"id": ticket_id}
            )
    db.session.rollback()
