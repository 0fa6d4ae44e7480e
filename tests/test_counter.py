"""The counter screen (/counter/): access, every action through the page's endpoints, CSRF,
refusals as 4xx with a sentence in the page's language, and the customer panel's history read
in a bounded number of queries.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from queue_app.accounts.models import Role
from queue_app.branches.models import CounterStatus
from queue_app.core.types import utcnow
from queue_app.counter.state import mask_phone
from queue_app.customers import queries as customer_queries
from queue_app.customers.models import Customer
from queue_app.extensions import db
from queue_app.tickets import services as engine
from queue_app.tickets.models import JourneyEvent, Priority, Ticket, TicketStatus

from .apihelp import build_floor, fast_passwords
from .sqlcount import statements_sent


@pytest.fixture
def floor(make, monkeypatch):
    fast_passwords(monkeypatch)
    return build_floor(make)


def sign_in(client, user):
    """What a successful sign-in leaves in the session (Flask-Login's keys)."""
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True


class Screen:
    """One member of staff's counter screen, driven like its script drives it."""

    def __init__(self, client, branch="JKT01", counter=None, lang="en"):
        self.client = client
        self.base = f"/counter/{branch}/{counter}/"
        self.lang = lang
        self.token = None

    def load(self):
        response = self.client.get(self.base + f"?lang={self.lang}")
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        page = response.get_data(as_text=True)
        self.token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
        return page

    def state(self):
        response = self.client.get(self.base + "state", headers={"Accept": "application/json"})
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        return response.get_json()

    def post(self, path, json=None, token=True):
        headers = {"Accept": "application/json"}
        if token:
            headers["X-CSRFToken"] = self.token
        return self.client.post(self.base + path, json=json or {}, headers=headers)

    def ok(self, path, json=None):
        response = self.post(path, json)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return response.get_json()


def screen_for(client, floor, user, counter="Teller 1", lang="en"):
    sign_in(client, user)
    s = Screen(client, counter=floor.counter_id(counter), lang=lang)
    s.load()
    return s


def error_of(response, status, code=None):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code, error
    return error


def issue(floor, service="teller", customer=None, priority=None):
    kwargs = {"customer": customer} if customer else {}
    if priority:
        kwargs["priority"] = priority
    t = engine.issue_ticket(
        floor.branch,
        next(s for s in floor.branch.services if s.code == service),
        now=utcnow(),
        **kwargs,
    )
    db.session.commit()
    return t


# --- access -------------------------------------------------------------------------------


def test_signed_out_people_are_sent_away(client, floor):
    cid = floor.counter_id("Teller 1")
    page = client.get("/counter/")
    assert page.status_code in (302, 401)
    if page.status_code == 302:
        assert "/auth/login" in page.headers["Location"]
    error_of(client.get(f"/counter/JKT01/{cid}/state", headers={"Accept": "application/json"}), 401)
    # CSRF is checked first (a signed-out browser has no token either): refused all the same
    refused = client.post(f"/counter/JKT01/{cid}/open", headers={"Accept": "application/json"})
    assert refused.status_code in (400, 401) and refused.get_json()["error"]["message"]
    assert db.session.get(type(floor.counters["Teller 1"]), cid).status == CounterStatus.CLOSED


def test_the_picker_lists_only_the_branches_the_person_works_in(client, floor, make):
    sign_in(client, floor.staff)
    page = client.get("/counter/?lang=en").get_data(as_text=True)
    assert "Teller 1" in page and "CS 1" in page and "Open this counter" in page
    assert "MNL01" not in page  # only one branch: no branch choice
    admin = db.session.scalar(select(type(floor.staff)).where(type(floor.staff).role == Role.ADMIN))
    sign_in(client, admin)
    page = client.get("/counter/?lang=en").get_data(as_text=True)
    assert "JKT01" in page and "MNL01" in page  # an admin chooses the branch first


def test_other_branch_and_non_floor_roles_are_refused(client, floor, make):
    cid = floor.counter_id("Teller 1")
    outsider = make.user("jose2", branches=[floor.other_branch])
    cx = make.user("cx2", role=Role.CX_AGENT, branches=[floor.branch], services=[])
    db.session.commit()
    for person in (outsider, cx):
        sign_in(client, person)
        refused = client.get(f"/counter/JKT01/{cid}/?lang=en")
        assert refused.status_code == 403
        assert "You may not do this at this branch." in refused.get_data(as_text=True)
        error_of(
            client.get(f"/counter/JKT01/{cid}/state", headers={"Accept": "application/json"}),
            403,
            "forbidden",
        )
    sign_in(client, outsider)
    page = client.get("/counter/?lang=en").get_data(as_text=True)
    assert "Teller 1" not in page and "MNL01" in page
    # with a valid CSRF token (from the picker of the person's own branch) still refused
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    for path in ("open", "call-next", "close"):
        refused = client.post(
            f"/counter/JKT01/{cid}/{path}",
            headers={"Accept": "application/json", "X-CSRFToken": token},
        )
        error_of(refused, 403, "forbidden")
    assert floor.counters["Teller 1"].status == CounterStatus.CLOSED
    # a counter of another branch under this branch's code is not found
    mnl_counter = floor.other_branch.counters[0].id
    sign_in(client, floor.staff)
    assert client.get(f"/counter/JKT01/{mnl_counter}/").status_code == 404
    assert client.get(f"/counter/NOPE/{cid}/").status_code == 404


def test_csrf_is_enforced_on_page_actions(client, floor):
    s = screen_for(client, floor, floor.staff)
    error = error_of(s.post("open", token=False), 400, "csrf")
    assert "expired" in error["message"]
    assert floor.counters["Teller 1"].status == CounterStatus.CLOSED
    # a plain form without the token is refused too
    response = client.post(s.base + "open", data={})
    assert response.status_code == 400
    s.ok("open")


# --- actions ------------------------------------------------------------------------------


def test_a_whole_ticket_through_the_screen(client, floor):
    first, second = issue(floor), issue(floor)
    s = screen_for(client, floor, floor.staff)
    state = s.state()
    assert state["counter"]["status"] == "closed" and state["active"] is None
    numbers = [t["number"] for g in state["waiting"] for t in g["tickets"]]
    assert numbers == [first.number, second.number]

    answer = s.ok("open")
    assert answer["state"]["counter"]["status"] == "open"
    assert answer["state"]["counter"]["mine"] is True
    assert answer["state"]["counter"]["staff"] == floor.staff.display_name

    answer = s.ok("call-next")
    assert answer["called"] == first.id
    assert answer["message"] == f"Ticket {first.number} called."
    active = answer["state"]["active"]
    assert active["number"] == first.number and active["status"] == "called"
    assert answer["state"]["waiting_count"] == 1

    answer = s.ok(f"tickets/{first.id}/recall")
    assert answer["state"]["active"]["recall_count"] == 1
    assert answer["state"]["branch"]["recall_limit"] == floor.branch.recall_limit

    answer = s.ok(f"tickets/{first.id}/start")
    assert answer["state"]["active"]["status"] == "serving"

    answer = s.ok(
        f"tickets/{first.id}/finish", {"outcome": "cash_deposit", "note": "setor tunai 5 juta"}
    )
    assert answer["state"]["active"] is None
    done = db.session.get(Ticket, first.id)
    assert done.status == TicketStatus.FINISHED
    assert (done.outcome_code, done.notes) == ("cash_deposit", "setor tunai 5 juta")

    # call a particular ticket from the list, hold it, resume it, call it again, cancel it
    answer = s.ok(f"tickets/{second.id}/call")
    assert answer["state"]["active"]["number"] == second.number
    answer = s.ok(f"tickets/{second.id}/hold", {"note": "fetching KTP"})
    assert answer["state"]["active"] is None
    assert [t["number"] for t in answer["state"]["held"]] == [second.number]
    answer = s.ok(f"tickets/{second.id}/resume")
    assert answer["state"]["held"] == []
    targeted = answer["state"]["waiting"][0]
    assert targeted["key"] == "targeted" and targeted["tickets"][0]["targeted"] is True
    s.ok("call-next")
    answer = s.ok(f"tickets/{second.id}/cancel")
    assert db.session.get(Ticket, second.id).status == TicketStatus.CANCELLED

    answer = s.ok("pause", {"reason": "prayer", "text": "Dzuhur"})
    assert answer["state"]["counter"]["status"] == "paused"
    assert answer["state"]["counter"]["pause_reason"] == "Prayer (Dzuhur)"
    assert db.session.get(type(floor.counters["Teller 1"]), s_counter(floor)).pause_reason == (
        "prayer: Dzuhur"
    )
    answer = s.ok("open")
    assert answer["state"]["counter"]["status"] == "open"
    answer = s.ok("call-next")
    assert answer["called"] is None
    assert answer["message"] == "Nobody is waiting for this counter."
    answer = s.ok("close")
    assert answer["state"]["counter"]["status"] == "closed"
    assert answer["state"]["counter"]["staff"] is None


def test_an_answer_carries_the_journal_number_of_its_own_change(client, floor):
    """The screen orders the answers it gets by the branch's journal number (an answer older
    than the state shown is dropped), so an action's answer must carry the number its own
    change took, not the one from before it."""
    issue(floor)
    s = screen_for(client, floor, floor.staff)

    def last_entry():
        return db.session.scalar(
            select(func.max(JourneyEvent.seq)).where(JourneyEvent.branch_id == floor.branch.id)
        )

    before = s.state()["seq"]
    answer = s.ok("open")
    assert answer["state"]["seq"] == last_entry() > before
    answer = s.ok("call-next")
    ticket_id = answer["called"]
    assert answer["state"]["seq"] == last_entry() == s.state()["seq"]
    for action in ("recall", "start"):
        seq = s.state()["seq"]
        answer = s.ok(f"tickets/{ticket_id}/{action}")
        assert answer["state"]["seq"] == last_entry() > seq


def test_a_state_read_takes_the_active_tickets_visit_with_it(client, floor):
    """The ticket at the counter comes with its visit (whose customer the panel shows): no read
    of the visit on its own, and the signed-in user is read once (the sign-in's)."""
    issue(floor)
    s = screen_for(client, floor, floor.staff)
    s.ok("open")
    s.ok("call-next")
    with statements_sent() as sent:
        assert s.state()["active"] is not None
    assert [x for x in sent if re.search(r"\bFROM visits\b", x)] == []
    assert sum(bool(re.search(r"\bFROM users\b", x)) for x in sent) == 1


def s_counter(floor):
    return floor.counter_id("Teller 1")


def test_recall_past_the_limit_is_a_no_show_and_no_show_directly(client, floor):
    floor.branch.recall_limit = 1
    t1, t2 = issue(floor), issue(floor)
    s = screen_for(client, floor, floor.staff)
    s.ok("open")
    s.ok("call-next")
    assert s.ok(f"tickets/{t1.id}/recall")["state"]["active"]["recall_count"] == 1
    answer = s.ok(f"tickets/{t1.id}/recall")
    assert answer["message"] == f"Ticket {t1.number} marked as a no-show."
    assert db.session.get(Ticket, t1.id).status == TicketStatus.NO_SHOW
    s.ok("call-next")
    s.ok(f"tickets/{t2.id}/no-show")
    assert db.session.get(Ticket, t2.id).status == TicketStatus.NO_SHOW


def test_transfer_to_a_service_and_to_a_counter_with_a_note(client, floor):
    t = issue(floor)
    s = screen_for(client, floor, floor.staff)
    s.ok("open")
    s.ok("call-next")
    answer = s.ok(
        f"tickets/{t.id}/transfer",
        {"service": "cs", "note": "wants a new ATM card", "keep_place": True},
    )
    nxt = db.session.get(Ticket, answer["ticket"])
    assert (nxt.service.code, nxt.handover_note, nxt.number) == (
        "cs",
        "wants a new ATM card",
        t.number,
    )
    assert nxt.queue_since == t.visit.arrived_at

    # the CS counter's colleague sees the note in the waiting list
    cs = Screen(client, counter=floor.counter_id("CS 1"))
    sign_in(client, floor.staff2)
    cs.load()
    cs.ok("open")
    listed = [x for g in cs.state()["waiting"] for x in g["tickets"]]
    assert listed[0]["number"] == t.number
    assert listed[0]["transferred"] is True
    assert listed[0]["handover_note"] == "wants a new ATM card"
    cs.ok(f"tickets/{nxt.id}/call")
    to_kredit = {
        "counter_id": str(floor.counter_id("Kredit 1")),
        "note": "loan",
        "keep_place": False,
    }
    # a closed counter takes no transfers: said, not a 500
    error_of(cs.post(f"tickets/{nxt.id}/transfer", to_kredit), 409, "counter_closed")
    engine.open_counter(floor.counters["Kredit 1"], floor.manager, now=utcnow())
    db.session.commit()
    answer = cs.ok(f"tickets/{nxt.id}/transfer", to_kredit)
    third = db.session.get(Ticket, answer["ticket"])
    assert third.target_counter_id == floor.counter_id("Kredit 1")
    assert (third.handover_note, third.service.code) == ("loan", "cs")


def test_illegal_transitions_are_409_with_a_sentence_and_change_nothing(client, floor):
    t = issue(floor)
    s = screen_for(client, floor, floor.staff)
    s.ok("open")
    s.ok("pause", {"reason": "break"})
    error = error_of(s.post("call-next"), 409, "counter_not_open")
    assert error["message"] == "The counter is not open. Open it first."
    s.ok("open")
    s.ok("call-next")
    error = error_of(s.post(f"tickets/{t.id}/finish", {"outcome": "served"}), 409, "cannot_finish")
    assert error["message"] == "Only a ticket in service can be finished; start it first."
    assert db.session.get(Ticket, t.id).status == TicketStatus.CALLED
    error_of(s.post("call-next"), 409, "counter_busy")
    error_of(s.post("close"), 409, "counter_busy")
    # the same refusal in Indonesian
    s2 = Screen(client, counter=floor.counter_id("Teller 1"), lang="id")
    s2.load()
    error = error_of(s2.post(f"tickets/{t.id}/resume"), 409, "cannot_resume")
    assert error["message"] == "Hanya tiket yang ditahan yang dapat dilanjutkan."


def test_bad_input_is_422_with_a_sentence(client, floor):
    t = issue(floor)
    s = screen_for(client, floor, floor.staff)
    s.ok("open")
    error_of(s.post("pause", {"reason": "nap"}), 422, "bad_reason")
    s.ok("call-next")
    s.ok(f"tickets/{t.id}/start")
    error_of(s.post(f"tickets/{t.id}/finish", {"outcome": "DROP TABLE"}), 422, "bad_outcome")
    error_of(s.post(f"tickets/{t.id}/finish", {"outcome": ["x"]}), 422)
    error_of(s.post(f"tickets/{t.id}/finish", {"outcome": "served", "note": "x" * 2001}), 422)
    error_of(s.post(f"tickets/{t.id}/transfer", {}), 422, "missing_target")
    error_of(s.post(f"tickets/{t.id}/transfer", {"service": "nope"}), 422, "bad_service")
    error_of(s.post(f"tickets/{t.id}/transfer", {"counter_id": "abc"}), 422, "bad_counter")
    error_of(s.post(f"tickets/{t.id}/transfer", {"service": "teller"}), 422, "same_target")
    error_of(s.post(f"tickets/{t.id}/explode"), 404)
    error_of(s.post("tickets/999999/start"), 404, "bad_ticket")
    assert db.session.get(Ticket, t.id).status == TicketStatus.SERVING


def test_nobody_operates_another_persons_counter(client, floor):
    t = issue(floor)
    budi = screen_for(client, floor, floor.staff)
    budi.ok("open")
    budi.ok("call-next")
    siti = screen_for(client, floor, floor.staff2)
    state = siti.state()
    assert state["counter"]["can_operate"] is False and state["counter"]["mine"] is False
    error_of(siti.post(f"tickets/{t.id}/start"), 403, "not_your_counter")
    error_of(siti.post("open"), 409, "counter_taken")
    assert db.session.get(Ticket, t.id).status == TicketStatus.CALLED
    # a plain form post of a refused action shows the page with the message, not a 500
    response = client.post(siti.base + "open", data={"csrf_token": siti.token})
    assert response.status_code == 409
    assert "already open for someone else" in response.get_data(as_text=True)


def test_the_screen_renders_in_both_languages(client, floor):
    issue(floor, priority=Priority.ELDERLY)
    sign_in(client, floor.staff)
    cid = floor.counter_id("Teller 1")
    en = client.get(f"/counter/JKT01/{cid}/?lang=en").get_data(as_text=True)
    assert "Call next" in en and "Keyboard:" in en and '<html lang="en">' in en
    idn = client.get(f"/counter/JKT01/{cid}/?lang=id").get_data(as_text=True)
    assert "Panggil berikutnya" in idn and '<html lang="id">' in idn
    assert "Call next" not in idn


# --- the customer panel -------------------------------------------------------------------


def _past_visit(floor, customer, when, outcome, note, staff):
    """A finished visit of `customer` at `when`, served at Teller 2 by `staff`."""
    counter = floor.counters["Teller 2"]
    t = engine.issue_ticket(floor.branch, floor.branch.services[0], now=when, customer=customer)
    engine.open_counter(counter, staff, now=when)
    engine.call_ticket(t, counter, staff, now=when + timedelta(minutes=1))
    engine.start(t, staff, now=when + timedelta(minutes=2))
    engine.finish(t, staff, now=when + timedelta(minutes=7), outcome=outcome, note=note)
    engine.close_counter(counter, staff, now=when + timedelta(minutes=8))
    db.session.commit()
    return t


@pytest.fixture
def returning(floor):
    customer = Customer(phone="+6281234567890", name="Ayu Lestari", external_id="CIF-0042")
    db.session.add(customer)
    db.session.flush()
    _past_visit(
        floor,
        customer,
        datetime(2026, 1, 5, 2, 0, tzinfo=UTC),
        "cash_deposit",
        "setor",
        floor.staff2,
    )
    _past_visit(
        floor,
        customer,
        datetime(2026, 2, 9, 16, 30, tzinfo=UTC),  # 23:30 WIB: still 9 Feb in Jakarta
        "complaint",
        "card swallowed by ATM",
        floor.staff2,
    )
    return customer


def test_the_customer_panel_shows_a_returning_customers_history(client, floor, returning):
    t = issue(floor, customer=returning)
    s = screen_for(client, floor, floor.staff)
    s.ok("open")
    state = s.ok("call-next")["state"]
    assert state["active"]["id"] == t.id
    panel = state["customer"]
    assert panel["name"] == "Ayu Lestari"
    assert panel["phone"] == "+62 812 •••• 7890"
    assert panel["number"] == "CIF-0042"
    assert len(panel["visits"]) == 2  # the visit in progress is not history
    latest, earlier = panel["visits"]
    assert latest["date"].startswith("Feb 9, 2026")  # in the branch's time zone
    assert latest["branch"] == "JKT01"
    step = latest["steps"][0]
    assert step["staff"] == floor.staff2.display_name
    assert step["counter"] == "Teller 2"
    assert step["outcome"] == "Complaint recorded"
    assert step["notes"] == "card swallowed by ATM"
    assert earlier["steps"][0]["outcome"] == "Cash deposit"
    assert panel["ratings"] == [] and panel["cases"] == []


def test_an_anonymous_ticket_has_no_customer_panel(client, floor):
    issue(floor)
    s = screen_for(client, floor, floor.staff)
    s.ok("open")
    assert s.ok("call-next")["state"]["customer"] is None


def count_queries(fn):
    """`fn()`, and the statements it sends on this thread (`sqlcount.statements_sent`)."""
    with statements_sent() as sent:
        result = fn()
    return result, sent


def test_customer_history_takes_two_queries_whatever_the_number_of_visits(floor, returning):
    cid = returning.id
    history, statements = count_queries(lambda: customer_queries.customer_history(cid))
    assert len(history) == 2 and len(statements) == 2, statements
    for day in range(3, 9):
        _past_visit(
            floor,
            returning,
            datetime(2026, 2, day, 3, 0, tzinfo=UTC),
            "served",
            f"visit {day}",
            floor.staff,
        )
    db.session.expire_all()
    history, statements = count_queries(lambda: customer_queries.customer_history(cid, limit=5))
    assert len(history) == 5 and len(statements) == 2
    assert [v.arrived_at for v in history] == sorted((v.arrived_at for v in history), reverse=True)
    assert customer_queries.customer_history(10**6) == []


def test_the_state_endpoint_reads_in_a_bounded_number_of_queries(client, floor, returning):
    s = screen_for(client, floor, floor.staff)
    s.ok("open")
    issue(floor, customer=returning)
    s.ok("call-next")
    for _ in range(3):
        issue(floor)
    _, few = count_queries(s.state)
    for _ in range(12):
        issue(floor)
        issue(floor, "cs")
    _past_visit(
        floor, returning, datetime(2026, 2, 20, 3, 0, tzinfo=UTC), "served", "x", floor.staff2
    )
    _, many = count_queries(s.state)
    assert len(many) <= len(few) + 1, (len(few), len(many))
    assert len(many) < 25


def test_phone_masking():
    assert mask_phone("+6281234567890") == "+62 812 •••• 7890"
    assert mask_phone("+639171234567") == "+63 917 ••• 4567"
    assert mask_phone(None) is None
    assert "1234" not in mask_phone("+12345")
