"""Small builders for test data, with defaults that read like a real branch.

Each returns flushed objects; tests commit when they need other connections to see them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from queue_app.accounts.models import Role
from queue_app.accounts.services import create_api_token, create_user
from queue_app.branches.models import Branch, Counter, CounterService, PriorityPolicy, Service
from queue_app.extensions import db
from queue_app.tickets import services as engine
from queue_app.tickets.models import Priority

DEFAULT_SERVICES = [
    # code, prefix, expected duration s
    ("teller", "A", 240),
    ("cs", "B", 720),
    ("loans", "C", 1200),
]

_counter = {"n": 0}


def _next(prefix: str) -> str:
    _counter["n"] += 1
    return f"{prefix}{_counter['n']:03d}"


def branch(
    code: str | None = None,
    *,
    timezone: str = "Asia/Jakarta",
    country: str = "ID",
    locale: str = "id",
    services=DEFAULT_SERVICES,
    counters: list[tuple[str, list[str]]] | None = None,
    policy: PriorityPolicy = PriorityPolicy.STRICT,
    **settings,
) -> Branch:
    """A branch with services and counters. `counters` is [(name, [service codes...])]."""
    b = Branch(
        code=code or _next("T"),
        name=f"Cabang {code or 'Uji'}",
        timezone=timezone,
        country=country,
        locale=locale,
        opening_hours={d: [["08:00", "15:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
        priority_policy=policy,
        created_at=datetime.now(UTC),
        **settings,
    )
    db.session.add(b)
    by_code = {}
    for position, (svc_code, prefix, duration) in enumerate(services):
        s = Service(
            branch=b,
            code=svc_code,
            prefix=prefix,
            name=svc_code.title(),
            names={"id": svc_code.title(), "en": svc_code.title()},
            expected_duration_s=duration,
            target_wait_s=900,
            position=position,
        )
        db.session.add(s)
        by_code[svc_code] = s
    if counters is None:
        counters = [(f"Loket {i + 1}", [code]) for i, (code, _, _) in enumerate(services)]
    for position, (name, codes) in enumerate(counters):
        c = Counter(branch=b, name=name, position=position)
        c.service_links = [
            CounterService(service=by_code[x], position=i) for i, x in enumerate(codes)
        ]
        db.session.add(c)
    db.session.flush()
    db.session.refresh(b)
    return b


def service(b: Branch, code: str) -> Service:
    return next(s for s in b.services if s.code == code)


def counter(b: Branch, name: str) -> Counter:
    return next(c for c in b.counters if c.name == name)


def user(
    username: str | None = None,
    *,
    role: Role = Role.STAFF,
    branches: list[Branch] = (),
    services: list[Service] | None = None,
    password: str = "rahasia-123",
):
    return create_user(
        username or _next("user"),
        role=role,
        password=password,
        branches=list(branches),
        services=services,
    )


def token(u, now=None) -> str:
    return create_api_token(u, name="test", now=now or datetime.now(UTC))


def auth(u) -> dict:
    """Headers carrying a fresh bearer token of `u`."""
    return {"Authorization": f"Bearer {token(u)}"}


def ticket(b: Branch, code: str = "teller", *, now, priority=Priority.NORMAL, **kwargs):
    return engine.issue_ticket(b, service(b, code), now=now, priority=priority, **kwargs)


def open_counter(c: Counter, u, *, now) -> Counter:
    return engine.open_counter(c, u, now=now)
