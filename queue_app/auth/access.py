"""Access checks for the page blueprints (counter, admin ...).

    from queue_app.auth.access import branch_access, login_required_page, roles_required

    @bp.get("/")
    @roles_required(Role.STAFF, Role.BRANCH_MANAGER, Role.ADMIN)
    def index(): ...

A visitor who is not signed in is sent to the sign-in page (and comes back afterwards); a
signed-in person without the role or the branch gets a 403 page that says why.
"""

from __future__ import annotations

from functools import wraps

from flask import abort, current_app, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..accounts.models import FLOOR_ROLES, Role, User
from ..branches.models import Branch

login_required_page = login_required


def page_error(status: int, message: str):
    """An HTML error page (in the page's language) with `status` and `message`."""
    response = current_app.make_response(
        render_template("auth/error.html", status=status, message=message)
    )
    response.status_code = status
    return response


def forbidden(message: str | None = None):
    """Stop the request with a 403 page."""
    abort(page_error(403, message or _("Your account may not open this page.")))


def roles_required(*roles: Role | str):
    """Only signed-in people with one of `roles`; others are sent to sign in or get a 403."""
    allowed = {Role(r) for r in roles}

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if current_user.role not in allowed:
                forbidden(_("Your role may not open this page."))
            return view(*args, **kwargs)

        return wrapper

    return decorator


def branch_access(branch: Branch | None, *, floor: bool = False) -> User:
    """The signed-in user, if they may see `branch` (with `floor=True`: serve at it);
    404 page for no branch, 403 page otherwise."""
    if branch is None or not branch.active:
        abort(page_error(404, _("There is no such branch.")))
    user = current_user
    if not user.is_authenticated:
        abort(current_app.login_manager.unauthorized())
    allowed = user.can_work_floor(branch) if floor else user.can_view(branch)
    if not allowed:
        forbidden(_("Your account has no access to branch %(code)s.", code=branch.code))
    return user._get_current_object()


def landing_url(user: User) -> str:
    """Where a person goes after signing in: the counter screen for the floor roles (while the
    counter blueprint exists), the device page for admins and managers, else the start page."""
    functions = current_app.view_functions
    if user.role in FLOOR_ROLES and "counter.index" in functions:
        return url_for("counter.index")
    if user.role in {Role.ADMIN, Role.BRANCH_MANAGER} and "admin.devices" in functions:
        return url_for("admin.devices")
    return url_for("web.index")
