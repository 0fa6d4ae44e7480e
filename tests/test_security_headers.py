"""Security headers (queue_app/auth/headers.py) and cookie flags, per profile.

Every profile sends the same Content-Security-Policy (the browser tests load the pages under
it: a violation is a console error, which they count as a problem); this file checks the
header itself, that the templates and scripts keep to what it allows (no inline code, no
inline styles), HTTPS and HSTS in production only, and the Secure/HttpOnly/SameSite flags of
the session, remember-me and device cookies in production.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask_login import login_user

from queue_app import create_app
from queue_app.accounts.models import Role
from queue_app.config import EmbeddedConfig, ProductionConfig
from queue_app.devices.models import DeviceKind
from queue_app.devices.services import register_device
from queue_app.extensions import db

from .apihelp import fast_passwords

PACKAGE = Path(__file__).resolve().parent.parent / "queue_app"
TEMPLATES = PACKAGE / "templates"
SCRIPTS = PACKAGE / "static" / "js"
# rendered only into something that is not a web page: an e-mail (mail clients drop <style>,
# so its styles are inline) and the PDF of the weekly review (WeasyPrint, never served)
NOT_PAGES = {"notify/email.html", "cx/review_pdf.html"}
PASSWORD = "rahasia-123"

EXPECTED_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "media-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def csp_of(response) -> dict[str, str]:
    header = response.headers.get("Content-Security-Policy")
    assert header, dict(response.headers)
    directives = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition(" ")
        assert name not in directives, header
        directives[name] = value.strip()
    return directives


def assert_hardened(response) -> None:
    assert csp_of(response) == EXPECTED_CSP
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    policy = response.headers["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in policy


# --- the testing profile (what the browser tests serve) ---------------------------------------


@pytest.mark.parametrize("path", ["/", "/auth/login", "/b/NOPE", "/kiosk/", "/api/v1/"])
def test_every_answer_carries_the_headers_and_no_hsts_over_http(client, path):
    response = client.get(path)
    assert response.status_code < 500
    assert_hardened(response)
    assert "Strict-Transport-Security" not in response.headers


def test_an_extra_connect_origin_is_added_to_connect_src(app):
    from queue_app.auth.headers import content_security_policy

    policy = content_security_policy({"CSP_CONNECT_SRC": "wss://q.bank.example, https://x.test"})
    assert policy["connect-src"] == "'self' wss://q.bank.example https://x.test"
    assert content_security_policy(app.config) == EXPECTED_CSP


def test_a_view_keeps_its_own_referrer_policy(client, app_ctx):
    # the device-token redirect (devices/web.py) says no-referrer; talisman must not overwrite it
    _device, token = register_device(DeviceKind.KIOSK, now=datetime.now(UTC))
    db.session.commit()
    response = client.get(f"/kiosk/?device_token={token}")
    assert response.status_code == 302
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert csp_of(response) == EXPECTED_CSP


# --- what the policy allows: the templates and scripts keep to it -----------------------------


def _pages():
    for path in sorted(TEMPLATES.rglob("*.html")):
        name = path.relative_to(TEMPLATES).as_posix()
        if name not in NOT_PAGES:
            # Jinja comments are not sent to the browser
            yield name, re.sub(r"\{#.*?#\}", "", path.read_text(encoding="utf-8"), flags=re.S)


def test_no_template_has_inline_script_code_styles_or_handlers():
    offenders = []
    for name, text in _pages():
        for match in re.finditer(r"<script\b([^>]*)>", text):
            attrs = match.group(1)
            if "src=" not in attrs and 'type="application/json"' not in attrs:
                offenders.append(f"{name}: inline <script{attrs}>")
        if re.search(r"<style\b", text):
            offenders.append(f"{name}: <style> element")
        for match in re.finditer(r"\sstyle\s*=", text):
            offenders.append(f"{name}: style attribute at {match.start()}")
        for match in re.finditer(r"\son[a-z]+\s*=\s*[\"']", text):
            offenders.append(f"{name}: inline event handler {match.group(0).strip()}")
        if "javascript:" in text:
            offenders.append(f"{name}: javascript: URL")
    assert offenders == []


def test_the_static_scripts_use_no_eval_and_write_no_style_attributes():
    offenders = []
    for path in sorted(SCRIPTS.glob("*.js")):
        text = path.read_text(encoding="utf-8")
        for pattern in (r"\beval\(", r"new Function\(", r"setAttribute\(\s*[\"']style", r"style="):
            if re.search(pattern, text):
                offenders.append(f"{path.name}: {pattern}")
    assert offenders == []


def test_the_data_blocks_are_json_the_scripts_read():
    """The settings a page's script needs are JSON blocks, never executed code."""
    text = (TEMPLATES / "dashboard" / "_scripts.html").read_text(encoding="utf-8")
    assert 'id="dashboard-config"' in text
    assert "dashboard-config" in (SCRIPTS / "dashboard.js").read_text(encoding="utf-8")


