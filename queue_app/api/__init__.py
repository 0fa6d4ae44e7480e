"""REST API v1 (JSON). The OpenAPI document is generated from these blueprints."""

from flask import jsonify, request
from flask_smorest import Api
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from ..core.errors import DomainError
from ..extensions import db
from .schemas import ErrorSchema

API_PREFIX = "/api/v1"

_REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}

# the database is down, unreachable, overloaded or asked us to retry (serialization failure,
# deadlock, lock timeout): worth a 503 and a retry. Any other database error is a bug: 500.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def error_body(status: int, message: str, code: str | None = None, **extra):
    body = {"code": code or _REASONS.get(status, "error"), "message": message}
    body.update(extra)
    return jsonify(error=body), status


def _is_api_request() -> bool:
    return request.path.startswith(API_PREFIX + "/") or request.path == API_PREFIX


class QueueApi(Api):
    """flask-smorest with this project's error shape: {"error": {"code", "message"}}."""

    # documents the error responses with the shape handle_http_exception really returns
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        if not _is_api_request():
            return error
        db.session.rollback()
        extra = {}
        data = getattr(error, "data", None) or {}
        if error.code == 400 and data.get("messages", {}).get("json") == ["Invalid JSON body."]:
            return error_body(400, "the request body is not valid JSON", "bad_json")
        if "messages" in data:  # webargs validation errors, by location
            messages = data["messages"]
            extra["fields"] = (
                messages.get("json", messages) if isinstance(messages, dict) else messages
            )
            message = "the request does not validate: " + _summarise(extra["fields"])
        else:
            message = data.get("message") or error.description or error.name
        response = error_body(error.code, message, data.get("code"), **extra)
        headers = response[0].headers
        # what the exception itself says in headers (e.g. `Allow` for a 405), but not its
        # HTML content type
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                headers[name] = value
        if error.code == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="queue_app"'
        return response


def _summarise(fields) -> str:
    if isinstance(fields, dict):
        parts = []
        for key, value in fields.items():
            inner = _summarise(value)
            parts.append(f"{key}: {inner}")
        return "; ".join(parts)
    if isinstance(fields, list):
        return ", ".join(_summarise(v) for v in fields)
    return str(fields)


api = QueueApi()


def init_api(app):
    app.config.setdefault("API_SPEC_OPTIONS", {})
    app.config["API_SPEC_OPTIONS"].update(
        {
            "info": {
                "description": "Branches, services, tickets and counters of queue_app. Staff "
                "calls authenticate with `Authorization: Bearer <token>` "
                "(`flask --app queue_app tokens create <username>`).",
            },
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        }
    )
    api.init_app(app)

    from ..extensions import csrf
    from . import alerts as alerts_api
    from . import appointments, branches, counters, meta, tickets
    from . import cases as cases_api
    from . import exports as exports_api
    from . import feedback as feedback_api
    from . import insights as insights_api
    from . import metrics as metrics_api
    from . import remote as remote_api
    from . import reports as reports_api
    from . import settings as settings_api

    for module in (
        meta,
        branches,
        tickets,
        counters,
        appointments,
        insights_api,
        remote_api,
        feedback_api,
        settings_api,
        metrics_api,
        cases_api,
        alerts_api,
        reports_api,
        exports_api,
    ):
        # the API authenticates with bearer tokens, never with the session cookie
        csrf.exempt(module.blp)
        api.register_blueprint(module.blp, url_prefix=API_PREFIX)

    @app.errorhandler(DomainError)
    def _domain_error(error: DomainError):
        db.session.rollback()
        return error_body(error.status, error.message, error.code)

    @app.errorhandler(SQLAlchemyError)
    def _database_error(error):
        db.session.rollback()
        app.logger.exception("database error")
        if isinstance(error, UNAVAILABLE_ERRORS):
            if _is_api_request():
                return error_body(503, "the database is not available, try again", "unavailable")
            return "Service unavailable", 503
        if _is_api_request():
            return error_body(500, "internal error", "internal_error")
        return "Internal server error", 500
