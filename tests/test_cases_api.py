"""The cases API: the work list (CX roles; branch managers their branches only), one case with
its steps, and the work on it, with its 4xx paths."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from queue_app.extensions import db

from .apihelp import API, assert_error, assert_invalid, fast_passwords, ok
from .caseshelp import build_ladder, customer, respond

NOW = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)


@pytest.fixture
def people(make, monkeypatch):
    fast_passwords(monkeypatch)
    ladder = build_ladder(make)
    ladder.h = {
        name: make.auth(getattr(ladder, name))
        for name in ("staff", "manager", "area", "ceo", "cx", "other_manager")
    }
    person = customer(phone="+6281234567890", email="rina@example.co.id")
    ladder.responses = [
        respond(make, ladder.branch, now=NOW, nps=2, comment="Lama sekali", person=person),
        respond(make, ladder.branch, now=NOW, csat=1, staff=ladder.staff),
        respond(make, ladder.other_branch, now=NOW, nps=0),
    ]
    db.session.commit()
    return ladder


def items(client, headers, query=""):
    return ok(client.get(f"{API}/cases{query}", headers=headers))["items"]


@time_machine.travel(NOW, tick=False)
def test_the_list_by_role_and_filter(client, people):
    everything = items(client, people.h["cx"])
    assert [i["branch"] for i in everything] == ["JKT01", "JKT01", "SBY01"]
    first = everything[0]
    assert set(first) >= {
        "id",
        "level",
        "status",
        "owner",
        "due_at",
        "ticket_number",
        "branch",
        "service",
        "opened_at",
        "triggers",
    }
    assert first["level"] == 1 and first["status"] == "open" and first["owner"] == "dewi"
    assert first["due_at"] == "2026-03-05T10:00:00+07:00" and first["triggers"] == ["nps<=6"]
    assert first["ticket_number"].startswith("A") and first["overdue"] is False
    # a branch manager sees their branches only, and may not ask for another one
    assert {i["branch"] for i in items(client, people.h["manager"])} == {"JKT01"}
    assert [i["branch"] for i in items(client, people.h["other_manager"])] == ["SBY01"]
    assert_error(client.get(f"{API}/cases?branch=JKT01", headers=people.h["other_manager"]), 403)
    assert len(items(client, people.h["ceo"], "?branch=SBY01")) == 1
    assert len(items(client, people.h["ceo"], "?status=open&level=1")) == 3
    assert items(client, people.h["ceo"], "?status=resolved") == []
    assert items(client, people.h["ceo"], "?level=2") == []
    # not a CX role, no token, bad filters
    assert_error(client.get(f"{API}/cases", headers=people.h["staff"]), 403)
    assert_error(client.get(f"{API}/cases"), 401)
    assert_invalid(client.get(f"{API}/cases?status=closed", headers=people.h["cx"]), "query.status")
    assert_invalid(client.get(f"{API}/cases?level=x", headers=people.h["cx"]), "query.level")
    assert_error(client.get(f"{API}/cases?branch=NOPE", headers=people.h["cx"]), 404)


@time_machine.travel(NOW, tick=False)
def test_working_a_case_through_the_api(client, people):
    case_id = items(client, people.h["manager"])[0]["id"]
    path = f"{API}/cases/{case_id}"
    detail = ok(client.get(path, headers=people.h["manager"]))
    assert detail["comment"] == "Lama sekali" and [s["kind"] for s in detail["steps"]] == ["opened"]
    assert_error(client.get(path, headers=people.h["other_manager"]), 403)
    assert_error(client.get(f"{API}/cases/999999", headers=people.h["cx"]), 404)

    h = people.h["manager"]
    assert ok(client.post(f"{path}/acknowledge", headers=h))["status"] == "acknowledged"
    assert_error(client.post(f"{path}/acknowledge", headers=h), 409, "already_acknowledged")
    # resolving before any contact: 409; with missing fields: 422
    full = {"root_cause": "people", "reason_code": "staff_attitude", "action_taken": "Maaf"}
    assert_error(client.post(f"{path}/resolve", headers=h, json=full), 409, "no_contact")
    for missing in full:
        body = {k: v for k, v in full.items() if k != missing}
        assert_invalid(client.post(f"{path}/resolve", headers=h, json=body), missing)
    assert_invalid(
        client.post(f"{path}/resolve", headers=h, json={**full, "root_cause": "x"}), "root_cause"
    )
    assert_invalid(
        client.post(f"{path}/contacts", headers=h, json={"reached": "yes", "channel": "phone"}),
        "reached",
    )
    assert_invalid(
        client.post(f"{path}/contacts", headers=h, json={"reached": True, "channel": "fax"}),
        "channel",
    )
    contact = ok(
        client.post(
            f"{path}/contacts", headers=h, json={"reached": True, "channel": "phone", "note": "ok"}
        ),
        201,
    )
    assert contact["first_contact_at"] == "2026-03-03T10:00:00+07:00" and contact["due_at"] is None
    assert ok(client.post(f"{path}/notes", headers=h, json={"note": "Akan dicek"}), 201)
    assert_invalid(client.post(f"{path}/notes", headers=h, json={"note": ""}), "note")
    assert_error(client.post(f"{path}/reassign", headers=h, json={"to_user": "nobody"}), 422)
    assert_error(client.post(f"{path}/reassign", headers=h, json={}), 422, "invalid_assignee")
    assert_error(
        client.post(f"{path}/reassign", headers=h, json={"to_user": "budi"}),
        422,
        "invalid_assignee",
    )
    moved = ok(client.post(f"{path}/reassign", headers=h, json={"to_user": "lina"}))
    assert moved["owner"] == "lina"
    done = ok(client.post(f"{path}/resolve", headers=h, json=full))
    assert done["status"] == "resolved" and done["root_cause"] == "people"
    assert [s["kind"] for s in done["steps"]][-2:] == ["resolved", "recovery_sent"]
    assert done["steps"][1]["actor"] == "dewi"
    assert_error(client.post(f"{path}/resolve", headers=h, json=full), 409, "case_resolved")
    assert_error(client.post(f"{path}/acknowledge", headers=people.h["staff"]), 403)
    assert_error(client.post(f"{path}/acknowledge"), 401)
    assert_error(
        client.post(f"{path}/notes", headers=h, data="{", content_type="application/json"), 400
    )
