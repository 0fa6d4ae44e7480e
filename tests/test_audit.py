"""The audit log (queue_app/audit/): complete by construction (every committed mutating
request of a member of staff, in the same transaction; every refusal in its own), readable
at /admin/audit and with `flask audit show`, without secrets."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import g
from sqlalchemy import func, select

from queue_app import create_app
from queue_app.accounts.models import Role, User
from queue_app.api.auth import bearer_user
from queue_app.audit import services as audit
from queue_app.audit.models import AuditEntry
from queue_app.core.types import utcnow
from queue_app.extensions import db

from .apihelp import API, IsolatedClient, fast_passwords, issue, ok, post
from .test_devices import signed_in, text_of


def _entries(**where):
    db.session.remove()  # read what the requests committed
    query = select(AuditEntry).order_by(AuditEntry.id)
    for key, value in where.items():
        query = query.where(getattr(AuditEntry, key) == value)
    return db.session.scalars(query).all()


def test_every_committed_api_action_of_staff_has_its_entry(client, floor):
    counter = floor.counter_id("Teller 1")
    staff_id, branch_id = floor.staff.id, floor.branch.id
    issue(client)  # an anonymous ticket: a customer's action, not audited
    assert _entries() == []
    opened = post(client, f"/counters/{counter}/open", floor.h_staff)
    ok(opened)
    called = ok(post(client, f"/counters/{counter}/call-next", floor.h_staff))
    ticket = called["ticket"]["id"] if "ticket" in called else called["id"]
    ok(post(client, f"/tickets/{ticket}/start", floor.h_staff))
    ok(post(client, f"/tickets/{ticket}/finish", floor.h_staff, json={"outcome": "done"}))
    entries = _entries()
    assert [e.action for e in entries] == [
        "counter.open",
        "ticket.call_next",
        "ticket.start",
        "ticket.finish",
    ]
    first = entries[0]
    assert (first.actor_id, first.actor_username, first.actor_role) == (
        staff_id,
        "budi",
        "staff",
    )
    assert first.via == "api" and first.outcome == "ok" and first.method == "POST"
    assert (first.target_type, first.target_id) == ("counter", str(counter))
    assert first.branch_id == branch_id
    # the request's id, as the logs and the response's header carry it
    assert first.request_id and first.request_id == opened.headers.get("X-Request-ID")
    assert first.ip == "127.0.0.0/24"  # the network, not the host
    assert entries[3].target_type == "ticket" and entries[3].target_id == str(ticket)
    assert entries[3].details == {"fields": ["outcome"], "values": {"outcome": "done"}}
    # reading changes nothing and is not an action
    ok(client.get(f"{API}/branches/JKT01/counters", headers=floor.h_staff))
    assert len(_entries()) == 4


def test_a_refused_or_failed_action_leaves_no_ok_entry(client, floor):
    counter = floor.counter_id("Teller 1")
    waiting = issue(client)
    # a domain error (409) rolls the whole request back: the entry with it
    response = post(client, f"/tickets/{waiting['id']}/finish", floor.h_staff)
    assert response.status_code == 409
    assert _entries() == []
    # someone of another branch: refused, and the refusal is recorded on its own
    response = post(client, f"/counters/{counter}/open", floor.h_other)
    assert response.status_code == 403
    [entry] = _entries()
    assert entry.outcome == "refused" and entry.status == 403
    assert entry.actor_username == "jose" and entry.action == "counter.open"
    assert (entry.target_type, entry.target_id) == ("counter", str(counter))
    from queue_app.branches.models import Counter

    assert db.session.get(Counter, counter).staff_id is None  # nothing done


def test_the_entry_outlives_its_actor(client, floor, make):
    temp = make.user("sementara", branches=[floor.other_branch])
    headers = make.auth(temp)
    db.session.commit()
    counter = floor.counter_id("Teller 1")
    assert post(client, f"/counters/{counter}/open", headers).status_code == 403
    db.session.delete(db.session.get(User, temp.id))
    db.session.commit()
    [entry] = _entries()
    assert entry.actor_id is None and entry.actor_username == "sementara"
    assert entry.actor_role == "staff"


def test_complete_by_construction_a_new_view_needs_no_audit_call(app, floor):
    """A view written tomorrow that forgets the audit log is in it all the same."""
    staff_id, manager_id = floor.staff.id, floor.manager.id
    db.session.remove()  # SQLite: the probe's requests take the write lock
    probe = create_app("testing", SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"])

    from queue_app.extensions import csrf

    @csrf.exempt
    @probe.post("/api/v1/_probe/<int:user_id>")
    def _probe(user_id):
        me = bearer_user()
        assert me is not None and g.user is me
        db.session.get(User, user_id).locale = "en"
        db.session.commit()
        return {"ok": True}

    @csrf.exempt
    @probe.post("/api/v1/_probe_public")
    def _public():
        db.session.get(User, staff_id).locale = "id"
        db.session.commit()
        return {"ok": True}

    client = IsolatedClient(probe, probe.response_class)
    with probe.app_context():
        assert client.post(f"/api/v1/_probe/{manager_id}", headers=floor.h_manager).json
        assert client.post("/api/v1/_probe_public").json  # nobody of the staff: no entry
        db.session.remove()
        entries = db.session.scalars(select(AuditEntry)).all()
        assert [(e.action, e.actor_username, e.outcome) for e in entries] == [
            ("_probe", "dewi", "ok")
        ]
        db.session.remove()


def test_details_keep_no_secrets(app_ctx, floor, monkeypatch):
    fast_passwords(monkeypatch)
    signed_in(app_ctx, "admin")  # signing in commits (the lock-out counters): audited
    [entry] = _entries(action="auth.sign_in")
    assert entry.via == "page" and entry.actor_username == "admin"
    assert "password" not in repr(entry.details) and "rahasia" not in repr(entry.details)
    assert "csrf_token" not in repr(entry.details)
    assert entry.details == {"fields": ["username"]}


def test_ip_addresses_are_truncated():
    assert audit.truncate_ip("203.0.113.77") == "203.0.113.0/24"
    assert audit.truncate_ip("2001:db8:abcd:12::1") == "2001:db8:abcd::/48"
    assert audit.truncate_ip("not an address") is None


# --- the page ---------------------------------------------------------------------------------


def _entry(action, *, branch_id=None, actor="budi", at=None):
    audit.record(
        action,
        via="api",
        actor_username=actor,
        branch_id=branch_id,
        now=at or utcnow(),
    )


def rows_of(response) -> str:
    """The actions listed in the page's table (not the form's hints)."""
    assert response.status_code == 200, response.status_code
    return " ".join(re.findall(r"<code>([^<]+)</code>", response.get_data(as_text=True)))


def test_the_audit_page_for_admins_and_managers(app_ctx, floor, monkeypatch):
    fast_passwords(monkeypatch)
    jkt, mnl = floor.branch.id, floor.other_branch.id
    _entry("ticket.call_next", branch_id=jkt, actor="budi")
    _entry("ticket.finish", branch_id=jkt, actor="siti")
    _entry("device.pair", branch_id=mnl, actor="jose")
    _entry("settings.change", branch_id=jkt, actor="dewi", at=utcnow() - timedelta(days=40))
    db.session.commit()

    admin = signed_in(app_ctx, "admin")
    page = rows_of(admin.get("/admin/audit/"))
    for action in ("ticket.call_next", "ticket.finish", "device.pair", "settings.change"):
        assert action in page
    page = rows_of(admin.get("/admin/audit/?action=ticket.&actor=siti"))
    assert "ticket.finish" in page and "ticket.call_next" not in page
    page = rows_of(admin.get("/admin/audit/?branch=MNL01"))
    assert "device.pair" in page and "ticket.finish" not in page
    since = (utcnow() - timedelta(days=2)).date().isoformat()
    page = rows_of(admin.get(f"/admin/audit/?from={since}"))
    assert "settings.change" not in page and "ticket.finish" in page
    bad = admin.get("/admin/audit/?from=yesterday&page=x&lang=en")
    assert bad.status_code == 400
    assert "YYYY-MM-DD" in text_of(bad) and "whole number" in text_of(bad)

    manager = signed_in(app_ctx, "dewi")  # manager of JKT01 only
    page = rows_of(manager.get("/admin/audit/"))
    assert "ticket.finish" in page and "device.pair" not in page
    assert manager.get("/admin/audit/?branch=MNL01").status_code == 400

    staff = signed_in(app_ctx, "budi")
    assert staff.get("/admin/audit/").status_code == 403
    refused = _entries(outcome="refused")
    assert [(e.actor_username, e.action, e.status) for e in refused] == [
        ("budi", "audit.index", 403)
    ]


def test_the_audit_page_is_paginated_and_translated(app_ctx, floor, monkeypatch):
    fast_passwords(monkeypatch)
    start = utcnow() - timedelta(hours=1)
    for i in range(55):
        _entry(f"ticket.n{i:02d}", branch_id=floor.branch.id, at=start + timedelta(seconds=i))
    db.session.commit()
    admin = signed_in(app_ctx, "admin")
    first = admin.get("/admin/audit/?action=ticket.&lang=en").get_data(as_text=True)
    assert first.count('data-testid="audit-row"') == 50
    assert "ticket.n54" in first and "ticket.n04" not in first and 'rel="next"' in first
    second = admin.get("/admin/audit/?action=ticket.&page=2&lang=en").get_data(as_text=True)
    assert second.count('data-testid="audit-row"') == 5 and "ticket.n00" in second
    assert 'rel="next"' not in second and 'rel="prev"' in second


# --- the command line ---------------------------------------------------------------------------


def test_cli_actions_are_audited_and_shown(app_ctx, floor, monkeypatch):
    fast_passwords(monkeypatch)
    runner = app_ctx.test_cli_runner()
    result = runner.invoke(args=["tokens", "create", "budi", "--name", "laptop"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    result = runner.invoke(
        args=[
            "users",
            "create",
            "wati",
            "--role",
            "staff",
            "--branch",
            "JKT01",
            "--password",
            "x" * 12,
        ]
    )
    assert result.exit_code == 0, result.output
    entries = _entries(via="cli")
    assert [e.action for e in entries] == ["token.create", "user.create"]
    assert all(e.actor_username.startswith("cli") for e in entries)
    assert token not in repr(entries[0].details) and "x" * 12 not in repr(entries[1].details)
    assert entries[1].details["role"] == Role.STAFF.value
    shown = runner.invoke(args=["audit", "show", "--action", "token."])
    assert shown.exit_code == 0 and "token.create" in shown.output
    assert "user.create" not in shown.output
    bad = runner.invoke(args=["audit", "show", "--since", "tomorrow"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output
    count = db.session.scalar(select(func.count()).select_from(AuditEntry))
    assert count == 2


def _aged(days_ago: list[float], now) -> list[int]:
    """Entries written `days_ago` days before `now` (as the system, with a marker)."""
    made = [
        audit.record("test.aged", via="job", actor_username="job:test", now=now - timedelta(days=d))
        for d in days_ago
    ]
    db.session.commit()
    return [e.id for e in made]


def test_the_retention_job_deletes_only_entries_older_than_the_setting(app, app_ctx, monkeypatch):
    from queue_app.jobs import tasks

    def purge_audit_log(app, now):
        db.session.commit()  # the job has a session of its own (as the scheduler runs it)
        return tasks.purge_audit_log(app, now)

    now = utcnow()
    old = _aged([400, 366, 365.5], now)
    kept = _aged([364, 10, 0], now)
    monkeypatch.setitem(app.config, "AUDIT_RETENTION_DAYS", 0)  # the default: kept for ever
    assert purge_audit_log(app, now) == 0
    monkeypatch.setitem(app.config, "AUDIT_RETENTION_DAYS", 365)
    monkeypatch.setitem(app.config, "AUDIT_PURGE_BATCH", 2)  # two transactions
    assert purge_audit_log(app, now) == 3
    db.session.expire_all()
    left = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [e.id for e in left if e.action == "test.aged"] == kept
    [logged] = [e for e in left if e.action == "audit.purge"]
    assert (logged.via, logged.actor_username, logged.details) == (
        "job",
        "job:purge_audit_log",
        {"older_than_days": 365, "deleted": 3},
    )
    assert not set(old) & {e.id for e in left}
    assert purge_audit_log(app, now) == 0  # nothing more, and no second "purge" entry
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "audit.purge")) == 1


def test_flask_audit_purge_counts_then_deletes(app_ctx, monkeypatch):
    now = utcnow()
    _aged([40, 31, 5], now)
    runner = app_ctx.test_cli_runner()
    refused = runner.invoke(args=["audit", "purge"])  # AUDIT_RETENTION_DAYS is 0
    assert refused.exit_code != 0 and "--older-than-days" in refused.output
    dry = runner.invoke(args=["audit", "purge", "--older-than-days", "30", "--dry-run"])
    assert dry.exit_code == 0 and "2 entries older than 30 days would be deleted" in dry.output
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 3
    done = runner.invoke(args=["audit", "purge", "--older-than-days", "30"])
    assert done.exit_code == 0 and "2 entries older than 30 days deleted" in done.output
    db.session.expire_all()
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["test.aged", "audit.purge"]
    purge_entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "audit.purge")
    ).one()
    assert purge_entry.via == "cli" and purge_entry.actor_username.startswith("cli")
