"""The CX metrics page without a browser: who may open it, which branches it offers, and what
it does with bad input (never a 500)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine

from queue_app.accounts.models import Role

from .feedbackrows import respond

PAGE = "/cx/metrics"


def sign_in(client, user):
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True


@pytest.fixture
def people(floor, make):
    jkt, mnl = floor.branch, floor.other_branch
    respond(jkt, date(2026, 3, 2), nps=10)
    respond(jkt, date(2026, 3, 3), nps=0)
    respond(mnl, date(2026, 3, 3), nps=9)
    return {
        "staff": floor.staff,
        "manager": floor.manager,
        "cx": make.user("cx2", role=Role.CX_AGENT, branches=[jkt]),
        "exec": make.user("exec2", role=Role.EXECUTIVE),
    }


def test_signed_out_goes_to_sign_in(client, people):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_staff_may_not_open_the_page(client, people):
    sign_in(client, people["staff"])
    assert client.get(PAGE).status_code == 403


def test_a_manager_sees_their_branch_only(client, people):
    sign_in(client, people["manager"])
    page = client.get(f"{PAGE}?lang=en&from=2026-03-01&to=2026-03-05").get_data(as_text=True)
    assert 'value="JKT01" selected' in page
    assert "MNL01" not in page and "All branches" not in page
    assert 'data-testid="nps-score">+0.0' in page  # 1 promoter, 1 detractor
    assert client.get(f"{PAGE}?branch=MNL01").status_code == 403
    assert client.get(f"{PAGE}?branch=NOPE").status_code == 404


@pytest.mark.parametrize("role", ["cx", "exec"])
def test_network_roles_see_the_network_and_every_branch(client, people, role):
    sign_in(client, people[role])
    page = client.get(f"{PAGE}?lang=en&from=2026-03-01&to=2026-03-05").get_data(as_text=True)
    assert "All branches" in page and 'value="MNL01"' in page and 'value="JKT01"' in page
    # 2 promoters, 1 detractor of 3: 33.3
    assert 'data-testid="nps-score">+33.3' in page
    assert 'data-testid="touchpoints-branch"' in page
    page = client.get(f"{PAGE}?lang=en&branch=MNL01&from=2026-03-01&to=2026-03-05")
    assert page.status_code == 200
    assert 'data-testid="nps-score">+100.0' in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-03-05&to=2026-03-01",
        "from=2025-01-01&to=2026-01-02",
        "from=yesterday",
        "to=9999-12-31&from=9999-12-30",
        "from=0001-01-01&to=0001-01-02&group=week",
        "group=year",
        "branch=" + "x" * 500,
        "branch=%00",
    ],
)
def test_bad_input_never_breaks_the_page(client, people, query):
    sign_in(client, people["exec"])
    response = client.get(f"{PAGE}?lang=en&{query}")
    assert response.status_code in (200, 404), (query, response.status_code)
    if response.status_code == 200:
        assert 'class="form-error"' in response.get_data(as_text=True)


def test_both_languages(client, people):
    sign_in(client, people["exec"])
    for lang in ("id", "en"):
        response = client.get(f"{PAGE}?lang={lang}&from=2026-03-01&to=2026-03-05")
        assert response.status_code == 200
        assert f'<html lang="{lang}">' in response.get_data(as_text=True)
    # Indonesian numbers use a decimal comma
    page = client.get(f"{PAGE}?lang=id&from=2026-03-01&to=2026-03-05").get_data(as_text=True)
    assert 'data-testid="nps-score">+33,3' in page


@pytest.mark.parametrize("role", ["cx", "manager"])
def test_the_default_range_ends_on_the_day_just_over_in_every_branch(client, people, role):
    """At 17:30 UTC on 5 March it is already 6 March in Jakarta (00:30) and Manila (01:30):
    "the 28 days before today" ends on 5 March for the network and for JKT01, though UTC
    still says 5 March; the answer given in Jakarta on 5 March is in."""
    respond(people["manager"].branches[0], date(2026, 3, 5), nps=10)
    with time_machine.travel(datetime(2026, 3, 5, 17, 30, tzinfo=UTC), tick=False):
        sign_in(client, people[role])
        page = client.get(f"{PAGE}?lang=en").get_data(as_text=True)
    assert 'id="f-from" name="from" type="date" value="2026-02-06"' in page
    assert 'id="f-to" name="to" type="date" value="2026-03-05"' in page
    # network: 3 promoters, 1 detractor of 4 (+50); JKT01: 2 of 3 (+33.3)
    expected = "+50.0" if role == "cx" else "+33.3"
    assert f'data-testid="nps-score">{expected}' in page
