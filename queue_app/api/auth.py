"""Bearer-token authentication and branch access checks for the API."""

import inspect
from functools import wraps
from http import HTTPStatus

from flask import abort, g, request
from flask_smorest import abort as api_abort

from ..accounts.models import User
from ..accounts.scopes import SCOPES
from ..accounts.services import token_for
from ..branches.models import Branch

SECURITY = [{"bearerAuth": []}]
# public endpoints where a token is optional (and changes what is allowed)
OPTIONAL_SECURITY = [{}, {"bearerAuth": []}]


def bearer_user() -> User | None:
    """The user of the request's bearer token; 401 for a malformed or unknown token."""
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        abort(401, description="use Authorization: Bearer <token>")
    row = token_for(token.strip())
    if row is None:
        abort(401, description="unknown, revoked or expired token")
    g.user = row.user
    g.api_token = row
    return row.user


def require_scope(scope: str) -> None:
    """403 `missing_scope` unless the request's bearer token has `scope`."""
    row = getattr(g, "api_token", None)
    if row is None or not row.allows(scope):
        api_abort(
            403,
            message=f"this token lacks the scope {scope}",
            code="missing_scope",
        )


def scope_security(scope: str) -> list[dict]:
    """The OpenAPI security requirement of an endpoint that needs `scope`."""
    return [{"bearerAuth": [scope]}]


def staff_required(view, scope: str):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if bearer_user() is None:
            abort(401, description="this endpoint needs a staff token")
        require_scope(scope)
        return view(*args, **kwargs)

    return wrapper


def documents_errors(blp, *statuses):
    """Document error responses (with the API's error schema) on an endpoint."""

    def decorator(view):
        for status in statuses:
            view = blp.alt_response(status, response=HTTPStatus(status).name)(view)
        return view

    return decorator


def staff_endpoint(blp, *statuses, scope: str):
    """A staff-only endpoint: bearer token with `scope` required (`accounts/scopes.py`),
    documented with its error responses and its security requirement `bearerAuth: [scope]`.

    Put it above `blp.arguments`, so that authentication comes before reading the body.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def decorator(view):
        view = documents_errors(blp, 401, 403, *statuses)(view)
        view = blp.doc(security=scope_security(scope))(view)
        view = staff_required(view, scope)
        view._api_scope = scope
        # said in words too: documentation viewers do not show a bearer scheme's scopes
        doc = inspect.cleandoc(view.__doc__ or "")
        view.__doc__ = (doc + "\n\n" if doc else "") + f"Token scope: `{scope}`."
        return view

    return decorator


def require_view(branch: Branch) -> User:
    user = g.user
    if not user.can_view(branch):
        abort(403, description=f"{user.username} has no access to branch {branch.code}")
    return user


def require_floor(branch: Branch) -> User:
    user = g.user
    if not user.can_work_floor(branch):
        abort(403, description=f"{user.username} may not serve at branch {branch.code}")
    return user
