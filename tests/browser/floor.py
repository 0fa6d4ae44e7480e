"""A branch floor for browser tests, driven from the test while a page watches it.

`LiveFloor` makes a branch with its counters and one member of staff per counter (and a
manager), committed so the live server sees them. Every action commits and lets the pusher
send, as a request would: the page under test hears about it through its Socket.IO
connection. `now()` is the clock of every action (a journey test fixes it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from queue_app.accounts.models import Role, User
from queue_app.branches.models import Branch, Counter
from queue_app.extensions import db
from queue_app.realtime import pusher
from queue_app.tickets import services as engine
from queue_app.tickets.models import Ticket

from .. import factories
from .conftest import ALWAYS_OPEN

NAMES = {"id": "KCU Jakarta Sudirman", "en": "Makati Ayala Branch"}


class LiveFloor:
    def __init__(self, app, code, locale, *, counters, now=None, timezone=None):
        """`counters`: (name, [service codes]) pairs. Without `now` the branch is always
        open; with it, the branch keeps the factory's opening hours. `timezone` overrides the
        locale's zone (Asia/Jakarta, Asia/Manila)."""
        self.app = app
        self.clock = now
        with app.app_context():
            branch = factories.branch(
                code,
                locale=locale,
                timezone=timezone or ("Asia/Jakarta" if locale == "id" else "Asia/Manila"),
                country="ID" if locale == "id" else "PH",
                counters=list(counters),
            )
            branch.name = NAMES[locale]
            if now is None:
                branch.opening_hours = ALWAYS_OPEN
            staff = [
                factories.user(f"{code.lower()}-staff{i}", role=Role.STAFF, branches=[branch])
                for i in range(len(branch.counters))
            ]
            factories.user(f"{code.lower()}-manager", role=Role.BRANCH_MANAGER, branches=[branch])
            self.set_up(branch)
            db.session.commit()
            self.code = code
            self.branch_id = branch.id
            self.counter_ids = {c.name: c.id for c in branch.counters}
            self.staff_ids = [u.id for u in staff]

    def set_up(self, branch: Branch) -> None:
        """What a kind of floor adds before the first commit (a paired device ...)."""

    def now(self) -> datetime:
        return self.clock or datetime.now(UTC)

    def _do(self, fn):
        with self.app.app_context():
            result = fn(self.now())
            db.session.commit()
            pusher(self.app).drain()
            return result

    def issue(self, n=1, service="teller"):
        """`n` tickets of `service`, a millisecond apart: their (number, token) pairs."""

        def go(now):
            branch = db.session.get(Branch, self.branch_id)
            tickets = [
                factories.ticket(branch, service, now=now + timedelta(milliseconds=i))
                for i in range(n)
            ]
            return [(t.number, t.token) for t in tickets]

        return self._do(go)

    def _counter_staff(self, name):
        c = db.session.get(Counter, self.counter_ids[name])
        u = db.session.get(User, self.staff_ids[list(self.counter_ids).index(name)])
        return c, u

    def call(self, name):
        """Finish what the counter has (opening it first if needed) and call the next: its
        number, or None when nobody waits for it."""

        def go(now):
            c, u = self._counter_staff(name)
            if c.status.value != "open":
                engine.open_counter(c, u, now=now)
            active = engine.active_ticket(c)
            if active is not None:
                if active.status.value == "called":
                    active = engine.start(active, u, now=now)
                engine.finish(active, u, now=now, outcome="served")
            called = engine.call_next(c, u, now=now)
            return called.number if called is not None else None

        return self._do(go)

    def recall(self, name):
        def go(now):
            c, u = self._counter_staff(name)
            return engine.recall(engine.active_ticket(c), u, now=now).number

        return self._do(go)

    def finish(self, name):
        def go(now):
            c, u = self._counter_staff(name)
            active = engine.active_ticket(c)
            if active.status.value == "called":
                active = engine.start(active, u, now=now)
            return engine.finish(active, u, now=now, outcome="served").number

        return self._do(go)

    def open_counters(self):
        def go(now):
            for name in self.counter_ids:
                c, u = self._counter_staff(name)
                engine.open_counter(c, u, now=now)

        return self._do(go)

    def ticket_status(self, number):
        with self.app.app_context():
            return db.session.query(Ticket).filter_by(number=number).one().status.value


def socket_handshakes(page) -> list[str]:
    """The URLs of the page's Socket.IO requests so far (its long-polling handshake included):
    what the reverse proxy sees of them."""
    return page.evaluate(
        """() => performance.getEntriesByType("resource").map(e => e.name)
                  .filter(name => name.includes("/socket.io/"))"""
    )


def assert_names_its_branch(page, code: str) -> None:
    """The page's socket names its branch in the handshake's query (`?branch=`): the proxy
    sends every socket of a branch to the same realtime process (README, nginx)."""
    urls = socket_handshakes(page)
    assert urls, "no Socket.IO request seen"
    assert all(f"branch={code}" in url for url in urls), urls
