"""The branch's alert thresholds page: a manager adds, changes and deletes rules in minutes,
customers and percent; bad values are answered on the page (422) and nothing is saved; only
admins and the branch's managers get in."""

from __future__ import annotations

import re

from sqlalchemy import select

from queue_app.alerts.models import AlertRule, Metric
from queue_app.extensions import db

PAGE = "/admin/branches/JKT01/alerts"


def sign_in(client, user):
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True


def csrf(client, path=PAGE) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def rules() -> list[AlertRule]:
    db.session.expire_all()
    return list(db.session.scalars(select(AlertRule).order_by(AlertRule.id)))


def test_a_manager_adds_changes_and_deletes_a_rule(client, floor):
    sign_in(client, floor.manager)
    page = client.get(PAGE + "?lang=en")
    assert page.status_code == 200
    assert "This branch has no alert thresholds yet." in page.get_data(as_text=True)
    token = csrf(client)
    response = client.post(
        PAGE,
        data={
            "csrf_token": token,
            "metric": "longest_wait_s",
            "service": "teller",
            "raise_at": "15",  # minutes
            "clear_at": "10",
            "clear_after_min": "2",
            "ack_within_min": "10",
            "enabled": "1",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    [rule] = rules()
    assert (rule.metric, rule.service.code, rule.raise_at, rule.clear_at) == (
        Metric.LONGEST_WAIT_S,
        "teller",
        900,
        600,
    )
    assert (rule.clear_after_s, rule.ack_within_s, rule.enabled) == (120, 600, True)
    response = client.post(
        PAGE,
        data={
            "csrf_token": token,
            "metric": "no_show_rate",
            "raise_at": "25",  # percent
            "clear_at": "15,5",
            "ack_within_min": "",  # never escalated
            "window_min": "120",
            "min_count": "12",
            "enabled": "1",
        },
    )
    assert response.status_code == 302
    rate = rules()[1]
    assert (rate.raise_at, rate.clear_at, rate.ack_within_s) == (0.25, 0.155, None)
    assert (rate.window_s, rate.min_count, rate.service_id) == (7200, 12, None)
    shown = client.get(PAGE + "?lang=en").get_data(as_text=True)
    assert 'value="15"' in shown and 'value="15.5"' in shown
    # change the first: turned off, raised later
    response = client.post(
        f"{PAGE}/{rule.id}",
        data={"csrf_token": token, "raise_at": "20", "clear_at": "10", "clear_after_min": "2"},
    )
    assert response.status_code == 302
    rule = rules()[0]
    assert (rule.raise_at, rule.enabled, rule.ack_within_s) == (1200, False, None)
    response = client.post(f"{PAGE}/{rule.id}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    assert [r.metric for r in rules()] == [Metric.NO_SHOW_RATE]


def test_bad_values_are_answered_on_the_page(client, floor):
    sign_in(client, floor.manager)
    token = csrf(client)
    base = {"csrf_token": token, "metric": "queue_length", "enabled": "1"}
    cases = [
        ({"raise_at": "5", "clear_at": "8"}, "must be at or below"),
        ({"raise_at": "five", "clear_at": "1"}, "Enter numbers only."),
        ({"raise_at": "", "clear_at": "1"}, "Fill in every level."),
        ({"raise_at": "5", "clear_at": "1", "metric": "weather"}, "Choose what the rule watches."),
        ({"raise_at": "5", "clear_at": "1", "service": "vault"}, "Choose one of the branch"),
        ({"raise_at": "5", "clear_at": "1", "ack_within_min": "0.1"}, "time to acknowledge"),
        ({"raise_at": "inf", "clear_at": "1"}, "Enter numbers only."),
    ]
    for data, message in cases:
        response = client.post(PAGE + "?lang=en", data={**base, **data})
        assert response.status_code == 422, (data, response.status_code)
        assert message in response.get_data(as_text=True), data
    assert rules() == []
    client.post(PAGE, data={**base, "raise_at": "5", "clear_at": "1"})
    response = client.post(PAGE + "?lang=en", data={**base, "raise_at": "6", "clear_at": "1"})
    assert response.status_code == 422
    assert "has a rule for that measure" in response.get_data(as_text=True)
    [rule] = rules()
    response = client.post(
        f"{PAGE}/{rule.id}?lang=en", data={"csrf_token": token, "raise_at": "1", "clear_at": "2"}
    )
    assert response.status_code == 422
    assert rules()[0].raise_at == 5
    assert client.post(f"{PAGE}/999999", data={"csrf_token": token}).status_code == 404
    assert (
        client.post(
            PAGE, data={**base, "raise_at": "5", "clear_at": "1", "csrf_token": "x"}
        ).status_code
        == 400
    )


def test_only_managers_of_the_branch_and_admins(client, floor, make):
    assert client.get(PAGE).status_code == 302  # sign in first
    sign_in(client, floor.staff)
    assert client.get(PAGE).status_code == 403
    from queue_app.accounts.models import Role

    other = make.user("agus", role=Role.BRANCH_MANAGER, branches=[floor.other_branch])
    db.session.commit()
    sign_in(client, other)
    assert client.get(PAGE).status_code == 403
    assert client.get("/admin/branches/NOPE/alerts").status_code == 404
    admin = db.session.scalar(
        select(type(floor.manager)).where(type(floor.manager).username == "admin")
    )
    sign_in(client, admin)
    assert client.get(PAGE).status_code == 200
