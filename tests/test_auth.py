"""Staff sign-in: passwords, lock-out, `next`, CSRF, sign-out, sessions, roles.

Requests run through the isolating client with CSRF switched on, as in production: every
form post first reads its token from the page, the way a browser does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from argon2 import PasswordHasher
from werkzeug.exceptions import HTTPException

from queue_app.accounts import services as accounts
from queue_app.accounts.models import Role
from queue_app.auth.access import branch_access, landing_url, roles_required
from queue_app.extensions import db, limiter
from queue_app.i18n import ensure_compiled

from .apihelp import fast_passwords

PASSWORD = "rahasia-123"
GENERIC_ID = "Nama pengguna atau kata sandi salah."
GENERIC_EN = "Wrong username or password."


@pytest.fixture(scope="module", autouse=True)
def compiled(app):
    """The pages speak from the catalogues as they are now (`make translations`)."""
    ensure_compiled(app)


@pytest.fixture
def people(make, monkeypatch):
    fast_passwords(monkeypatch)
    jkt = make.branch("JKT01")
    mnl = make.branch("MNL01", timezone="Asia/Manila", country="PH", locale="en")
    people = {
        "jkt": jkt,
        "mnl": mnl,
        "staff": make.user("budi", branches=[jkt], password=PASSWORD),
        "manager": make.user("dewi", role=Role.BRANCH_MANAGER, branches=[jkt], password=PASSWORD),
        "other_manager": make.user(
            "maria", role=Role.BRANCH_MANAGER, branches=[mnl], password=PASSWORD
        ),
        "admin": make.user("admin", role=Role.ADMIN, password=PASSWORD),
        "executive": make.user("rudi", role=Role.EXECUTIVE, password=PASSWORD),
    }
    db.session.commit()
    return people


def csrf_from(client, path="/auth/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, username, password=PASSWORD, **extra):
    form = {"username": username, "password": password, "csrf_token": csrf_from(client)}
    form.update(extra)
    return client.post("/auth/login", data=form)


def text_of(response) -> str:
    body = response.get_data(as_text=True)
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def is_signed_in(client) -> bool:
    page = client.get("/")
    return 'data-testid="signed-in-as"' in page.get_data(as_text=True)


# --- the page --------------------------------------------------------------------------


def test_the_sign_in_page_has_a_form_with_a_csrf_token(client, people):
    response = client.get("/auth/login")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'name="username"' in page and 'name="password"' in page
    assert 'name="csrf_token"' in page
    assert response.headers["Cache-Control"] == "no-store"
    assert "<h1>Masuk</h1>" in page
    assert "<h1>Sign in</h1>" in client.get("/auth/login?lang=en").get_data(as_text=True)


# --- passwords -------------------------------------------------------------------------


def test_a_staff_member_signs_in_and_lands_on_the_counter_screen(client, people, app):
    response = sign_in(client, "budi")
    assert response.status_code == 302
    expected = "/counter/" if "counter.index" in app.view_functions else "/"
    assert response.headers["Location"] == expected
    assert is_signed_in(client)
    assert "Budi" in text_of(client.get("/")) or "budi" in text_of(client.get("/"))


def test_the_landing_page_falls_back_to_the_start_page(app, people, monkeypatch):
    """Before the counter blueprint exists, staff land on the start page, admins on the
    devices page."""
    functions = {k: v for k, v in app.view_functions.items() if k != "counter.index"}
    monkeypatch.setattr(app, "view_functions", functions)
    with app.test_request_context():
        assert landing_url(people["staff"]) == "/"
        assert landing_url(people["admin"]) == "/admin/devices"
        assert landing_url(people["executive"]) == "/"


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(client, people):
    wrong = sign_in(client, "budi", "salah-sekali")
    unknown = sign_in(client, "nobody", "salah-sekali")
    assert wrong.status_code == unknown.status_code == 401
    assert GENERIC_ID in text_of(wrong) and GENERIC_ID in text_of(unknown)
    # the pages differ only in the username put back into the form and the CSRF token
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", wrong.get_data(as_text=True)) == strip.sub(
        "", unknown.get_data(as_text=True)
    )
    assert not is_signed_in(client)
    db.session.refresh(people["staff"])
    assert people["staff"].failed_logins == 1


def test_english_sign_in_errors(client, people):
    client.get("/?lang=en")
    assert GENERIC_EN in text_of(sign_in(client, "budi", "wrong-password"))


def test_an_inactive_account_is_refused_like_a_wrong_password(client, people):
    people["staff"].active = False
    db.session.commit()
    response = sign_in(client, "budi")
    assert response.status_code == 401 and GENERIC_ID in text_of(response)


@pytest.mark.parametrize(
    "form, status",
    [
        ({}, 400),
        ({"username": "budi"}, 400),
        ({"password": PASSWORD}, 400),
        ({"username": "   ", "password": PASSWORD}, 400),
        ({"username": "b" * 5000, "password": PASSWORD}, 400),
        ({"username": "budi", "password": "p" * 5000}, 400),
        ({"username": "bu\x00di", "password": PASSWORD}, 401),
        ({"username": ["budi", "dewi"], "password": PASSWORD}, 302),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(client, people, form, status):
    form = {**form, "csrf_token": csrf_from(client)}
    response = client.post("/auth/login", data=form)
    assert response.status_code == status, text_of(response)[:300]
    if status >= 400:
        assert re.search(r'class="form-error"', response.get_data(as_text=True))


def test_authenticate_locks_after_five_failures_and_unlocks_after_fifteen_minutes(session, people):
    t0 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    user = people["staff"]
    for i in range(4):
        with pytest.raises(accounts.SignInRefused) as refused:
            accounts.authenticate("budi", "wrong", now=t0 + timedelta(seconds=i))
        assert refused.value.code == "bad_credentials"
    assert user.failed_logins == 4 and user.locked_until is None
    with pytest.raises(accounts.SignInRefused):
        accounts.authenticate("budi", "wrong", now=t0 + timedelta(seconds=4))
    assert user.failed_logins == 5
    assert user.locked_until == t0 + timedelta(seconds=4) + accounts.LOCKOUT
    # locked: even the right password is refused, with the same message
    with pytest.raises(accounts.SignInRefused) as refused:
        accounts.authenticate("budi", PASSWORD, now=t0 + timedelta(minutes=14))
    assert refused.value.code == "locked"
    # after the lock-out ran out, the right password works and the count starts again
    assert accounts.authenticate("budi", PASSWORD, now=t0 + timedelta(minutes=15, seconds=5))
    assert user.failed_logins == 0 and user.locked_until is None


def test_after_the_lock_ran_out_one_failure_does_not_lock_again(session, people):
    t0 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    for _ in range(5):
        with pytest.raises(accounts.SignInRefused):
            accounts.authenticate("budi", "wrong", now=t0)
    later = t0 + timedelta(minutes=16)
    with pytest.raises(accounts.SignInRefused) as refused:
        accounts.authenticate("budi", "wrong", now=later)
    assert refused.value.code == "bad_credentials"
    assert people["staff"].failed_logins == 1 and people["staff"].locked_until is None


def test_a_success_resets_the_failure_count(session, people):
    now = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    for _ in range(4):
        with pytest.raises(accounts.SignInRefused):
            accounts.authenticate("budi", "wrong", now=now)
    accounts.authenticate("budi", PASSWORD, now=now)
    assert people["staff"].failed_logins == 0
    for _ in range(4):
        with pytest.raises(accounts.SignInRefused):
            accounts.authenticate("budi", "wrong", now=now)
    assert people["staff"].locked_until is None


def test_lock_out_through_the_page_and_unlock_after_fifteen_minutes(client, people):
    start = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            assert sign_in(client, "budi", "wrong-password").status_code == 401
        locked = sign_in(client, "budi")
        assert locked.status_code == 401
        assert GENERIC_ID in text_of(locked)
        assert not is_signed_in(client)
    db.session.refresh(people["staff"])
    assert people["staff"].locked_until == start + timedelta(minutes=15)
    # another account from the same address is not affected
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        assert sign_in(client, "dewi").status_code == 302
        client.post("/auth/logout", data={"csrf_token": csrf_from(client, "/")})
    with time_machine.travel(start + timedelta(minutes=15, seconds=1), tick=False):
        assert sign_in(client, "budi").status_code == 302
        assert is_signed_in(client)
    db.session.refresh(people["staff"])
    assert people["staff"].failed_logins == 0


def test_an_outdated_hash_is_rehashed_on_sign_in(session, people):
    user = people["staff"]
    old = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1).hash(PASSWORD)
    user.password_hash = old
    session.commit()
    accounts.authenticate("budi", PASSWORD, now=datetime.now(UTC))
    assert user.password_hash != old
    assert not accounts._hasher.check_needs_rehash(user.password_hash)
    assert accounts.check_password(user, PASSWORD)


def test_the_sign_in_limit_per_address(client, people, app):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    limiter.reset()
    try:
        for _ in range(3):
            assert sign_in(client, "budi", "wrong-password").status_code == 401
        refused = sign_in(client, "budi")
        assert refused.status_code == 429
        assert "Terlalu banyak percobaan masuk" in text_of(refused)
        # the page itself still opens
        assert client.get("/auth/login").status_code == 200
    finally:
        app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
        limiter.reset()


# --- next --------------------------------------------------------------------------------


def test_next_brings_the_person_back_to_the_page_they_wanted(client, people):
    response = client.get("/admin/devices")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")
    login_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/admin/devices"' in login_page
    response = sign_in(client, "admin", next="/admin/devices")
    assert response.headers["Location"] == "/admin/devices"


EVIL = [
    "//evil.example",
    "http://evil.example",
    "https://evil.example/x",
    "/\\evil.example",
    "/\t/evil.example",
    "javascript:alert(1)",
    "evil.example",
]


@pytest.mark.parametrize("target", EVIL)
def test_next_never_leads_to_another_site(client, people, target):
    response = sign_in(client, "admin", next=target)
    assert response.status_code == 302
    assert response.headers["Location"] in ("/counter/", "/admin/devices", "/")
    login_page = client.get("/auth/login", query_string={"next": target})
    assert "evil" not in login_page.headers.get("Location", "")


# --- CSRF --------------------------------------------------------------------------------


def test_csrf_is_really_on(app):
    assert app.config.get("WTF_CSRF_ENABLED", True) is True


def test_a_sign_in_without_or_with_a_wrong_csrf_token_is_refused(client, people):
    client.get("/auth/login")
    response = client.post("/auth/login", data={"username": "budi", "password": PASSWORD})
    assert response.status_code == 400
    assert "Formulir ini sudah terlalu lama" in text_of(response)
    response = client.post(
        "/auth/login", data={"username": "budi", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 400
    assert not is_signed_in(client)
    db.session.refresh(people["staff"])
    assert people["staff"].failed_logins == 0


def test_a_token_of_another_session_is_refused(client, people, app):
    other = app.test_client()
    token = csrf_from(other)
    client.get("/auth/login")
    response = client.post(
        "/auth/login", data={"username": "budi", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 400


# --- signing out -------------------------------------------------------------------------


def test_sign_out_is_post_only_and_needs_the_csrf_token(client, people):
    assert sign_in(client, "budi").status_code == 302
    response = client.get("/auth/logout")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert "Keluar dengan tombol" in text_of(response)
    assert is_signed_in(client)
    assert client.post("/auth/logout").status_code == 400
    assert is_signed_in(client)
    response = client.post("/auth/logout", data={"csrf_token": csrf_from(client, "/")})
    assert response.status_code == 302 and response.headers["Location"] == "/auth/login"
    assert "Anda sudah keluar." in text_of(client.get("/auth/login"))
    assert not is_signed_in(client)


def test_signing_in_keeps_the_language_choice(client, people):
    client.get("/?lang=en")
    sign_in(client, "budi")
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)


def test_a_session_version_bump_signs_out_every_session(client, people, app):
    from .apihelp import IsolatedClient

    second = IsolatedClient(app, app.response_class, use_cookies=True)
    assert sign_in(client, "admin").status_code == 302
    assert sign_in(second, "admin").status_code == 302
    assert client.get("/admin/devices").status_code == 200
    accounts.sign_out_everywhere(db.session.get(type(people["admin"]), people["admin"].id))
    db.session.commit()
    for c in (client, second):
        response = c.get("/admin/devices")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/auth/login")


def test_sign_out_everywhere_from_the_page(client, people, app):
    from .apihelp import IsolatedClient

    second = IsolatedClient(app, app.response_class, use_cookies=True)
    sign_in(second, "admin")
    sign_in(client, "admin")
    received = []
    from queue_app.core.events import signal

    def receiver(sender, **payload):
        received.append(payload)

    signal("user.signed_out").connect(receiver)
    try:
        response = client.post(
            "/auth/logout", data={"csrf_token": csrf_from(client, "/"), "everywhere": "1"}
        )
    finally:
        signal("user.signed_out").disconnect(receiver)
    assert response.status_code == 302
    assert second.get("/admin/devices").status_code == 302
    assert received and received[0]["everywhere"] is True
    assert received[0]["user_id"] == people["admin"].id


def test_an_old_session_cookie_format_is_not_accepted(client, people, app):
    with client.session_transaction() as sess:
        sess["_user_id"] = str(people["admin"].id)  # no ":version"
        sess["_fresh"] = True
    assert client.get("/admin/devices").status_code == 302


# --- roles -------------------------------------------------------------------------------


def test_the_wrong_role_gets_a_403_page_with_a_message(client, people):
    sign_in(client, "budi")
    response = client.get("/admin/devices")
    assert response.status_code == 403
    assert "Peran Anda tidak boleh membuka halaman ini." in text_of(response)


def test_roles_required_and_branch_access(app, people):
    from flask_login import login_user

    @roles_required(Role.ADMIN, "branch_manager")
    def managers_only():
        return "ok"

    def status_of(call):
        try:
            return call()
        except HTTPException as error:
            return error.get_response().status_code

    with app.test_request_context("/"):
        assert status_of(managers_only).status_code == 302  # not signed in: to the sign-in page
    with app.test_request_context("/"):
        login_user(people["staff"])
        assert status_of(managers_only) == 403
        assert branch_access(people["jkt"]) is people["staff"]
        assert branch_access(people["jkt"], floor=True) is people["staff"]
        assert status_of(lambda: branch_access(people["mnl"])) == 403
        assert status_of(lambda: branch_access(None)) == 404
    with app.test_request_context("/"):
        login_user(people["manager"])
        assert managers_only() == "ok"
    with app.test_request_context("/"):
        login_user(people["executive"])
        assert branch_access(people["mnl"]) is people["executive"]
        assert status_of(lambda: branch_access(people["mnl"], floor=True)) == 403


def test_production_cookies_are_secure():
    from queue_app import config

    settings = {k: getattr(config.ProductionConfig, k) for k in dir(config.ProductionConfig)}
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["SESSION_COOKIE_HTTPONLY"] is True
    assert settings["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert settings["REMEMBER_COOKIE_SECURE"] is True
    assert settings["REMEMBER_COOKIE_HTTPONLY"] is True
    assert settings["REMEMBER_COOKIE_SAMESITE"] == "Lax"
    assert settings["SESSION_PROTECTION"] == "strong"


def test_the_session_cookie_is_httponly_and_samesite(client, people):
    response = sign_in(client, "budi")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
