"""Who may open the dashboard and which branches they see: the CX pages' rule
(`feedback.metric_queries`): CX agents, executives and admins the whole network, branch
managers their own branches. Staff do not open the dashboard."""

from __future__ import annotations

from sqlalchemy import select

from ..accounts.models import Role, User
from ..branches.models import Branch
from ..extensions import db
from ..feedback import metric_queries as mq

PAGE_ROLES = (Role.BRANCH_MANAGER, Role.CX_AGENT, Role.EXECUTIVE, Role.ADMIN)
# who may acknowledge an alert from the page (of a branch they see)
ACK_ROLES = (Role.BRANCH_MANAGER, Role.ADMIN)


def may_open(user: User) -> bool:
    return bool(user.active) and user.role in PAGE_ROLES


def sees_network(user: User) -> bool:
    return mq.sees_network(user)


def visible_branches(user: User) -> list[Branch]:
    """The active branches `user` sees on the dashboard, by code."""
    return mq.readable_branches(user) if may_open(user) else []


def may_see(user: User, branch: Branch) -> bool:
    return may_open(user) and branch.active and mq.may_read(user, branch)


def may_acknowledge(user: User, branch: Branch) -> bool:
    return may_see(user, branch) and user.role in ACK_ROLES


def branch_by_code(code: str) -> Branch | None:
    if not isinstance(code, str) or not 0 < len(code) <= 16 or "\x00" in code:
        return None
    return db.session.scalar(select(Branch).where(Branch.code == code))
