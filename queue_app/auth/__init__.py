"""Staff sign-in (sessions, CSRF, lock-out) and the access checks of the page blueprints."""

from flask import Blueprint, g, request, session
from flask_babel import lazy_gettext as _l

bp = Blueprint("auth", __name__, url_prefix="/auth")


def init_auth(app) -> None:
    from flask_login import current_user
    from flask_wtf.csrf import CSRFError

    from ..accounts.models import User
    from ..extensions import csrf, db, limiter, login_manager

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Sign in to open this page.")
    login_manager.login_message_category = "info"
    login_manager.needs_refresh_message = _l("Sign in again to open this page.")
    login_manager.needs_refresh_message_category = "info"
    # SESSION_PROTECTION in the configuration overrides this default
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str):
        # the session carries "id:session_version"; an older version is signed out
        uid, _, version = user_id.partition(":")
        if not uid.isdigit() or not version.isdigit():
            return None
        user = db.session.get(User, int(uid))
        if user is None or not user.active or user.session_version != int(version):
            return None
        return user

    @app.before_request
    def _signed_in_language():
        # the signed-in person's language preference (queue_app.i18n reads g.user). Pages
        # only: the API authenticates with bearer tokens, never with the session cookie.
        if request.path.startswith("/api/") or request.endpoint == "static":
            return
        if "_user_id" in session and current_user.is_authenticated:
            g.user = current_user._get_current_object()

    csrf.init_app(app)

    @app.errorhandler(CSRFError)
    def _csrf_refused(error):
        from flask_babel import gettext

        from .access import page_error

        db.session.rollback()
        return page_error(
            400,
            gettext(
                "The form was too old or came from another site. Go back, reload the page "
                "and try again."
            ),
        )

    limiter.init_app(app)
    from .headers import init_security_headers

    init_security_headers(app)  # CSP and friends, HTTPS in production

    from . import views  # noqa: F401

    app.register_blueprint(bp)