# --- production: HTTPS, HSTS, cookie flags -----------------------------------------------------


@pytest.fixture
def production(app, app_ctx, monkeypatch):
    monkeypatch.setattr(ProductionConfig, "SECRET_KEY", "a-production-secret-for-this-test")
    prod = create_app(
        "production",
        SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
        RATELIMIT_STORAGE_URI="memory://",
        SOCKETIO_MESSAGE_QUEUE=None,
    )
    assert prod.config["PROFILE"] == "production"
    return prod


def test_production_cookie_settings(production):
    config = production.config
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["REMEMBER_COOKIE_SECURE"] is True
    assert config["REMEMBER_COOKIE_HTTPONLY"] is True
    assert config["REMEMBER_COOKIE_SAMESITE"] == "Lax"
    assert config["FORCE_HTTPS"] is True
    assert config["HSTS_MAX_AGE_S"] >= 180 * 24 * 3600


def test_production_redirects_pages_to_https_and_sends_hsts_there(production):
    client = production.test_client()
    plain = client.get("/auth/login?next=/counter/", base_url="http://queue.bank.test")
    assert plain.status_code == 301
    assert plain.headers["Location"] == "https://queue.bank.test/auth/login?next=/counter/"
    assert "Strict-Transport-Security" not in plain.headers
    secure = client.get("/auth/login", base_url="https://queue.bank.test")
    assert secure.status_code == 200
    assert_hardened(secure)
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    # behind the proxy (PROXY_COUNT=1): its X-Forwarded-Proto says the client used HTTPS
    proxied = client.get(
        "/auth/login",
        base_url="http://127.0.0.1:8000",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
    )
    assert proxied.status_code == 200
    assert "Strict-Transport-Security" in proxied.headers


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/", "/api/v1/branches"])
def test_production_leaves_probes_and_the_api_on_plain_http(production, path):
    response = production.test_client().get(path, base_url="http://10.0.0.5:8000")
    assert response.status_code in (200, 503), (path, response.status_code)
    assert "Location" not in response.headers


def test_production_session_cookie_is_secure_httponly_lax(production, make, monkeypatch):
    fast_passwords(monkeypatch)
    make.user("budi", role=Role.STAFF, branches=[make.branch("JKT01")], password=PASSWORD)
    db.session.commit()
    client = production.test_client()
    base = "https://queue.bank.test"
    page = client.get("/auth/login", base_url=base).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        "/auth/login",
        data={"username": "budi", "password": PASSWORD, "csrf_token": token},
        base_url=base,
        headers={"Referer": base + "/auth/login"},  # WTF_CSRF_SSL_STRICT on HTTPS
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    assert_cookie_flags(cookies[-1])


def test_production_remember_cookie_is_secure_httponly_lax(production, make, monkeypatch):
    fast_passwords(monkeypatch)
    user = make.user("budi", role=Role.ADMIN, password=PASSWORD)
    db.session.commit()
    with production.test_request_context("/", base_url="https://queue.bank.test"):
        login_user(user, remember=True)
        response = production.process_response(production.make_response("ok"))
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_")]
    assert cookies, response.headers
    assert_cookie_flags(cookies[0])


def test_production_device_cookie_is_secure_httponly_lax(production):
    response = production.test_client().get("/kiosk/", base_url="https://queue.bank.test")
    assert response.status_code == 200  # the pairing screen of a new device
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("qa_device_")]
    assert cookies, response.headers
    assert_cookie_flags(cookies[0])


def test_the_embedded_profile_stays_on_plain_http(app, app_ctx, monkeypatch):
    """`python run.py` on http://127.0.0.1: no redirect, no HSTS, cookies without Secure."""
    monkeypatch.setattr(EmbeddedConfig, "SECRET_KEY", "an-embedded-secret-for-this-test")
    embedded = create_app(
        "embedded",
        SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
        SOCKETIO_MESSAGE_QUEUE=None,
    )
    response = embedded.test_client().get("/kiosk/", base_url="http://127.0.0.1:5000")
    assert response.status_code == 200
    assert_hardened(response)
    assert "Strict-Transport-Security" not in response.headers
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("qa_device_"))
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def assert_cookie_flags(cookie: str) -> None:
    parts = {p.strip().split("=")[0].lower() for p in cookie.split(";")[1:]}
    assert "secure" in parts, cookie
    assert "httponly" in parts, cookie
    assert "SameSite=Lax" in cookie, cookie
