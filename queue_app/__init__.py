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
    socketio.init_app(
        app,
        async_mode="threading",
        message_queue=app.config["SOCKETIO_MESSAGE_QUEUE"],
        cors_allowed_origins=app.config["CORS_ORIGINS"] or None,
    )

    from .api import init_api
    from .web import bp as web_bp

    init_api(app)
    app.register_blueprint(web_bp)

    from .cli import register_cli

    register_cli(app)
    return app
