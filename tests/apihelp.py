"""Shared helpers of the API tests: the error shape, a small branch with people, row counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from argon2 import PasswordHasher
from flask.testing import FlaskClient
from sqlalchemy import func, select

from queue_app.accounts import services as accounts
from queue_app.accounts.models import Role
from queue_app.customers.models import Customer
from queue_app.extensions import db
from queue_app.tickets.models import JourneyEvent, Ticket, TicketSequence, Visit

API = "/api/v1"


class IsolatedClient(FlaskClient):
    """A test client whose every request runs as it does in a server: in an application
    context of its own, with its own database session, removed (rolled back) at the end.

    The conftest's client shares the test's application context, so all requests of a test
    share one session and one `g`: a view that forgot to commit would go unnoticed (the next
    request sees its changes through the shared session), and `g.user` or the cached locale
    of one request leak into the next. Before each request the test's own session ends its
    transaction (commit): the request sees what the test set up, and SQLite's write lock,
    which the test's session holds from its first read, is free. After the request the
    test's session forgets what it had loaded, so the test reads what the request wrote.
    """

    def open(self, *args, **kwargs):
        db.session.commit()
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        # sessions keep their objects after a commit (expire_on_commit=False): the test's
        # session must read again what the request changed
        db.session.expire_all()
        return response


def isolated_client(app) -> IsolatedClient:
    return IsolatedClient(app, app.response_class, use_cookies=True)


def fast_passwords(monkeypatch):
    """Argon2 with small cost parameters while the test creates its accounts.

    The default parameters take about half a second per hash on a small machine, and these
    tests create many accounts; the hashes are still real Argon2 hashes, checked for real.
    """
    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def assert_error(response, status: int, code: str | None = None, ctx=None) -> dict:
    """The response is `status` with the API's error shape; returns the inner error object.

    `ctx` (the case being tried, in tests that loop over cases) is shown when it fails.
    """
    where = f"case {ctx!r}: " if ctx is not None else ""
    text = response.get_data(as_text=True)[:500]
    assert response.status_code == status, f"{where}{response.status_code} {text}"
    assert response.mimetype == "application/json", f"{where}{response.mimetype}"
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"{where}{body}"
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], f"{where}{error}"
    assert isinstance(error.get("message"), str) and error["message"], f"{where}{error}"
    if code is not None:
        assert error["code"] == code, f"{where}{error}"
    if status == 401:
        challenge = response.headers.get("WWW-Authenticate", "")
        assert challenge.startswith("Bearer"), f"{where}{response.headers}"
    return error


def assert_invalid(response, *paths: str, code: str | None = None, ctx=None) -> dict:
    """A 422 whose `fields` names each of `paths` ("customer.phone" for nested fields)."""
    where = f"case {ctx!r}: " if ctx is not None else ""
    error = assert_error(response, 422, code, ctx)
    assert isinstance(error.get("fields"), dict), f"{where}{error}"
    for path in paths:
        node = error["fields"]
        for part in path.split("."):
            assert isinstance(node, dict) and part in node, f"{where}{path} {error['fields']}"
            node = node[part]
        assert node, f"{where}{path} {error['fields']}"
    return error


ROW_MODELS = {
    "tickets": Ticket,
    "visits": Visit,
    "journey_events": JourneyEvent,
    "customers": Customer,
    "ticket_sequences": TicketSequence,
}


def row_counts() -> dict[str, int]:
    """How many rows each journey table holds, read on a connection of its own.

    A separate connection sees only what was committed, so a count here proves that a failed
    request left nothing behind for anyone else either. The test's own session ends its
    transaction first, so that SQLite's write lock is free.
    """
    db.session.commit()
    with db.engine.connect() as conn:
        counts = {
            name: conn.execute(select(func.count()).select_from(model)).scalar_one()
            for name, model in ROW_MODELS.items()
        }
        conn.rollback()
    return counts


@dataclass
class Floor:
    """Branch JKT01 with three services and counters, its people and their bearer headers."""

    branch: object
    counters: dict
    staff: object
    staff2: object
    manager: object
    h_staff: dict
    h_staff2: dict
    h_manager: dict
    h_admin: dict
    h_cx: dict
    h_exec: dict
    other_branch: object
    h_other: dict
    extra: dict = field(default_factory=dict)

    def counter_id(self, name: str) -> int:
        return self.counters[name].id


def build_floor(make) -> Floor:
    branch = make.branch(
        "JKT01",
        counters=[
            ("Teller 1", ["teller"]),
            ("Teller 2", ["teller"]),
            ("CS 1", ["cs", "loans"]),
            ("Kredit 1", ["loans"]),
        ],
    )
    other = make.branch("MNL01", timezone="Asia/Manila", country="PH", locale="en")
    staff = make.user("budi", branches=[branch])
    staff2 = make.user("siti", branches=[branch])
    manager = make.user("dewi", role=Role.BRANCH_MANAGER, branches=[branch])
    admin = make.user("admin", role=Role.ADMIN)
    cx = make.user("lina", role=Role.CX_AGENT, branches=[branch], services=[])
    executive = make.user("rudi", role=Role.EXECUTIVE)
    outsider = make.user("jose", branches=[other])
    floor = Floor(
        branch=branch,
        counters={c.name: c for c in branch.counters},
        staff=staff,
        staff2=staff2,
        manager=manager,
        h_staff=make.auth(staff),
        h_staff2=make.auth(staff2),
        h_manager=make.auth(manager),
        h_admin=make.auth(admin),
        h_cx=make.auth(cx),
        h_exec=make.auth(executive),
        other_branch=other,
        h_other=make.auth(outsider),
    )
    db.session.commit()
    return floor


def issue(client, service="teller", branch="JKT01", headers=None, **body):
    response = client.post(
        f"{API}/branches/{branch}/tickets", json={"service": service, **body}, headers=headers
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def post(client, path, headers=None, json=None):
    return client.post(f"{API}{path}", headers=headers, json=json)


def ok(response, status: int = 200, ctx=None) -> dict:
    where = f"case {ctx!r}: " if ctx is not None else ""
    text = response.get_data(as_text=True)[:500]
    assert response.status_code == status, f"{where}{response.status_code} {text}"
    return response.get_json()
