"""The signed link of a case's recovery survey: `PUBLIC_BASE_URL/r/case/<token>`.

An `itsdangerous.URLSafeTimedSerializer` token signed with the app's `SECRET_KEY` (salt
`cases.recovery`), naming the case and the round of resolution it asks about (a case reopened
and resolved again asks again, and an older link no longer counts). Valid for
`CASE_RECOVERY_LINK_MAX_AGE_S` (14 days by default).
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..core.errors import NotFound
from ..extensions import db
from .models import Case

SALT = "cases.recovery"
DEFAULT_MAX_AGE_S = 14 * 24 * 3600


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def recovery_token(case: Case, round_: int) -> str:
    return _serializer().dumps({"c": case.id, "r": round_})


def by_recovery_token(token: str) -> tuple[Case, int]:
    """The case and round of a recovery link; `invalid_link` (404) if forged or too old."""
    max_age = int(current_app.config.get("CASE_RECOVERY_LINK_MAX_AGE_S", DEFAULT_MAX_AGE_S))
    try:
        data = _serializer().loads(token, max_age=max_age)
        case_id, round_ = int(data["c"]), int(data["r"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise NotFound("this link is not valid or has expired", "invalid_link") from None
    case = db.session.get(Case, case_id)
    if case is None:
        raise NotFound("this link is not valid or has expired", "invalid_link")
    return case, round_


def recovery_url(case: Case, round_: int, locale: str | None = None) -> str:
    # a plain path, not url_for: resolutions are also written outside a request
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    suffix = f"?lang={locale}" if locale else ""
    return f"{base}/r/case/{recovery_token(case, round_)}{suffix}"


def case_url(case: Case) -> str:
    """The case's CX page, for the e-mails to its owners."""
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return f"{base}/cx/cases/{case.id}"
