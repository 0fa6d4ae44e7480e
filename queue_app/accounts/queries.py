"""Read-only questions about people."""

from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from .models import Role, User, user_branches


def branch_manager(branch_id: int) -> User | None:
    """The branch's manager: the active branch manager of the branch with the smallest id
    (who owns a case's first level and is told of a branch's alerts)."""
    return db.session.scalar(
        select(User)
        .join(user_branches, user_branches.c.user_id == User.id)
        .where(
            user_branches.c.branch_id == branch_id,
            User.role == Role.BRANCH_MANAGER,
            User.active.is_(True),
        )
        .order_by(User.id)
        .limit(1)
    )
