"""Logs: one line per record on stderr, JSON (`LOG_FORMAT=json`, the production default: one
object per line for the log shipper) or text; every record emitted while a request is served
carries its `request_id`, every record of a scheduled job run its `job`.

The request id is the caller's `X-Request-ID` when it is sane (8 to 128 characters of
`A-Z a-z 0-9 - _ . : = + /`, what proxies and load balancers send), else a new random one; the
response always returns it in `X-Request-ID`. Each request ends with one access line on the
`queue_app.access` logger: method, path, endpoint, status, duration_ms and the signed-in
user's id.

Nothing secret reaches the access line: the query string is never logged (device tokens,
arrival keys), the path's secret parts (a visit token, a signed link, a booking code) are
replaced by their parameter's name (`/t/<token>`), and any other long path segment (a token
outside a known route) by `<redacted>`; headers are not logged at all.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy import inspect as sa_inspect

# `metrics` is imported where it is used: gunicorn's master builds `JsonLogFormatter` from this
# module and must not create the metrics (their files) itself

access_log = logging.getLogger("queue_app.access")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9\-_.:=+/]{8,128}")
# view arguments that are secrets (or guessable keys to a customer's booking) in a path
SECRET_ARGS = frozenset({"token", "signed", "booking_code"})
_LONG_SEGMENT = 24  # tokens are 32+ characters; codes and names are shorter
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MARK = "_queue_app_log_handler"


def sane_request_id(value: str | None) -> str | None:
    if value and _SANE_ID.fullmatch(value):
        return value
    return None


def request_id() -> str | None:
    if has_request_context():
        return g.get("request_id")
    return None


# --- records ---------------------------------------------------------------------------------

_factory_installed = False


def _install_record_factory() -> None:
    """Every record, whichever handler gets it (the test suite's caplog too), knows the request
    and job it was emitted in."""
    global _factory_installed
    if _factory_installed:
        return
    from .metrics import current_job

    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        record.request_id = request_id()
        record.job = current_job()
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(rid)s]%(jobpart)s %(message)s")

    def format(self, record):
        record.rid = getattr(record, "request_id", None) or "-"
        job = getattr(record, "job", None)
        record.jobpart = f" job={job}" if job else ""
        return super().format(record)


class JsonLogFormatter(JsonFormatter):
    """One JSON object per record: time (UTC), level, logger, message, request_id or job when
    there is one, and the record's extra fields. Takes no settings (gunicorn's dictConfig
    builds it by class name)."""

    def __init__(self, *_args, **_kwargs):
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )

    def add_fields(self, log_data, record, message_dict):
        super().add_fields(log_data, record, message_dict)
        for key in ("request_id", "job", "rid", "jobpart", "taskName"):
            if not log_data.get(key):
                log_data.pop(key, None)

    def formatTime(self, record, datefmt=None):
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_formatter() -> logging.Formatter:
    return JsonLogFormatter()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when the record comes (a test runner swaps it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging(log_format: str, level: str = "INFO") -> logging.Handler:
    """One handler of ours on the root logger (replacing one an earlier call installed)."""
    _install_record_factory()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    setattr(handler, _MARK, True)
    handler.setFormatter(json_formatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # werkzeug's own request lines (the embedded server) carry the raw URL with its tokens and
    # query string; the access line below replaces them
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Flask-Migrate's import of alembic announces its plugins in every process
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    return handler


# --- requests --------------------------------------------------------------------------------


def safe_path() -> str:
    path = request.path
    for name, value in (request.view_args or {}).items():
        if name in SECRET_ARGS and value not in (None, ""):
            path = path.replace(str(value), f"<{name}>")
    parts = [
        "<redacted>" if len(part) >= _LONG_SEGMENT and not part.startswith("<") else part
        for part in path.split("/")
    ]
    # no control characters: a %0A in a URL must not start a forged line of a text log
    return _CONTROL.sub("?", "/".join(parts))[:256]


def _user_id():
    """The signed-in user's id, taken from the row's identity: a view that ended its read-only
    transaction with a rollback expired the user, and asking it anything would read the row
    again for the log line's sake."""
    user = g.get("user") or g.get("_login_user")
    if user is None:
        return None
    state = sa_inspect(user, raiseerr=False)
    if state is not None:
        return state.identity[0] if state.identity else None
    return getattr(user, "id", None) if getattr(user, "is_authenticated", False) else None


def _start_request():
    g.request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish_request(response):
    rid = g.get("request_id")
    if rid is None:  # a request that failed before our first hook ran
        _start_request()
        rid = g.request_id
    response.headers[REQUEST_ID_HEADER] = rid
    seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
    endpoint = request.url_rule.endpoint if request.url_rule is not None else None
    status = response.status_code
    from .metrics import observe_request

    observe_request(request.method, endpoint, status, seconds)
    path = safe_path()
    duration_ms = round(seconds * 1000, 2)
    access_log.log(
        logging.WARNING if status >= 500 else logging.INFO,
        "%s %s %s %.2f ms",
        request.method,
        path,
        status,
        duration_ms,
        extra={
            "method": request.method,
            "path": path,
            "endpoint": endpoint,
            "status": status,
            "duration_ms": duration_ms,
            "user_id": _user_id(),
        },
    )
    return response


def init_logging(app) -> None:
    from flask.logging import default_handler

    configure_logging(
        str(app.config.get("LOG_FORMAT") or "text").lower(), str(app.config.get("LOG_LEVEL"))
    )
    # Flask's own handler on the `queue_app` logger would print our modules' records twice
    logging.getLogger(app.name).removeHandler(default_handler)
    # first in, last out: the id exists before any other hook logs, and the access line sees
    # the final response (after every other after_request hook)
    app.before_request_funcs.setdefault(None, []).insert(0, _start_request)
    app.after_request_funcs.setdefault(None, []).insert(0, _finish_request)
