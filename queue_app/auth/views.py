"""Sign-in and sign-out pages."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ..accounts.services import (
    LOCKOUT,
    MAX_FAILED_LOGINS,
    SignInRefused,
    authenticate,
    record_sign_out,
    sign_out_everywhere,
)
from ..core.types import utcnow
from ..extensions import db, limiter
from ..i18n import SESSION_KEY, safe_next_path
from . import bp
from .access import landing_url, page_error

# longer input than this is not a username or a password anyone typed
MAX_USERNAME = 64
MAX_PASSWORD = 1024


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _too_many_attempts(_limit):
    return _login_page(
        _("Too many sign-in attempts from this address. Wait a minute and try again."),
        status=429,
    )


def _login_page(error: str | None = None, *, status: int = 200, username: str = ""):
    response = current_app.make_response(
        render_template(
            "auth/login.html",
            error=error,
            username=username,
            next_path=safe_next_path(request.values.get("next")) or "",
            max_failed=MAX_FAILED_LOGINS,
            lockout_minutes=int(LOCKOUT.total_seconds() // 60),
        )
    )
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], on_breach=_too_many_attempts)
def login():
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(safe_next_path(request.args.get("next")) or landing_url(current_user))
        return _login_page()
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    if not username.strip() or not password:
        return _login_page(
            _("Enter your username and password."), status=400, username=username[:MAX_USERNAME]
        )
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        return _login_page(_("Wrong username or password."), status=400)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in username):
        # no username has control characters (and PostgreSQL refuses NUL in a query)
        return _login_page(_("Wrong username or password."), status=401)
    try:
        user = authenticate(username, password, now=utcnow())
    except SignInRefused:
        db.session.commit()  # the failed attempt counts towards the lock-out
        return _login_page(_("Wrong username or password."), status=401, username=username.strip())
    db.session.commit()
    # a fresh session for the signed-in person; only the language choice carries over
    language = session.get(SESSION_KEY)
    session.clear()
    if language:
        session[SESSION_KEY] = language
    login_user(user)
    return redirect(safe_next_path(request.form.get("next")) or landing_url(user))


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    if request.method != "POST":
        response = page_error(405, _("Sign out with the button at the top of the page."))
        response.headers["Allow"] = "POST"
        return response
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        if request.form.get("everywhere"):
            sign_out_everywhere(user)
        else:
            record_sign_out(user)
        db.session.commit()
    language = session.get(SESSION_KEY)
    logout_user()
    session.clear()
    session["_remember"] = "clear"  # Flask-Login deletes a remember-me cookie, if any
    if language:
        session[SESSION_KEY] = language
    flash(_("You are signed out."), "info")
    return redirect(safe_next_path(request.form.get("next")) or url_for("auth.login"))
