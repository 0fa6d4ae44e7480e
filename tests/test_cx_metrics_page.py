"""The CX metrics page without a browser: who may open it, which branches it offers, and what
it does with bad input (never a 500)."""

from __future__ import annotations

from datetime import date

import pytest

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
