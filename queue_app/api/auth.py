"""Bearer-token authentication and branch access checks for the API."""

from functools import wraps
from http import HTTPStatus

from flask import abort, g, request

from ..accounts.models import User
from ..accounts.services import user_for_token
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
    user = user_for_token(token.strip())
    if user is None:
        abort(401, description="unknown, revoked or expired token")
    g.user = user
    return user


def staff_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if bearer_user() is None:
            abort(401, description="this endpoint needs a staff token")
        return view(*args, **kwargs)

    return wrapper


def documents_errors(blp, *statuses):
    """Document error responses (with the API's error schema) on an endpoint."""

    def decorator(view):
        for status in statuses:
            view = blp.alt_response(status, response=HTTPStatus(status).name)(view)
        return view

    return decorator


def staff_endpoint(blp, *statuses):
    """A staff-only endpoint: bearer token required, documented with its error responses.

    Put it above `blp.arguments`, so that authentication comes before reading the body.
    """

    def decorator(view):
        view = documents_errors(blp, 401, 403, *statuses)(view)
        view = blp.doc(security=SECURITY)(view)
        return staff_required(view)

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
