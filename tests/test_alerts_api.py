"""The alerts API: rules of a branch (create, list, change, delete) with every bad input
answered 4xx with a message, who may do what, the alert list and acknowledging; and an alert
raised by a ticket issued through the API (the one-statement path on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from queue_app.alerts import services as alerts
from queue_app.alerts.models import Alert, AlertRule, AlertStatus, Metric
from queue_app.alerts.receivers import evaluator
from queue_app.extensions import db

from .apihelp import API, assert_error, assert_invalid, issue, ok

T0 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
RULES = f"{API}/branches/JKT01/alert-rules"


def create(client, floor, body, headers=None):
    return client.post(RULES, json=body, headers=headers or floor.h_manager)


def test_a_manager_creates_lists_changes_and_deletes_rules(client, floor):
    made = ok(
        create(
            client,
            floor,
            {"metric": "longest_wait_s", "service": "teller", "raise_at": 900, "clear_at": 600},
        ),
        201,
    )
    assert made == {
        "id": made["id"],
        "branch": "JKT01",
        "service": "teller",
        "metric": "longest_wait_s",
        "raise_at": 900.0,
        "clear_at": 600.0,
        "clear_after_s": 0,
        "ack_within_s": 600,
        "window_s": 3600,
        "min_count": 10,
        "enabled": True,
    }
    branch_wide = ok(
        create(
            client,
            floor,
            {"metric": "queue_length", "raise_at": 20, "clear_at": 10, "ack_within_s": None},
            floor.h_admin,
        ),
        201,
    )
    assert (branch_wide["service"], branch_wide["ack_within_s"]) == (None, None)
    listed = ok(client.get(RULES, headers=floor.h_manager))["items"]
    assert [r["id"] for r in listed] == [branch_wide["id"], made["id"]]  # the branch first
    changed = ok(
        client.patch(
            f"{API}/alert-rules/{made['id']}",
            json={"raise_at": 1200, "clear_after_s": 120},
            headers=floor.h_manager,
        )
    )
    assert (changed["raise_at"], changed["clear_at"], changed["clear_after_s"]) == (1200, 600, 120)
    response = client.delete(f"{API}/alert-rules/{made['id']}", headers=floor.h_manager)
    assert response.status_code == 204
    assert [r["id"] for r in ok(client.get(RULES, headers=floor.h_admin))["items"]] == [
        branch_wide["id"]
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"metric": "temperature", "raise_at": 1, "clear_at": 0}, 422, None),
        ({"raise_at": 1, "clear_at": 0}, 422, None),  # no metric
        ({"metric": "queue_length", "clear_at": 0}, 422, None),  # no raise_at
        ({"metric": "queue_length", "raise_at": 5}, 422, None),  # no clear_at
        ({"metric": "queue_length", "raise_at": 5, "clear_at": 6}, 422, "invalid_hysteresis"),
        ({"metric": "queue_length", "raise_at": 5.5, "clear_at": 1}, 422, "invalid_raise_at"),
        ({"metric": "queue_length", "raise_at": 0, "clear_at": 0}, 422, "invalid_raise_at"),
        ({"metric": "queue_length", "raise_at": -3, "clear_at": -4}, 422, "invalid_raise_at"),
        ({"metric": "no_show_rate", "raise_at": 30, "clear_at": 20}, 422, "invalid_raise_at"),
        ({"metric": "longest_wait_s", "raise_at": 10**9, "clear_at": 1}, 422, "invalid_raise_at"),
        ({"metric": "queue_length", "raise_at": "5", "clear_at": 1}, 422, None),
        ({"metric": "queue_length", "raise_at": True, "clear_at": 0}, 422, None),
        (
            {"metric": "queue_length", "raise_at": 5, "clear_at": 1, "service": "vault"},
            422,
            "unknown_service",
        ),
        (
            {"metric": "queue_length", "raise_at": 5, "clear_at": 1, "ack_within_s": 5},
            422,
            "invalid_ack_within_s",
        ),
        ({"metric": "queue_length", "raise_at": 5, "clear_at": 1, "ack_within_s": 60.5}, 422, None),
        (
            {"metric": "queue_length", "raise_at": 5, "clear_at": 1, "window_s": 0},
            422,
            "invalid_window_s",
        ),
        (
            {"metric": "queue_length", "raise_at": 5, "clear_at": 1, "min_count": 0},
            422,
            "invalid_min_count",
        ),
        (
            {"metric": "queue_length", "raise_at": 5, "clear_at": 1, "clear_after_s": -1},
            422,
            "invalid_clear_after_s",
        ),
        ({"metric": "queue_length", "raise_at": 5, "clear_at": 1, "enabled": "yes"}, 422, None),
        ({"metric": "queue_length", "raise_at": 5, "clear_at": 1, "colour": "red"}, 422, None),
        (
            {"metric": "queue_length", "raise_at": 5, "clear_at": 1, "service": "te\x00ller"},
            422,
            None,
        ),
        ([1, 2], 422, None),
    ],
)
def test_bad_rules_are_refused_with_a_message(client, floor, body, status, code):
    error = assert_error(create(client, floor, body), status, code, ctx=body)
    assert error["message"]
    assert db.session.scalar(select(AlertRule.id)) is None


def test_malformed_bodies_and_duplicates(client, floor):
    for raw, status in (("{", 400), ("NaN", 400), ("", 422)):  # empty: nothing given
        response = client.post(
            RULES, data=raw, content_type="application/json", headers=floor.h_manager
        )
        assert_error(response, status, ctx=raw)
    body = {"metric": "queue_length", "raise_at": 5, "clear_at": 1}
    ok(create(client, floor, body), 201)
    assert_error(create(client, floor, body), 409, "rule_exists")
    ok(create(client, floor, {**body, "service": "teller"}), 201)  # per service: another rule


def test_changing_a_rule_checks_the_result(client, floor):
    made = ok(create(client, floor, {"metric": "queue_length", "raise_at": 5, "clear_at": 1}), 201)
    url = f"{API}/alert-rules/{made['id']}"
    assert_error(
        client.patch(url, json={"raise_at": 0.5}, headers=floor.h_manager), 422, "invalid_raise_at"
    )
    assert_error(
        client.patch(url, json={"clear_at": 9}, headers=floor.h_manager), 422, "invalid_hysteresis"
    )
    assert_invalid(client.patch(url, json={"metric": "ewt_s"}, headers=floor.h_manager), "metric")
    assert_error(client.patch(url, json={"enabled": 1}, headers=floor.h_manager), 422)
    assert_error(client.patch(f"{API}/alert-rules/999999", json={}, headers=floor.h_manager), 404)
    assert_error(client.patch(f"{API}/alert-rules/{2**40}", json={}, headers=floor.h_manager), 404)
    assert_error(client.delete(f"{API}/alert-rules/999999", headers=floor.h_manager), 404)
    assert ok(client.patch(url, json={}, headers=floor.h_manager))["raise_at"] == 5


def test_who_may_manage_rules_and_alerts(client, floor, make):
    body = {"metric": "queue_length", "raise_at": 5, "clear_at": 1}
    assert_error(client.get(RULES), 401)
    assert_error(client.get(RULES, headers={"Authorization": "Bearer nope"}), 401)
    for headers in (floor.h_staff, floor.h_cx, floor.h_exec, floor.h_other):
        assert_error(client.get(RULES, headers=headers), 403)
        assert_error(create(client, floor, body, headers), 403)
    assert_error(client.get(f"{API}/branches/NOPE/alert-rules", headers=floor.h_admin), 404)
    made = ok(create(client, floor, body), 201)
    # a manager of another branch
    from queue_app.accounts.models import Role

    other = make.user("agus", role=Role.BRANCH_MANAGER, branches=[floor.other_branch])
    h_other_manager = make.auth(other)
    db.session.commit()
    assert_error(
        client.patch(f"{API}/alert-rules/{made['id']}", json={}, headers=h_other_manager), 403
    )
    assert_error(client.get(f"{API}/alerts?branch=JKT01", headers=h_other_manager), 403)
    assert ok(client.get(f"{API}/alerts", headers=h_other_manager))["items"] == []
    assert_error(client.get(f"{API}/alerts", headers=floor.h_staff), 403)
    assert_error(client.get(f"{API}/alerts?status=burning", headers=floor.h_admin), 422)


def test_listing_and_acknowledging_alerts(client, floor, make):
    rule = alerts.create_rule(
        db.session, floor.branch, metric=Metric.QUEUE_LENGTH, raise_at=1, clear_at=0, now=T0
    )
    make.ticket(floor.branch, now=T0)
    [alert] = alerts.evaluate_branch(db.session, floor.branch, T0)
    db.session.commit()
    listed = ok(client.get(f"{API}/alerts?status=open&branch=JKT01", headers=floor.h_manager))
    [item] = listed["items"]
    assert (item["id"], item["status"], item["metric"], item["value"]) == (
        alert.id,
        "raised",
        "queue_length",
        1,
    )
    assert item["owner"]["username"] == "dewi"
    assert item["rule_id"] == rule.id
    assert ok(client.get(f"{API}/alerts?status=cleared", headers=floor.h_admin))["items"] == []
    url = f"{API}/alerts/{alert.id}/acknowledge"
    assert_error(client.post(url, headers=floor.h_staff), 403)
    # CX agents and executives read the network's alerts, as on the live dashboard; they do
    # not acknowledge them
    for headers in (floor.h_cx, floor.h_exec):
        listed = ok(client.get(f"{API}/alerts", headers=headers))["items"]
        assert [i["id"] for i in listed] == [alert.id]
        assert ok(client.get(f"{API}/alerts?branch=JKT01", headers=headers))["items"] == listed
        assert ok(client.get(f"{API}/alerts/{alert.id}", headers=headers))["id"] == alert.id
        assert_error(client.post(url, headers=headers), 403)
    assert_error(client.post(url, json={"note": 5}, headers=floor.h_manager), 422)
    done = ok(client.post(url, json={"note": "on it"}, headers=floor.h_manager))
    assert (done["status"], done["acknowledged_by"]["username"]) == ("acknowledged", "dewi")
    assert [(s["kind"], s["note"]) for s in done["steps"]] == [
        ("raised", None),
        ("acknowledged", "on it"),
    ]
    assert_error(client.post(url, headers=floor.h_manager), 409, "already_acknowledged")
    assert_error(client.post(f"{API}/alerts/424242/acknowledge", headers=floor.h_manager), 404)
    assert_error(client.get(f"{API}/alerts/424242", headers=floor.h_manager), 404)
    detail = ok(client.get(f"{API}/alerts/{alert.id}", headers=floor.h_admin))
    assert [s["kind"] for s in detail["steps"]] == ["raised", "acknowledged"]
    # deleting the rule clears the alert and keeps it
    assert client.delete(f"{API}/alert-rules/{rule.id}", headers=floor.h_manager).status_code == 204
    db.session.expire_all()
    kept = db.session.get(Alert, alert.id)
    assert (kept.status, kept.rule_id) == (AlertStatus.CLEARED, None)
    [cleared] = ok(client.get(f"{API}/alerts?status=cleared", headers=floor.h_manager))["items"]
    assert cleared["id"] == alert.id


def test_a_ticket_issued_through_the_api_raises_the_alert(client, floor, app, monkeypatch):
    """The kiosk's request commits; the journey event evaluates the branch right after (on
    PostgreSQL the ticket takes the one-statement path, which publishes the same event)."""
    ok(
        create(client, floor, {"metric": "queue_length", "raise_at": 2, "clear_at": 0}),
        201,
    )
    monkeypatch.setitem(app.config, "ALERTS_ON_CHANGE", "sync")
    # the API issues at the wall clock's time: the evaluation uses the same clock (its default)
    assert evaluator(app).clock.__name__ == "utcnow"
    issue(client)
    assert ok(client.get(f"{API}/alerts", headers=floor.h_manager))["items"] == []
    issue(client)
    [item] = ok(client.get(f"{API}/alerts", headers=floor.h_manager))["items"]
    assert (item["metric"], item["value"], item["message"].startswith("2")) == (
        "queue_length",
        2,
        True,
    )
