"""Webhooks: delivery rows written in the unit of work of the change, signed POSTs to a real
local HTTP server that checks the HMAC, retries with backoff, a lease, no double delivery
when two runs race, and replay from the admin pages."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from queue_app.accounts.models import Role
from queue_app.alerts import services as alerts
from queue_app.alerts.models import Metric
from queue_app.cases import services as cases
from queue_app.core import sealing
from queue_app.extensions import db
from queue_app.tickets import services as engine
from queue_app.webhooks import destinations
from queue_app.webhooks import services as webhooks
from queue_app.webhooks.jobs import deliver_webhooks
from queue_app.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

from .apihelp import fast_passwords
from .caseshelp import build_ladder, customer, respond
from .sqlcount import first_table, statements_sent
from .webhookserver import Receiver, serve

T0 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Tuesday 10:00 in Jakarta
M = timedelta(minutes=1)


@pytest.fixture
def receiver():
    rec = Receiver()
    server, thread = serve(rec)
    yield rec
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def hook(app, receiver):
    """hook(events, branch=None) -> the endpoint, its secret given to the receiver."""

    def make_hook(events, branch=None, url=None):
        endpoint, secret = webhooks.create_endpoint(
            url=url or receiver.url, events=events, branch=branch, now=T0, name="warehouse"
        )
        db.session.commit()
        receiver.secret = secret
        return endpoint

    return make_hook


@pytest.fixture
def floor(make, monkeypatch):
    fast_passwords(monkeypatch)
    branch = make.branch("JKT01", counters=[("Teller 1", ["teller"])])
    other = make.branch("SBY01")
    staff = make.user("budi", branches=[branch])
    db.session.commit()
    return branch, other, staff


def sign_in(client, user):
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True


def csrf_of(page) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert match
    return match.group(1)


def deliveries() -> list[WebhookDelivery]:
    db.session.expire_all()
    return list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def run(app, now) -> dict:
    """The job, in its own application context and session (as the scheduler runs it)."""
    db.session.commit()
    return deliver_webhooks(app, now)


def serve_one(branch, staff, at, person=None):
    """Issue, call, start and finish one ticket (each step its own unit of work)."""
    service = next(s for s in branch.services if s.code == "teller")
    counter = branch.counters[0]
    ticket = engine.issue_ticket(branch, service, now=at, customer=person)
    db.session.commit()
    engine.open_counter(counter, staff, now=at)
    db.session.commit()
    called = engine.call_next(counter, staff, now=at + M)
    db.session.commit()
    engine.start(called, staff, now=at + 2 * M)
    db.session.commit()
    engine.finish(called, staff, now=at + 5 * M, outcome="done")
    db.session.commit()
    return ticket


def test_a_call_and_a_finish_are_delivered_signed(app, floor, hook, receiver):
    branch, _other, staff = floor
    hook(["ticket.called", "ticket.finished"])
    person = customer(phone="+6281234567890", email="rina@example.com", name="Ibu Rina")
    ticket = serve_one(branch, staff, T0, person)
    rows = deliveries()
    assert [(d.event, d.status) for d in rows] == [
        ("ticket.called", DeliveryStatus.PENDING),
        ("ticket.finished", DeliveryStatus.PENDING),
    ]
    assert run(app, T0 + 6 * M) == {"claimed": 2, "delivered": 2, "retry": 0, "failed": 0}
    assert len(receiver.received) == 2
    for got, row in zip(receiver.received, deliveries(), strict=True):
        assert got.signature_ok
        assert got.path == "/hooks/queue"
        assert got.headers["Content-Type"].startswith("application/json")
        assert got.headers["X-QueueApp-Event"] == row.event
        assert got.headers["X-QueueApp-Delivery"] == row.uid == got.json["id"]
        assert got.headers["X-QueueApp-Timestamp"] == str(int((T0 + 6 * M).timestamp()))
        assert got.json["event"] == row.event and got.json["branch"] == "JKT01"
        assert got.json["data"]["ticket"]["id"] == ticket.id
        # no personal data leaves in a webhook
        for secret in ("Rina", "6281234567890", "rina@example.com"):
            assert secret not in got.body.decode()
        assert (row.status, row.attempts, row.last_status_code) == (
            DeliveryStatus.DELIVERED,
            1,
            200,
        )
        assert row.delivered_at == T0 + 6 * M
    called, finished = (r.json for r in receiver.received)
    assert called["data"]["ticket"]["called_at"] == "2026-03-03T03:01:00Z"
    assert called["data"]["counter"]["name"] == "Teller 1"
    assert finished["data"]["ticket"]["outcome"] == "done"
    assert finished["occurred_at"] == "2026-03-03T03:05:00Z"
    # nothing is due any more
    assert run(app, T0 + 60 * M)["claimed"] == 0


def test_a_wrong_secret_fails_the_receivers_check(app, floor, hook, receiver):
    branch, _other, staff = floor
    hook(["ticket.finished"])
    receiver.secret = "whsec_not-the-one"
    serve_one(branch, staff, T0)
    run(app, T0 + 6 * M)
    assert [r.signature_ok for r in receiver.received] == [False]


def test_nothing_is_written_for_a_change_that_rolls_back(app, floor, hook):
    branch, _other, staff = floor
    hook(["ticket.called", "ticket.finished"])
    service = branch.services[0]
    engine.issue_ticket(branch, service, now=T0)
    engine.open_counter(branch.counters[0], staff, now=T0)
    db.session.commit()
    engine.call_next(branch.counters[0], staff, now=T0 + M)
    db.session.flush()
    db.session.rollback()
    assert deliveries() == []


def test_only_the_endpoints_that_want_the_event_and_branch_get_it(app, floor, hook, make):
    branch, other, staff = floor
    mine = hook(["ticket.called"], branch=branch)
    hook(["ticket.called"], branch=other)  # another branch
    hook(["ticket.finished"])  # another event
    off = hook(["ticket.called"])
    webhooks.update_endpoint(
        off, url=off.url, events=off.events, active=False, now=T0, name=off.name
    )
    db.session.commit()
    serve_one(branch, staff, T0)
    got = [(d.endpoint_id, d.event) for d in deliveries()]
    assert (mine.id, "ticket.called") in got
    assert sorted(e for _i, e in got) == ["ticket.called", "ticket.finished"]
    assert all(i != off.id for i, _e in got)


def test_a_failure_is_retried_with_backoff_then_delivered(app, floor, hook, receiver):
    branch, _other, staff = floor
    hook(["ticket.finished"])
    serve_one(branch, staff, T0)
    receiver.statuses = [500, 503]
    t1 = T0 + 10 * M
    assert run(app, t1)["retry"] == 1
    [row] = deliveries()
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == (
        DeliveryStatus.PENDING,
        1,
        500,
        "HTTP 500",
    )
    assert row.next_try_at == t1 + 1 * M  # 60 s after the first failure
    assert run(app, t1 + 1 * M - timedelta(seconds=1))["claimed"] == 0  # not yet
    t2 = t1 + 1 * M
    assert run(app, t2)["retry"] == 1
    [row] = deliveries()
    assert row.next_try_at == t2 + 5 * M  # then 5 min
    assert run(app, t2 + 5 * M)["delivered"] == 1
    [row] = deliveries()
    assert (row.status, row.attempts, row.delivered_at) == (
        DeliveryStatus.DELIVERED,
        3,
        t2 + 5 * M,
    )
    # three attempts, one delivery id, each signed with its own timestamp
    assert len(set(receiver.uids())) == 1 and len(receiver.received) == 3
    assert all(r.signature_ok for r in receiver.received)
    assert len({r.headers["X-QueueApp-Timestamp"] for r in receiver.received}) == 3


def test_after_the_last_attempt_it_fails_and_a_replay_sends_it_again(
    app, floor, hook, receiver, client, make
):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 2
    branch, _other, staff = floor
    hook(["ticket.finished"])
    serve_one(branch, staff, T0)
    receiver.statuses = [500, 404]
    run(app, T0 + 10 * M)
    assert run(app, T0 + 11 * M)["failed"] == 1
    [row] = deliveries()
    assert (row.status, row.attempts, row.last_status_code) == (DeliveryStatus.FAILED, 2, 404)
    assert run(app, T0 + 999 * M)["claimed"] == 0  # failed: never sent by itself again
    first_body = receiver.received[0].body

    admin = make.user("root", role=Role.ADMIN)
    db.session.commit()
    sign_in(client, admin)
    page = client.get("/admin/webhooks/deliveries?status=failed")
    assert page.status_code == 200 and row.uid in page.get_data(as_text=True)
    token = csrf_of(page)
    response = client.post(
        f"/admin/webhooks/deliveries/{row.id}/replay", data={"csrf_token": token}
    )
    assert response.status_code == 302
    [row] = deliveries()
    assert (row.status, row.max_attempts, row.replays) == (DeliveryStatus.PENDING, 3, 1)
    # a second replay of a delivery that is not failed (any more) is refused
    again = client.post(f"/admin/webhooks/deliveries/{row.id}/replay", data={"csrf_token": token})
    assert again.status_code == 409
    db.session.commit()
    assert deliver_webhooks(app, datetime.now(UTC))["delivered"] == 1
    [row] = deliveries()
    assert row.status == DeliveryStatus.DELIVERED and row.attempts == 3
    # the same payload and delivery id as the first attempts
    assert receiver.received[-1].body == first_body
    assert receiver.uids() == [row.uid] * 3


def test_a_timeout_or_a_refused_connection_is_a_failed_attempt(app, floor, hook, receiver):
    app.config["WEBHOOK_TIMEOUT_S"] = 0.3
    branch, _other, staff = floor
    hook(["ticket.finished"])
    nobody = hook(["ticket.called"], url="http://127.0.0.1:9/nobody")  # discard port: refused
    serve_one(branch, staff, T0)
    receiver.delay_s = 1.0
    counts = run(app, T0 + 10 * M)
    assert counts == {"claimed": 2, "delivered": 0, "retry": 2, "failed": 0}
    rows = {d.endpoint_id: d for d in deliveries()}
    assert rows[nobody.id].last_status_code is None
    assert rows[nobody.id].last_error.startswith("ConnectionRefusedError")
    [slow] = [d for d in rows.values() if d.endpoint_id != nobody.id]
    assert slow.last_status_code is None and slow.last_error.startswith("TimeoutError")


def test_a_claimed_delivery_whose_sender_died_comes_back_after_the_lease(
    app, floor, hook, receiver
):
    branch, _other, staff = floor
    hook(["ticket.finished"])
    serve_one(branch, staff, T0)
    t1 = T0 + 10 * M
    with app.app_context():
        [claimed] = webhooks.claim_due(now=t1)  # committed claim, then the process "dies"
    lease = timedelta(seconds=app.config["WEBHOOK_LEASE_S"])
    assert run(app, t1 + lease - timedelta(seconds=1))["claimed"] == 0
    assert run(app, t1 + lease)["delivered"] == 1
    assert receiver.uids() == [claimed.uid]


def test_two_runs_at_once_deliver_each_once(app, floor, hook, receiver, is_postgres):
    """Two job runs race over the same due rows: `FOR UPDATE SKIP LOCKED` (PostgreSQL) or
    `BEGIN IMMEDIATE` (SQLite) gives each row to one of them."""
    branch, _other, staff = floor
    hook(["ticket.called", "ticket.finished"])
    for n in range(6):
        serve_one(branch, staff, T0 + n * 10 * M)
    total = len(deliveries())
    assert total == 12
    receiver.delay_s = 0.05
    db.session.commit()
    barrier = threading.Barrier(2)
    results, errors = [], []

    def race():
        try:
            barrier.wait(timeout=10)
            results.append(deliver_webhooks(app, T0 + 120 * M))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sum(r["delivered"] for r in results) == total
    assert sorted(receiver.uids()) == sorted(d.uid for d in deliveries())  # each exactly once
    assert len(set(receiver.uids())) == total
    assert {d.status for d in deliveries()} == {DeliveryStatus.DELIVERED}


def test_feedback_received_is_a_webhook_in_its_unit_of_work(app, make, hook, monkeypatch):
    fast_passwords(monkeypatch)
    people = build_ladder(make)
    db.session.commit()
    hook(["feedback.received"])
    person = customer(name="Ibu Rina", phone="+6281234567890")
    response = respond(
        make, people.branch, now=T0, nps=3, comment="Pelayanan Ibu Rina buruk", person=person
    )
    db.session.commit()
    [row] = deliveries()
    assert row.event == "feedback.received" and row.branch_id == people.branch.id
    data = row.payload["data"]["response"]
    assert (data["id"], data["nps"], data["has_comment"]) == (response.id, 3, True)
    text = json.dumps(row.payload)
    assert "Rina" not in text and "buruk" not in text and "628" not in text


def test_case_escalated_is_a_webhook_in_its_unit_of_work(app, make, hook, monkeypatch):
    fast_passwords(monkeypatch)
    people = build_ladder(make)
    db.session.commit()
    hook(["case.escalated"])
    respond(make, people.branch, now=T0, nps=2)
    db.session.commit()
    assert deliveries() == []
    changes = cases.escalate_due(T0 + timedelta(hours=48, minutes=1))
    db.session.commit()
    [change] = changes
    [row] = deliveries()
    assert row.event == "case.escalated"
    assert row.payload["data"]["case"]["id"] == change.case_id
    assert (row.payload["data"]["from_level"], row.payload["data"]["to_level"]) == (1, 2)


def test_alert_raised_is_a_webhook_in_its_unit_of_work(app, floor, hook):
    branch, _other, _staff = floor
    hook(["alert.raised"])
    teller = next(s for s in branch.services if s.code == "teller")
    alerts.create_rule(
        db.session,
        branch,
        metric=Metric.LONGEST_WAIT_S,
        service=teller,
        raise_at=900,
        clear_at=600,
        now=T0,
    )
    db.session.commit()
    engine.issue_ticket(branch, teller, now=T0)
    db.session.commit()
    alerts.evaluate_branch(db.session, branch, T0 + 15 * M)
    db.session.commit()
    [row] = deliveries()
    assert row.event == "alert.raised"
    assert row.payload["data"]["alert"]["metric"] == "longest_wait_s"
    assert row.payload["data"]["alert"]["value"] == 900
    # a second evaluation of the same episode raises nothing new
    alerts.evaluate_branch(db.session, branch, T0 + 16 * M)
    db.session.commit()
    assert len(deliveries()) == 1
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


def test_a_call_costs_one_statement_more_for_the_webhooks(app, floor):
    """The webhooks' share of a call: one lookup of the active endpoints when the process's
    list of them is read again (here: the first call), nothing else when none wants it (later
    calls: nothing at all, `test_without_endpoints_calls_and_finishes_read_them_once`)."""
    from sqlalchemy import event

    from queue_app.core.events import in_transaction_signal
    from queue_app.webhooks.receivers import on_journal_recorded

    branch, _other, staff = floor
    counter = branch.counters[0]
    service = branch.services[0]
    for n in range(3):
        engine.issue_ticket(branch, service, now=T0 + n * M)
    engine.open_counter(counter, staff, now=T0)
    db.session.commit()

    def statements(fn) -> list:
        sent = []

        def before(_conn, _cursor, statement, *_args):
            if not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE: not a query
                sent.append(statement)

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            fn()
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        return sent

    def call(at) -> list:
        active = engine.active_ticket(counter)
        if active is not None:
            engine.cancel(active, staff, now=at)
            db.session.commit()
        db.session.expire_all()
        return statements(lambda: (engine.call_next(counter, staff, now=at), db.session.commit()))

    webhooks.clear_cache()
    journal = in_transaction_signal("journal.recorded")
    journal.disconnect(on_journal_recorded)
    try:
        without = call(T0 + 10 * M)
    finally:
        journal.connect(on_journal_recorded)
    with_webhooks = call(T0 + 11 * M)
    assert len(with_webhooks) == len(without) + 1
    assert next(q for q in with_webhooks if q not in without).startswith(
        "SELECT webhook_endpoints."
    )
    assert deliveries() == []


# --- the active endpoints, cached per process (services.EndpointCache) --------------------------


@pytest.fixture
def clock(app, monkeypatch):
    """The endpoint cache's clock (seconds), moved by hand: `clock[0] += 2`. The cache starts
    empty and keeps the list 2 s."""
    monkeypatch.setitem(app.config, "WEBHOOK_ENDPOINTS_CACHE_S", 2.0)
    now = [1000.0]
    monkeypatch.setattr(webhooks.endpoint_cache(app), "clock", lambda: now[0])
    webhooks.clear_cache(app)
    yield now
    webhooks.clear_cache(app)


def endpoint_reads(fn) -> int:
    """How many SELECTs of webhook_endpoints `fn()` sends from this thread."""
    with statements_sent() as sent:
        fn()
    return sum(
        1
        for s in sent
        if s.lstrip().upper().startswith("SELECT") and first_table(s) == "webhook_endpoints"
    )


def behind_the_cache(statement) -> None:
    """A change made by another process: its own connection, no ORM session of this one."""
    db.session.commit()
    with db.engine.begin() as conn:
        conn.execute(statement)


def other_process_adds(url: str, events: list[str]) -> int:
    table = WebhookEndpoint.__table__
    db.session.commit()
    with db.engine.begin() as conn:
        return conn.execute(
            insert(table)
            .values(
                name="added elsewhere",
                url=url,
                secret=sealing.seal("whsec_elsewhere", webhooks.SEALED_AS),
                events=events,
                branch_id=None,
                active=True,
                created_at=T0,
                updated_at=T0,
            )
            .returning(table.c.id)
        ).scalar_one()


def test_without_endpoints_calls_and_finishes_read_them_once(app, floor, clock):
    """The common case: no endpoint. The first call reads the (empty) list; the calls and
    finishes after it send no statement for the webhooks."""
    branch, _other, staff = floor
    reads = [
        endpoint_reads(lambda n=n: serve_one(branch, staff, T0 + n * 10 * M)) for n in range(3)
    ]
    assert reads == [1, 0, 0]  # 3 calls and 3 finishes; without the cache: [2, 2, 2]
    assert deliveries() == []


def test_an_endpoint_made_or_changed_in_this_process_counts_at_once(
    app, floor, clock, client, make
):
    """Created on the admin page (its own request and session), then turned off through the
    service: the next call sees each change, with the clock standing still."""
    branch, _other, staff = floor
    serve_one(branch, staff, T0)  # the empty list is cached
    admin = make.user("root", role=Role.ADMIN)
    db.session.commit()
    sign_in(client, admin)
    response = client.post(
        "/admin/webhooks",
        data={
            "csrf_token": csrf_of(client.get("/admin/webhooks")),
            "url": "http://127.0.0.1:9/hooks",
            "events": ["ticket.called"],
        },
    )
    assert response.status_code == 201
    assert endpoint_reads(lambda: serve_one(branch, staff, T0 + 10 * M)) == 1
    [row] = deliveries()
    assert row.event == "ticket.called"
    # and cached again: the next call writes its delivery without reading the endpoints
    assert endpoint_reads(lambda: serve_one(branch, staff, T0 + 20 * M)) == 0
    assert len(deliveries()) == 2
    endpoint = db.session.get(WebhookEndpoint, row.endpoint_id)
    webhooks.update_endpoint(
        endpoint, url=endpoint.url, events=endpoint.events, active=False, now=T0, name=""
    )
    db.session.commit()
    serve_one(branch, staff, T0 + 30 * M)
    assert len(deliveries()) == 2


def test_an_endpoint_of_a_change_that_rolls_back_is_not_kept(app, floor, clock, receiver):
    """A session that made an endpoint reads its own list (with the endpoint) until its
    transaction ends; what it read is not kept for the others: rolled back, the endpoint never
    existed, and no later call writes a delivery for it (its foreign key would fail the call)."""
    branch, _other, staff = floor
    serve_one(branch, staff, T0)  # the empty list is cached
    webhooks.create_endpoint(url=receiver.url, events=["ticket.called"], now=T0)
    # its own view: the endpoint is there
    assert (
        len(webhooks.record(db.session, "ticket.called", branch_id=branch.id, data={}, now=T0)) == 1
    )
    db.session.rollback()
    assert endpoint_reads(lambda: serve_one(branch, staff, T0 + 10 * M)) == 1
    assert endpoint_reads(lambda: serve_one(branch, staff, T0 + 20 * M)) == 0
    assert deliveries() == []


def test_an_endpoint_added_by_another_process_counts_after_the_interval(app, floor, clock):
    branch, _other, staff = floor
    serve_one(branch, staff, T0)  # the empty list is cached at 1000.0
    added = other_process_adds("http://127.0.0.1:9/hooks", ["ticket.called", "ticket.finished"])
    clock[0] += 1.9
    serve_one(branch, staff, T0 + 10 * M)
    assert deliveries() == []  # not seen yet: the list is 1.9 s old
    clock[0] += 0.1
    serve_one(branch, staff, T0 + 20 * M)
    assert [(d.endpoint_id, d.event) for d in deliveries()] == [
        (added, "ticket.called"),
        (added, "ticket.finished"),
    ]


def test_a_delivery_written_from_a_stale_list_is_not_sent_to_an_endpoint_turned_off(
    app, floor, hook, receiver, clock
):
    """Another process turns the endpoint off; this one's list is a moment old and still
    writes a delivery for it: the job does not send it."""
    branch, _other, staff = floor
    endpoint = hook(["ticket.finished"])
    serve_one(branch, staff, T0)  # the list, with the endpoint, is cached
    behind_the_cache(
        update(WebhookEndpoint.__table__)
        .where(WebhookEndpoint.__table__.c.id == endpoint.id)
        .values(active=False)
    )
    serve_one(branch, staff, T0 + 10 * M)
    assert [d.status for d in deliveries()] == [DeliveryStatus.PENDING] * 2  # the stale list
    assert run(app, T0 + 30 * M) == {"claimed": 0, "delivered": 0, "retry": 0, "failed": 0}
    assert receiver.received == []
    assert [(d.status, d.last_error) for d in deliveries()] == [
        (DeliveryStatus.FAILED, "the webhook is turned off")
    ] * 2


def test_the_sender_reads_the_endpoint_afresh_not_from_its_session(
    app, floor, hook, receiver, clock
):
    """Objects outlive commits in a session (`expire_on_commit=False`): a sender whose session
    still holds the endpoint as it was (active) must not trust it."""
    branch, _other, staff = floor
    endpoint = hook(["ticket.finished"])  # in this session, active
    serve_one(branch, staff, T0)
    behind_the_cache(
        update(WebhookEndpoint.__table__)
        .where(WebhookEndpoint.__table__.c.id == endpoint.id)
        .values(active=False)
    )
    assert endpoint.active  # what this session still believes
    counts = webhooks.deliver_due(now=T0 + 10 * M)
    assert counts["claimed"] == 0 and receiver.received == []
    [row] = deliveries()
    assert (row.status, row.last_error) == (DeliveryStatus.FAILED, "the webhook is turned off")


def test_a_list_read_while_an_endpoint_changes_is_not_kept(app_ctx, clock, monkeypatch):
    """Another thread's change commits (and invalidates) while this thread reads the list: the
    read may have missed it, so its caller uses it but the cache does not keep it."""
    cache = webhooks.endpoint_cache(app_ctx)
    read = webhooks._read_active

    def read_while_another_thread_commits(session):
        endpoints = read(session)
        cache.invalidate()
        return endpoints

    monkeypatch.setattr(webhooks, "_read_active", read_while_another_thread_commits)
    assert cache.get(db.session, 2.0) == ()
    monkeypatch.setattr(webhooks, "_read_active", read)
    assert endpoint_reads(lambda: cache.get(db.session, 2.0)) == 1  # read again, then kept
    assert endpoint_reads(lambda: cache.get(db.session, 2.0)) == 0


# --- where a webhook may go (webhooks/destinations.py) ------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # this machine: the database, Redis, /metrics
        "::1",
        "10.1.2.3",  # private networks
        "172.16.0.9",
        "192.168.1.20",
        "169.254.169.254",  # a cloud's metadata service (link-local)
        "fe80::1",
        "fd00::5",  # unique local IPv6
        "100.64.0.1",  # shared address space (carrier NAT)
        "0.0.0.0",  # unspecified
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "::ffff:10.0.0.1",  # an IPv4-mapped private address
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
    ],
)
def test_a_destination_that_is_not_public_is_refused(app_ctx, address, monkeypatch):
    monkeypatch.setitem(app_ctx.config, "WEBHOOK_ALLOWED_NETWORKS", "")
    with pytest.raises(destinations.Refused, match="not a public address"):
        destinations.check_when_saved(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "203.190.5.10", "2001:4860:4860::8888"])
def test_a_public_destination_is_allowed(app_ctx, address, monkeypatch):
    monkeypatch.setitem(app_ctx.config, "WEBHOOK_ALLOWED_NETWORKS", "")
    destinations.check_when_saved(address)


def test_the_networks_named_by_the_operator_are_allowed(app_ctx, monkeypatch):
    monkeypatch.setitem(app_ctx.config, "WEBHOOK_ALLOWED_NETWORKS", "10.20.0.0/16, fd00::/8")
    destinations.check_when_saved("10.20.30.40")
    destinations.check_when_saved("fd00::5")
    with pytest.raises(destinations.Refused):
        destinations.check_when_saved("10.21.0.1")
    with pytest.raises(destinations.Refused):
        destinations.check_when_saved("localhost")  # a name that is always this machine


def test_a_wrong_network_in_the_setting_stops_the_start():
    from flask import Flask

    from queue_app.webhooks.receivers import init_webhooks

    bare = Flask(__name__)
    bare.config["WEBHOOK_ALLOWED_NETWORKS"] = "10.0.0.0/8,10.0.0.300/8"
    with pytest.raises(ValueError, match=r"10\.0\.0\.300"):
        init_webhooks(bare)


def test_a_delivery_to_a_destination_not_allowed_is_a_failed_attempt_and_nothing_leaves(
    app, floor, hook, receiver, monkeypatch
):
    """The endpoint was saved while this machine was allowed; the operator then took it out:
    the next delivery is refused before any connection."""
    branch, _other, staff = floor
    hook(["ticket.called"])
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", "")
    serve_one(branch, staff, T0)
    assert run(app, T0 + 10 * M) == {"claimed": 1, "delivered": 0, "retry": 1, "failed": 0}
    [row] = deliveries()
    assert row.last_status_code is None
    assert row.last_error.startswith("refused: 127.0.0.1 is 127.0.0.1, not a public address")
    assert receiver.received == []


@pytest.fixture
def dns(monkeypatch):
    """A resolver for the names of these tests (there is no DNS server here): name -> the
    answers to its successive lookups (the last one repeats), every lookup counted; other
    names (and addresses) resolve as usual."""
    import socket

    real = socket.getaddrinfo
    answers: dict[str, list[list[str]]] = {}
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        given = answers[host][min(lookups.count(host), len(answers[host]) - 1)]
        lookups.append(host)
        family = {True: socket.AF_INET6, False: socket.AF_INET}
        return [(family[":" in a], socket.SOCK_STREAM, 6, "", (a, port)) for a in given]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


def test_a_delivery_connects_to_the_address_it_checked_under_the_hosts_name(
    app, floor, hook, receiver, dns
):
    """The name answers the receiver's address, then another (DNS rebinding: a check passed,
    and the connection would go elsewhere). One lookup is made: the address checked is the
    one connected to, and the request still names the host."""
    answers, lookups = dns
    branch, _other, staff = floor
    port = receiver.url.split(":")[2].split("/")[0]
    answers["hooks.bank.test"] = [["127.0.0.1"], ["127.0.0.2"]]  # nothing listens on .2
    hook(["ticket.called"], url=f"http://hooks.bank.test:{port}/hooks/queue")
    serve_one(branch, staff, T0)
    assert run(app, T0 + 10 * M)["delivered"] == 1
    assert lookups == ["hooks.bank.test"]
    [got] = receiver.received
    assert got.headers["Host"] == f"hooks.bank.test:{port}" and got.signature_ok


def test_a_name_with_one_address_not_allowed_among_its_answers_is_refused(
    app, floor, hook, receiver, dns, monkeypatch
):
    answers, _lookups = dns
    branch, _other, staff = floor
    port = receiver.url.split(":")[2].split("/")[0]
    answers["hooks.bank.test"] = [["93.184.216.34", "127.0.0.1"]]
    hook(["ticket.called"], url=f"http://hooks.bank.test:{port}/hooks/queue")
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", "")
    serve_one(branch, staff, T0)
    assert run(app, T0 + 10 * M)["retry"] == 1
    [row] = deliveries()
    assert "hooks.bank.test is 127.0.0.1, not a public address" in row.last_error
    assert receiver.received == []


# --- the secrets, sealed at rest (core/sealing.py) -----------------------------------------------


def test_after_secret_key_changes_a_delivery_needs_the_earlier_key_in_the_fallbacks(
    app, floor, hook, receiver, monkeypatch
):
    """Sealed under the key of then: with a new SECRET_KEY alone the secret cannot be read, the
    attempt fails saying why and nothing is sent unsigned; with the earlier key listed in
    SECRET_KEY_FALLBACKS it is delivered, signed with the same secret."""
    branch, _other, staff = floor
    hook(["ticket.called"])
    serve_one(branch, staff, T0)
    earlier = app.config["SECRET_KEY"]
    monkeypatch.setitem(app.config, "SECRET_KEY", "a-new-secret-key-after-rotation")
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [])
    assert run(app, T0 + 10 * M) == {"claimed": 1, "delivered": 0, "retry": 1, "failed": 0}
    [row] = deliveries()
    assert row.last_error.startswith("the webhook's secret cannot be read: sealed under another")
    assert receiver.received == []
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [earlier])
    assert run(app, row.next_try_at)["delivered"] == 1
    assert [r.signature_ok for r in receiver.received] == [True]


def test_the_migration_seals_the_secrets_already_there_and_opens_them_going_back(tmp_path):
    import flask_migrate
    from sqlalchemy import create_engine, text

    from queue_app import create_app

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    engine = create_engine(url)
    read = text("SELECT secret FROM webhook_endpoints")
    try:
        with old.app_context():
            flask_migrate.upgrade(revision="0013")
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO webhook_endpoints (name, url, secret, events, active, "
                        "created_at, updated_at) VALUES ('DWH', 'https://dwh.bank.example/', "
                        "'whsec_from_before', '[\"ticket.called\"]', 1, '2026-01-01 00:00:00', "
                        "'2026-01-01 00:00:00')"
                    )
                )
            flask_migrate.upgrade(revision="0014")
            with engine.connect() as conn:
                sealed = conn.execute(read).scalar_one()
            assert sealed.startswith("fernet:") and "whsec_from_before" not in sealed
            assert sealing.unseal(sealed, webhooks.SEALED_AS) == "whsec_from_before"
            flask_migrate.downgrade(revision="0013")
            with engine.connect() as conn:
                assert conn.execute(read).scalar_one() == "whsec_from_before"
    finally:
        engine.dispose()
        with old.app_context():
            db.engine.dispose()
