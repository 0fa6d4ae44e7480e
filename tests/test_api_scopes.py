"""API token scopes: a token does what both its scopes and its user's role allow.

Every staff operation of the OpenAPI document is called by an admin (whose role allows
everything) with a token that has every scope but the one the document names: 403
`missing_scope` naming it, and nothing changed; with only that scope the scope check passes.
So the documented scope is exactly the enforced one. Scopes never widen a role, the CLI and
the service refuse unknown scopes, and tokens made before scopes keep what they could do.
"""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import flask_migrate
import pytest
from sqlalchemy import create_engine, text

from queue_app import create_app
from queue_app.accounts.models import ApiToken, Role
from queue_app.accounts.scopes import ALL_SCOPES, LEGACY_SCOPES, UnknownScope
from queue_app.accounts.services import create_api_token
from queue_app.extensions import db

from .apihelp import API, assert_error, issue, ok, row_counts

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
MIGRATION = Path(__file__).resolve().parents[1] / "migrations/versions"


@pytest.fixture
def cli(app_ctx):
    runner = app_ctx.test_cli_runner()

    def invoke(*args):
        result = runner.invoke(args=list(args))
        db.session.remove()  # read what the command committed
        return result

    return invoke


def _bearer(user, scopes) -> dict:
    token = create_api_token(user, name="scoped", now=datetime.now(UTC), scopes=scopes)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def _staff_operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            security = operation.get("security") if method in HTTP_METHODS else None
            if security and {} not in security:
                (scope,) = security[0]["bearerAuth"]
                yield path, method, scope


@pytest.fixture
def scene(client, floor):
    ticket = issue(client, "teller")
    values = {
        "code": "JKT01",
        "counter_id": str(floor.counter_id("Teller 1")),
        "ticket_id": str(ticket["id"]),
        "case_id": "999999",
        "rule_id": "999999",
        "alert_id": "999999",
    }
    return values


def _call(client, path, method, values, headers):
    url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
    query = "?from=2026-01-01&to=2026-01-02" if "/exports/" in path else ""
    body = {} if method in ("post", "patch") else None
    response = getattr(client, method)(url + query, json=body, headers=headers)
    response.get_data()  # a streamed answer (the CSV exports) read to its end and closed,
    response.close()  # in this test's context
    return response


def test_every_staff_operation_needs_exactly_its_documented_scope(client, make, floor, scene):
    spec = client.get(f"{API}/openapi.json").get_json()
    admin = make.user("scope-admin", role=Role.ADMIN)
    operations = list(_staff_operations(spec))
    assert len(operations) == 37
    for path, method, scope in operations:
        before = row_counts()
        others = [s for s in ALL_SCOPES if s != scope]
        response = _call(client, path, method, scene, _bearer(admin, others))
        error = assert_error(response, 403, "missing_scope", ctx=(path, method))
        assert error["message"] == f"this token lacks the scope {scope}", (path, method)
        assert row_counts() == before, (path, method)
        # with only that scope, the scope check passes (the answer is the endpoint's own)
        response = _call(client, path, method, scene, _bearer(admin, [scope]))
        body = response.get_json(silent=True) or {}
        code = (body.get("error") or {}).get("code")
        assert code != "missing_scope" and response.status_code != 401, (path, method, body)


def test_a_scope_never_widens_the_role(client, floor, make):
    staff_with_everything = _bearer(floor.staff, None)
    assert_error(
        client.get(
            f"{API}/exports/visits.csv?from=2026-01-01&to=2026-01-01", headers=staff_with_everything
        ),
        403,
        "forbidden",
    )
    cx = make.user("cx-all", role=Role.CX_AGENT, branches=[floor.branch])
    counter = floor.counter_id("Teller 1")
    assert_error(client.post(f"{API}/counters/{counter}/open", headers=_bearer(cx, None)), 403)
    outsider = _bearer(floor.staff, ["tickets:read"])
    assert_error(client.get(f"{API}/branches/MNL01/counters", headers=outsider), 403)


def test_a_read_scope_reads_but_does_not_write(client, floor):
    reader = _bearer(floor.staff, ["tickets:read"])
    ok(client.get(f"{API}/branches/JKT01/queue", headers=reader))
    counter = floor.counter_id("Teller 1")
    error = assert_error(client.post(f"{API}/counters/{counter}/open", headers=reader), 403)
    assert error["code"] == "missing_scope" and "tickets:write" in error["message"]


def test_a_staff_ticket_needs_tickets_write(client, floor):
    body = {"service": "teller", "priority": "vip", "source": "staff"}
    without = _bearer(floor.staff, ["tickets:read"])
    before = row_counts()
    response = client.post(f"{API}/branches/JKT01/tickets", json=body, headers=without)
    assert assert_error(response, 403, "missing_scope")["message"].endswith("tickets:write")
    assert row_counts() == before
    done = client.post(
        f"{API}/branches/JKT01/tickets", json=body, headers=_bearer(floor.staff, ["tickets:write"])
    )
    assert ok(done, 201)["priority"] == "vip"


def test_unknown_or_no_scopes_are_refused(floor):
    with pytest.raises(UnknownScope):
        create_api_token(floor.staff, now=datetime.now(UTC), scopes=["tickets:fly"])
    with pytest.raises(UnknownScope):
        create_api_token(floor.staff, now=datetime.now(UTC), scopes=[])
    token = create_api_token(floor.staff, now=datetime.now(UTC), scopes=None)
    row = db.session.query(ApiToken).order_by(ApiToken.id.desc()).first()
    assert token and row.scopes == sorted(ALL_SCOPES)


def test_cli_tokens_create_with_scopes(app, cli, floor):
    result = cli("tokens", "create", floor.staff.username, "--scope", "tickets:read")
    assert result.exit_code == 0, result.output
    assert "scopes: tickets:read" in result.output
    token = result.output.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    counter = floor.counter_id("Teller 1")
    assert_error(app.test_client().post(f"{API}/counters/{counter}/open", headers=headers), 403)
    bad = cli("tokens", "create", floor.staff.username, "--scope", "tickets:fly")
    assert bad.exit_code != 0 and "unknown scope: tickets:fly" in bad.output
    listed = cli("tokens", "scopes")
    assert all(scope in listed.output for scope in ALL_SCOPES)


def test_the_migration_gives_old_tokens_what_they_could_do(tmp_path):
    """A token made before 0013 gets every scope of the API of then: all but the exports."""
    spec = importlib.util.spec_from_file_location("m0013", next(MIGRATION.glob("0013_*.py")))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sorted(module.LEGACY_SCOPES) == sorted(LEGACY_SCOPES)
    assert "exports:read" not in module.LEGACY_SCOPES

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    with old.app_context():
        flask_migrate.upgrade(revision="0012")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, username, display_name, role, active, created_at, "
                    "failed_logins, session_version) VALUES (1, 'old', 'Old', 'staff', 1, "
                    "'2026-01-01 00:00:00', 0, 1)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO api_tokens (user_id, token_hash, name, created_at) "
                    "VALUES (1, :h, 'old', '2026-01-01 00:00:00')"
                ),
                {"h": "0" * 64},
            )
        flask_migrate.upgrade(revision="0013")
        with engine.connect() as conn:
            (scopes,) = conn.execute(text("SELECT scopes FROM api_tokens")).one()
        engine.dispose()
        db.engine.dispose()
    assert sorted(json.loads(scopes)) == sorted(LEGACY_SCOPES)
