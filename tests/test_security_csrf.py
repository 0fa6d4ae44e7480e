"""CSRF on every browser form.

Walks `app.url_map`: every route that accepts POST (PUT, PATCH, DELETE) outside the API is
refused without the session's CSRF token (400, the refusal recorded from Flask-WTF itself) and
goes past the check with it. The only exempt views are the API's blueprints: the API never
reads the session cookie (bearer tokens in the `Authorization` header, or the secret token of
a ticket or booking in the path or the JSON body), so a page of another site can make a
browser send nothing the API would take as authority; proved here with a signed-in admin's
session cookie, which the API ignores (401).

The templates: every `<form method="post">` carries the token (directly or through a macro
of its file), and the scripts that POST send it as `X-CSRFToken`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from queue_app.accounts.models import Role
from queue_app.extensions import csrf, db

from .apihelp import API, fast_passwords, isolated_client

TEMPLATES = Path(__file__).resolve().parent.parent / "queue_app" / "templates"
SCRIPTS = Path(__file__).resolve().parent.parent / "queue_app" / "static" / "js"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
PASSWORD = "rahasia-123"
DUMMY = {"int": "1", "default": "X"}


def _url(rule) -> str:
    url = rule.rule
    for converter, name in re.findall(r"<(?:(\w+):)?(\w+)>", url):
        pattern = f"<{converter}:{name}>" if converter else f"<{name}>"
        url = url.replace(pattern, DUMMY.get(converter or "default", "X"))
    return url


def writing_routes(app):
    """(url, method, endpoint, exempt) of every route that changes something."""
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & WRITES):
            blueprint = app.blueprints.get(rule.endpoint.rpartition(".")[0])
            view = app.view_functions[rule.endpoint]
            exempt = blueprint in csrf._exempt_blueprints or (
                f"{view.__module__}.{view.__name__}" in csrf._exempt_views
            )
            routes.append((_url(rule), method, rule.endpoint, exempt))
    return sorted(routes)


@pytest.fixture
def refusals(monkeypatch):
    """The endpoints Flask-WTF refused, as it raises (whatever page the handler shows)."""
    from flask import request
    from flask_wtf.csrf import CSRFError

    seen = []
    original = csrf.protect

    def protect(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        except CSRFError:
            seen.append(request.endpoint)
            raise

    monkeypatch.setattr(csrf, "protect", protect)
    return seen


def test_only_the_api_is_exempt(app):
    routes = writing_routes(app)
    assert len(routes) > 40
    exempt = sorted({endpoint for url, _m, endpoint, ex in routes if ex})
    assert exempt, "the API's blueprints are exempt (bearer tokens)"
    for url, _method, endpoint, is_exempt in routes:
        assert is_exempt == url.startswith(API + "/"), (url, endpoint, is_exempt)


def _token(client) -> str:
    """The session's token from a page's form (signed in: the sign-out form of every page)."""
    for path in ("/auth/login", "/"):
        page = client.get(path).get_data(as_text=True)
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if match:
            return match.group(1)
    raise AssertionError("no page with a CSRF token")


def _sign_in(client, username) -> str:
    """Sign in (a page answers a signed-in person: the counter's refusal is then its 400
    page, not the 401 of someone signed out) and return the session's token."""
    response = client.post(
        "/auth/login",
        data={"username": username, "password": PASSWORD, "csrf_token": _token(client)},
    )
    assert response.status_code == 302
    return _token(client)


def test_every_browser_form_needs_the_token(client, app, make, refusals, monkeypatch):
    fast_passwords(monkeypatch)
    make.user("admin", role=Role.ADMIN, password=PASSWORD)
    db.session.commit()
    checked = 0
    for url, method, endpoint, exempt in writing_routes(app):
        if exempt:
            continue
        token = _sign_in(client, "admin")  # afresh: signing out (a route) ends the session
        refusals.clear()
        without = client.open(url, method=method, data={"x": "1"})
        assert without.status_code == 400, (url, without.status_code)
        assert refusals == [endpoint], (url, refusals)
        refusals.clear()
        with_token = client.open(url, method=method, data={"csrf_token": token})
        assert refusals == [], (url, "refused with the token")
        assert with_token.status_code < 500, (url, with_token.status_code)
        # a token of another session is not this one's (a signed-out visitor of the counter
        # gets its 401 page: the refusal is what Flask-WTF recorded)
        refusals.clear()
        other = isolated_client(client.application)
        forged = other.open(url, method=method, data={"csrf_token": token})
        assert forged.status_code in (400, 401), (url, forged.status_code)
        assert refusals == [endpoint], (url, "a foreign token was taken")
        checked += 1
    assert checked >= 30


def test_the_token_in_the_header_is_accepted_too(client, refusals):
    """What counter.js and tablet.js send with their fetches."""
    token = _token(client)
    response = client.post("/feedback/tablet/rate", json={}, headers={"X-CSRFToken": token})
    assert refusals == [] and response.status_code < 500


def test_the_api_takes_no_authority_from_the_session_cookie(client, make, monkeypatch):
    fast_passwords(monkeypatch)
    make.user("admin", role=Role.ADMIN, password=PASSWORD)
    branch = make.branch("JKT01")
    db.session.commit()
    token = _token(client)
    signed_in = client.post(
        "/auth/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}
    )
    assert signed_in.status_code == 302
    assert client.get("/admin/devices").status_code == 200  # the session works on pages
    # ... and is nothing to the API: a staff call without a bearer token is 401
    counter = branch.counters[0]
    assert client.post(f"{API}/counters/{counter.id}/open").status_code == 401
    assert client.get(f"{API}/branches/JKT01/queue").status_code == 401


def _macros_with_token(text: str) -> set[str]:
    names = set()
    for match in re.finditer(r"\{%-?\s*macro\s+(\w+)\(.*?\{%-?\s*endmacro", text, flags=re.S):
        if "csrf_token" in match.group(0):
            names.add(match.group(1))
    return names


def test_every_post_form_in_the_templates_carries_the_token():
    forms = 0
    missing = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        macros = _macros_with_token(text)
        for match in re.finditer(
            r"<form\b[^>]*method=\"post\"[^>]*>(.*?)</form>", text, flags=re.S | re.I
        ):
            forms += 1
            body = match.group(1)
            if "csrf_token" in body or any(re.search(rf"\b{m}\(", body) for m in macros):
                continue
            missing.append(f"{path.relative_to(TEMPLATES)} at {match.start()}")
    assert forms >= 25
    assert missing == []


def test_the_scripts_that_post_send_the_token():
    for path in sorted(SCRIPTS.glob("*.js")):
        text = path.read_text(encoding="utf-8")
        if re.search(r"method:\s*\"POST\"|method = \"POST\"|\"POST\"", text):
            assert "X-CSRFToken" in text, path.name
