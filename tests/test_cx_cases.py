"""The CX case pages: the list (filters, level badges, overdue highlighted, both languages),
the detail with the response, the visit and the timeline, and the forms (with their CSRF
token) that work a case."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from queue_app.cases import services as cases
from queue_app.cases.models import Case, CaseStatus
from queue_app.extensions import db

from .apihelp import fast_passwords
from .caseshelp import build_ladder, customer, respond

NOW = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)


@pytest.fixture
def people(make, monkeypatch):
    fast_passwords(monkeypatch)
    ladder = build_ladder(make)
    person = customer(phone="+6281234567890", email="rina@example.co.id")
    ladder.case_ids = []
    for hours, kwargs in (
        (73, {"nps": 1, "comment": "Antrean lama, petugas tidak ramah", "person": person}),
        (30, {"csat": 1, "staff": ladder.staff}),
    ):
        response = respond(make, ladder.branch, now=NOW - timedelta(hours=hours), **kwargs)
        case_id = db.session.scalar(select(Case.id).where(Case.response_id == response.id))
        ladder.case_ids.append(case_id)
    respond(make, ladder.other_branch, now=NOW, nps=0)
    # the first reached level 2 a day ago and is overdue by an hour now
    assert len(cases.escalate_due(NOW - timedelta(hours=24))) == 1
    db.session.commit()
    return ladder


def sign_in(client, user):
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def text(response) -> str:
    return response.get_data(as_text=True)


@time_machine.travel(NOW, tick=False)
def test_the_list_in_both_languages_with_filters_and_access(client, people):
    sign_in(client, people.manager)
    page = client.get("/cx/cases?lang=en")
    assert page.status_code == 200
    html = text(page)
    assert "2 cases" in html and "1 overdue" in html
    assert html.count('class="is-overdue"') == 1 and "overdue by" in html
    assert "Level 2" in html and "NPS ≤ 6" in html and "SBY01" not in html.split("<tbody>")[1]
    html_id = text(client.get("/cx/cases?lang=id"))
    assert 'lang="id"' in html_id
    assert text(client.get("/cx/cases?level=2&lang=en")).count("data-case=") == 1
    assert text(client.get("/cx/cases?status=resolved&lang=en")).count("data-case=") == 0
    # another branch's manager: 403 for JKT01, the CX team sees every branch
    sign_in(client, people.other_manager)
    assert client.get("/cx/cases?branch=JKT01").status_code == 403
    assert client.get(f"/cx/cases/{people.case_ids[0]}").status_code == 403
    sign_in(client, people.ceo)
    assert text(client.get("/cx/cases?lang=en")).count("data-case=") == 3
    sign_in(client, people.staff)
    assert client.get("/cx/cases").status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client, people):
    response = client.get("/cx/cases")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


@time_machine.travel(NOW, tick=False)
def test_working_a_case_from_its_page(client, people):
    sign_in(client, people.area)  # the level-2 owner
    path = f"/cx/cases/{people.case_ids[0]}"
    page = text(client.get(f"{path}?lang=en"))
    assert "Antrean lama, petugas tidak ramah" in page and "+6281234567890" in page
    assert "Level 2" in page and "Escalated" in page and "25 min" in page  # wait 25 min
    token = csrf(page)

    # without the CSRF token the form is refused
    refused = client.post(f"{path}/acknowledge", data={})
    assert refused.status_code == 400
    assert client.post(f"{path}/acknowledge", data={"csrf_token": token}).status_code == 303
    again = client.post(f"{path}/acknowledge?lang=en", data={"csrf_token": token})
    assert again.status_code == 409 and "acknowledged already" in text(again)

    resolve = {
        "csrf_token": token,
        "root_cause": "people",
        "reason_code": "staff_attitude",
        "action_taken": "Menelepon nasabah dan minta maaf",
    }
    early = client.post(f"{path}/resolve?lang=en", data=resolve)
    assert early.status_code == 409 and "contact attempt" in text(early)
    bad = client.post(f"{path}/contact?lang=en", data={"csrf_token": token, "channel": "phone"})
    assert bad.status_code == 422
    logged = client.post(
        f"{path}/contact",
        data={"csrf_token": token, "channel": "phone", "reached": "yes", "note": "Sudah bicara"},
    )
    assert logged.status_code == 303
    missing = client.post(f"{path}/resolve?lang=en", data={**resolve, "root_cause": ""})
    assert missing.status_code == 422 and "all required" in text(missing)
    assert "Menelepon nasabah" in text(missing)  # what was typed is kept
    assert (
        client.post(f"{path}/note", data={"csrf_token": token, "note": "Cek CCTV"}).status_code
        == 303
    )
    assert client.post(f"{path}/resolve", data=resolve).status_code == 303
    case = db.session.get(Case, people.case_ids[0])
    db.session.refresh(case)
    assert case.status == CaseStatus.RESOLVED and case.root_cause.value == "people"
    done = text(client.get(f"{path}?lang=en"))
    assert 'data-testid="resolve"' not in done and "Cek CCTV" in done
    # the customer has a phone number: the recovery survey is on its way
    assert "The customer will get the short recovery survey." in done


@time_machine.travel(NOW, tick=False)
def test_reassigning_from_the_page(client, people):
    sign_in(client, people.manager)
    path = f"/cx/cases/{people.case_ids[1]}"
    token = csrf(text(client.get(path)))
    moved = client.post(
        f"{path}/reassign", data={"csrf_token": token, "to_user": str(people.cx.id)}
    )
    assert moved.status_code == 303
    nobody = client.post(f"{path}/reassign?lang=en", data={"csrf_token": token, "to_user": "99999"})
    assert nobody.status_code == 422
    dept = client.post(f"{path}/reassign", data={"csrf_token": token, "department": "Operasional"})
    assert dept.status_code == 303
    case = db.session.get(Case, people.case_ids[1])
    db.session.refresh(case)
    assert (case.owner_id, case.department) == (people.cx.id, "Operasional")
    assert client.get("/cx/cases/424242").status_code == 404
