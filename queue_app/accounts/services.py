"""Creating accounts and API tokens, and checking them."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..branches.models import Branch, Service
from ..core.errors import Conflict, DomainError, InvalidInput
from ..core.events import publish
from ..extensions import db
from . import scopes as token_scopes
from .models import ApiToken, Role, User

_hasher = PasswordHasher()
TOKEN_PREFIX = "qa_"  # the prefix that marks an API token, not a secret  # nosec B105


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(
    username: str,
    *,
    role: Role,
    password: str,
    display_name: str | None = None,
    branches: list[Branch] = (),
    services: list[Service] | None = None,
    manager: User | None = None,
    email: str | None = None,
    locale: str | None = None,
) -> User:
    """A new account. Staff are competent in all services of their branches unless told."""
    username = username.strip()
    if not username or len(username) > 64:
        raise InvalidInput("a username is 1 to 64 characters", "bad_username")
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} exists already", "user_exists")
    if len(password) < 8:
        raise InvalidInput("a password has at least 8 characters", "weak_password")
    if role not in {Role.ADMIN, Role.EXECUTIVE} and not branches:
        raise InvalidInput(f"a {role.value} belongs to at least one branch", "missing_branch")
    if services is None:
        services = [s for b in branches for s in b.services]
    branch_ids = {b.id for b in branches}
    foreign = [s.code for s in services if s.branch_id not in branch_ids]
    if foreign:
        raise InvalidInput(
            f"services outside the user's branches: {', '.join(foreign)}", "bad_service"
        )
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        password_hash=hash_password(password),
        branches=list(branches),
        competences=list(services),
        manager=manager,
        email=email,
        locale=locale,
    )
    db.session.add(user)
    db.session.flush()
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User, *, name: str = "", now: datetime, scopes=None) -> str:
    """A new bearer token for `user`. The token itself is returned once and never stored.

    `scopes`: what it may be used for (`accounts/scopes.py`; None: every scope). The user's
    role and branches limit it further. An unknown scope raises `scopes.UnknownScope`."""
    granted = token_scopes.normalise(scopes)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(
        ApiToken(
            user_id=user.id, token_hash=_digest(token), name=name, created_at=now, scopes=granted
        )
    )
    db.session.flush()
    return token


def token_for(token: str) -> ApiToken | None:
    """The live token row (not revoked, of an active user) behind a bearer token, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    # every staff request reads its user and checks the user's branches (`User.belongs_to`):
    # one statement for the three
    row = (
        db.session.scalars(
            select(ApiToken)
            .options(joinedload(ApiToken.user).joinedload(User.branches))
            .where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None))
        )
        .unique()
        .one_or_none()
    )
    if row is None or not row.user.active:
        return None
    return row


def user_for_token(token: str) -> User | None:
    """The active user behind a bearer token, or None."""
    row = token_for(token)
    return row.user if row is not None else None


def revoke_api_token(token: str, *, now: datetime) -> bool:
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    return True


# --- signing in --------------------------------------------------------------------------

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


class SignInRefused(DomainError):
    """Wrong username or password, an inactive or a locked account.

    The code tells them apart for logs and tests (`bad_credentials`, `locked`); what a person
    is shown is one and the same message, so nobody learns which usernames exist."""

    status = 401
    code = "bad_credentials"


_dummy_hash: dict[str, str] = {}


def _burn_a_verify(password: str) -> None:
    """Spend the time of a real password check, so an unknown username answers as slowly as
    a known one."""
    params = (_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism)
    key = repr(params)
    if key not in _dummy_hash:
        _dummy_hash[key] = _hasher.hash(secrets.token_urlsafe(16))
    with contextlib.suppress(VerificationError, InvalidHashError):
        _hasher.verify(_dummy_hash[key], password)


def authenticate(username: str, password: str, *, now: datetime) -> User:
    """The active user with this username and password, or `SignInRefused`.

    `MAX_FAILED_LOGINS` consecutive failures lock the account for `LOCKOUT`; while locked,
    even the right password is refused. A success resets the count and rehashes the password
    when the hash parameters changed. The failure count is recorded in the session before the
    error is raised: the caller commits it (a rollback would forget the attempt).
    """
    user = db.session.scalar(select(User).where(User.username == (username or "").strip()))
    if user is None or not user.active:
        _burn_a_verify(password)
        raise SignInRefused("wrong username or password")
    if user.locked_until is not None:
        if user.locked_until > now:
            _burn_a_verify(password)
            raise SignInRefused(f"account locked until {user.locked_until.isoformat()}", "locked")
        # the lock ran out: a fresh start
        user.locked_until = None
        user.failed_logins = 0
        db.session.flush()
    if not check_password(user, password):
        # counted in the database (`failed_logins + 1`), so parallel attempts all count
        user.failed_logins = User.failed_logins + 1
        db.session.flush()
        db.session.refresh(user, ["failed_logins"])
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            db.session.flush()
        raise SignInRefused("wrong username or password")
    user.failed_logins = 0
    user.locked_until = None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    db.session.flush()
    return user


def unlock(user: User) -> User:
    """Lift a lock-out by hand (an admin's decision)."""
    user.failed_logins = 0
    user.locked_until = None
    return user


def sign_out_everywhere(user: User) -> User:
    """End every session of `user` (Flask-Login sessions carry "id:session_version").

    Publishes `user.signed_out` after the commit, so open sockets can be closed."""
    user.session_version = (user.session_version or 1) + 1
    db.session.flush()
    publish(
        db.session,
        "user.signed_out",
        user_id=user.id,
        session_version=user.session_version,
        everywhere=True,
    )
    return user


def record_sign_out(user: User) -> None:
    """One session ended (the sign-out button): announced after the commit like the others."""
    publish(
        db.session,
        "user.signed_out",
        user_id=user.id,
        session_version=user.session_version,
        everywhere=False,
    )
