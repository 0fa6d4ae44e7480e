"""queue_app: branch queues and customer journeys for service networks."""

from flask import Flask

from . import config as config_module


def create_app(profile: str | None = None, **overrides) -> Flask:
    """Build the application for a profile (`embedded`, `production`, `testing`).

    Registers extensions, blueprints, socket handlers and CLI commands; nothing else.
    Migrations are their own step (`flask db upgrade`), never run here.
    """
    app = Flask(__name__, instance_path=str(config_module.INSTANCE_DIR))
    app.config.from_mapping(config_module.load(profile))
    app.config.update(overrides)
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies:
        # behind a reverse proxy: the client's address (rate limits per address) and the
        # scheme and host of links come from the proxy's X-Forwarded-* headers, trusting
        # exactly `PROXY_COUNT` hops and no more (a client can't forge its address)
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_prefix=0
        )

    from .observability import init_observability

    # first: the request id and the access line wrap every other hook; /metrics
    init_observability(app)

    from . import models  # noqa: F401  (every model registered before anything binds)
    from .extensions import babel, db, migrate, socketio

    db.init_app(app)
    migrate.init_app(app, db, directory=str(config_module.MIGRATIONS_DIR))
    with app.app_context():
        from .core.db import configure_engine

        configure_engine(db.engine)

    from .i18n import select_locale

    babel.init_app(app, locale_selector=select_locale)
    from flask_babel import get_locale

    app.jinja_env.globals["get_locale"] = get_locale
    from .realtime.disconnects import client_manager_options

    # `socketio` keeps the options of earlier `init_app` calls: a test process builds several apps
    socketio.server_options.pop("client_manager", None)
    socketio.init_app(
        app,
        async_mode="threading",
        message_queue=app.config["SOCKETIO_MESSAGE_QUEUE"],
        cors_allowed_origins=app.config["CORS_ORIGINS"] or None,
        **client_manager_options(app.config["SOCKETIO_MESSAGE_QUEUE"]),
    )

    from .admin import bp as admin_bp
    from .api import init_api
    from .auth import init_auth
    from .booking.web import bp as booking_bp
    from .counter import bp as counter_bp
    from .cx import bp as cx_bp
    from .dashboard import bp as dashboard_bp
    from .devices.views import bp as devices_bp
    from .display import bp as display_bp
    from .feedback.tablet import bp as feedback_tablet_bp
    from .feedback.web import bp as feedback_pages_bp
    from .kiosk import bp as kiosk_bp
    from .mobile import bp as mobile_bp
    from .realtime import init_realtime
    from .report_pages import bp as reports_bp
    from .web import bp as web_bp

    init_auth(app)  # sessions, CSRF and rate limits first: every page stands on them
    init_api(app)
    for blueprint in (
        web_bp,
        admin_bp,
        devices_bp,
        kiosk_bp,
        counter_bp,
        display_bp,
        feedback_tablet_bp,
        feedback_pages_bp,
        booking_bp,
        mobile_bp,
        cx_bp,
        dashboard_bp,
        reports_bp,
    ):
        app.register_blueprint(blueprint)
    init_realtime(app)
    from .notify.receivers import init_notify

    init_notify(app)  # the outbox hears about bookings (and writes their confirmations)
    from .feedback.invitations import init_invitations

    init_invitations(app)  # a finished visit step: its rating invitation (sent or skipped)
    from .cases.receivers import init_cases
    from .cases.recovery import bp as case_recovery_bp

    init_cases(app)  # feedback that meets its touchpoint's criteria opens a case
    app.register_blueprint(case_recovery_bp)
    from .alerts.receivers import init_alerts

    init_alerts(app)  # every committed change of a branch re-evaluates its alert thresholds
    from .webhooks.receivers import init_webhooks

    init_webhooks(app)  # calls, finishes, feedback, escalations, alerts: their webhook rows
    from .audit.hooks import init_audit
    from .audit.views import bp as audit_bp

    init_audit(app)  # every staff action is in the audit log (its own transaction: refusals)
    app.register_blueprint(audit_bp)

    from .cli import register_cli

    register_cli(app)
    return app
