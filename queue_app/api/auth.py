"""Bearer-token authentication and branch access checks for the API."""

from functools import wraps

from flask import abort, g, request

from ..accounts.models import User
from ..accounts.services import user_for_token
from ..branches.models import Branch

SECURITY = [{"bearerAuth": []}]


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
