"""The command line: `demo seed`, `users create`, `tokens create`, and the migrations.

Commands run through Flask's CLI runner against the test database, exactly as
`flask --app queue_app ...` runs them; what they print is checked against what they stored.
"""

from __future__ import annotations

from collections import Counter as Tally
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from queue_app import create_app
from queue_app.accounts.models import Role, User
from queue_app.accounts.services import check_password
from queue_app.branches.models import Branch, Counter, Service
from queue_app.config import ProductionConfig
from queue_app.customers.models import Customer
from queue_app.extensions import db
from queue_app.tickets.models import Ticket

from .apihelp import API, assert_error, fast_passwords, ok

MODELS = (Branch, Service, Counter, User, Customer, Ticket)


@pytest.fixture
def cli(app_ctx, monkeypatch):
    fast_passwords(monkeypatch)
    runner = app_ctx.test_cli_runner()

    def invoke(*args):
        result = runner.invoke(args=list(args))
        db.session.remove()  # read what the command committed, not a stale identity map
        return result

    return invoke


def _counts() -> dict[str, int]:
    return {m.__name__: db.session.scalar(select(func.count()).select_from(m)) for m in MODELS}


def _clean_failure(result, *fragments):
    """A refusal: non-zero exit, a message naming the problem, no traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def _printed_accounts(output: str) -> dict[str, tuple[str, str, str]]:
    """The table `demo seed` prints: username -> (role, branches, password)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["username"])
    accounts = {}
    for line in lines[start + 1 :]:
        username, role, branches, password = line.split()
        accounts[username] = (role, branches, password)
    return accounts


# --- demo seed -------------------------------------------------------------------------------


def test_demo_seed_builds_the_demo_network(cli):
    result = cli("demo", "seed")
    assert result.exit_code == 0, result.output

    branches = db.session.scalars(select(Branch).order_by(Branch.code)).all()
    assert len(branches) >= 3
    zones = {b.code: b.timezone for b in branches}
    assert zones["JKT01"] == "Asia/Jakarta"
    assert "Asia/Makassar" in zones.values()
    assert "Asia/Manila" in zones.values()
    for branch in branches:
        ZoneInfo(branch.timezone)  # a real IANA zone
        services = [s for s in branch.services if s.active]
        assert 4 <= len(services) <= 6, (branch.code, len(services))
        assert 5 <= len(branch.counters) <= 8, (branch.code, len(branch.counters))
        # counters of different skills, each serving services of its own branch
        assert len({tuple(s.code for s in c.services) for c in branch.counters}) >= 3
        assert all(s.branch_id == branch.id for c in branch.counters for s in c.services)
        assert len({s.prefix for s in branch.services}) == len(branch.services)
        people = db.session.scalars(select(User).where(User.branches.contains(branch))).all()
        roles = Tally(u.role for u in people)
        assert roles[Role.BRANCH_MANAGER] >= 1, branch.code
        assert roles[Role.STAFF] >= 2, branch.code
        # every service of the branch has someone competent in it
        for service in services:
            assert any(u.is_competent(service) for u in people if u.role == Role.STAFF), (
                branch.code,
                service.code,
            )
    admin = db.session.scalar(select(User).where(User.username == "admin"))
    assert admin.role == Role.ADMIN
    assert all(admin.can_work_floor(b) for b in branches)

    # it printed every account it created, with a password that really opens it
    accounts = _printed_accounts(result.output)
    users = db.session.scalars(select(User)).all()
    assert set(accounts) == {u.username for u in users}
    for user in users:
        role, _branches, password = accounts[user.username]
        assert role == user.role.value
        assert check_password(user, password), user.username
    # and the JKT01 floor is not empty
    assert db.session.scalar(select(func.count()).select_from(Ticket)) > 0


def test_demo_seed_twice_creates_nothing_the_second_time(cli):
    assert cli("demo", "seed").exit_code == 0
    before = _counts()
    again = cli("demo", "seed")
    assert again.exit_code == 0, again.output
    assert "nothing new" in again.output
    assert "password" not in again.output
    assert _counts() == before


def test_demo_seed_completes_a_partial_network(cli):
    """Idempotent means "create what is missing", not "only on an empty database"."""
    assert cli("demo", "seed").exit_code == 0
    before = _counts()
    user = db.session.scalar(select(User).where(User.username == "lina.marlina"))
    db.session.expunge(user)
    db.session.execute(User.__table__.delete().where(User.id == user.id))
    db.session.commit()
    result = cli("demo", "seed")
    assert result.exit_code == 0, result.output
    assert set(_printed_accounts(result.output)) == {"lina.marlina"}
    assert _counts() == before


def test_demo_seed_if_empty(cli, make):
    result = cli("demo", "seed", "--if-empty")
    assert result.exit_code == 0, result.output
    seeded = _counts()
    assert seeded["Branch"] >= 3
    result = cli("demo", "seed", "--if-empty")
    assert result.exit_code == 0
    assert "nothing seeded" in result.output
    assert _counts() == seeded


def test_demo_seed_if_empty_leaves_a_real_network_alone(cli, make):
    make.branch("BDG01")
    db.session.commit()
    result = cli("demo", "seed", "--if-empty")
    assert result.exit_code == 0
    assert "nothing seeded" in result.output
    assert db.session.scalars(select(Branch.code)).all() == ["BDG01"]
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_demo_seed_refuses_the_production_profile(app, app_ctx, monkeypatch):
    fast_passwords(monkeypatch)
    monkeypatch.setattr(ProductionConfig, "SECRET_KEY", "a-production-secret-for-this-test")
    production = create_app(
        "production", SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"]
    )
    assert production.config["PROFILE"] == "production"
    try:
        with production.app_context():
            runner = production.test_cli_runner()
            result = runner.invoke(args=["demo", "seed"])
            _clean_failure(result, "production")
            result = runner.invoke(args=["demo", "seed", "--if-empty"])
            _clean_failure(result, "production")
            assert db.session.scalar(select(func.count()).select_from(Branch)) == 0
            assert db.session.scalar(select(func.count()).select_from(User)) == 0
            # the explicit override works
            result = runner.invoke(args=["demo", "seed", "--allow-production"])
            assert result.exit_code == 0, result.output
            assert db.session.scalar(select(func.count()).select_from(Branch)) >= 3
            db.session.remove()
            db.engine.dispose()
    finally:
        db.session.remove()


# --- users create ----------------------------------------------------------------------------


@pytest.fixture
def network(cli):
    assert cli("demo", "seed").exit_code == 0


def _user(username) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def test_users_create_with_a_generated_password(cli, network):
    result = cli("users", "create", "eka.putri", "--role", "staff", "--branch", "MKS01")
    assert result.exit_code == 0, result.output
    assert "created eka.putri (staff)" in result.output
    password = result.output.strip().splitlines()[-1].removeprefix("password: ")
    assert len(password) >= 12
    user = _user("eka.putri")
    assert check_password(user, password)
    assert [b.code for b in user.branches] == ["MKS01"]
    mks = db.session.scalar(select(Branch).where(Branch.code == "MKS01"))
    # competent in all the branch's services
    assert {s.id for s in user.competences} == {s.id for s in mks.services}
    assert all(user.is_competent(s) for s in mks.services)


def test_users_create_with_services_and_password(cli, network):
    result = cli(
        "users",
        "create",
        "tono",
        "--role",
        "staff",
        "--branch",
        "JKT01",
        "--branch",
        "SBY01",
        "--services",
        "teller, cs",
        "--password",
        "kata-sandi-rahasia",
        "--name",
        "Tono Sugiarto",
        "--manager",
        "dewi.lestari",
    )
    assert result.exit_code == 0, result.output
    assert "password" not in result.output  # chosen by the operator: not echoed
    user = _user("tono")
    assert check_password(user, "kata-sandi-rahasia")
    assert user.display_name == "Tono Sugiarto"
    assert user.manager.username == "dewi.lestari"
    assert sorted((s.branch.code, s.code) for s in user.competences) == [
        ("JKT01", "cs"),
        ("JKT01", "teller"),
        ("SBY01", "cs"),
        ("SBY01", "teller"),
    ]


def test_users_create_roles(cli, network):
    assert cli("users", "create", "boss", "--role", "executive").exit_code == 0
    assert _user("boss").role == Role.EXECUTIVE
    result = cli("users", "create", "mgr2", "--role", "branch_manager", "--branch", "MNL01")
    assert result.exit_code == 0, result.output
    assert _user("mgr2").can_work_floor(_user("mgr2").branches[0])


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--role", "staff", "--branch", "NOPE"], ["no branch 'NOPE'"]),
        (["--role", "staff", "--branch", "JKT01", "--services", "teller,nope"], ["nope"]),
        (["--role", "staff", "--branch", "MKS01", "--services", "forex"], ["forex"]),
        (["--role", "janitor", "--branch", "JKT01"], ["--role", "janitor"]),
        (["--role", "staff"], ["at least one branch"]),
        (["--role", "staff", "--branch", "JKT01", "--password", "short"], ["8 characters"]),
        (["--role", "staff", "--branch", "JKT01", "--manager", "nobody"], ["no user 'nobody'"]),
        ([], ["--role"]),
    ],
)
def test_users_create_refusals_are_clean(cli, network, args, fragments):
    before = _counts()
    result = cli("users", "create", "newbie", *args)
    _clean_failure(result, *fragments)
    assert _user("newbie") is None
    assert _counts() == before


def test_users_create_refuses_an_existing_username(cli, network):
    before = _counts()
    result = cli("users", "create", "budi.santoso", "--role", "staff", "--branch", "JKT01")
    _clean_failure(result, "exists already")
    assert _counts() == before


# --- tokens create ---------------------------------------------------------------------------


def test_tokens_create_prints_a_working_token_last(cli, network, client):
    result = cli("tokens", "create", "budi.santoso")
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("qa_") and len(token) >= 40 and " " not in token
    headers = {"Authorization": f"Bearer {token}"}
    counters = ok(client.get(f"{API}/branches/JKT01/counters", headers=headers))["items"]
    teller = next(c for c in counters if c["name"] == "Teller 1")
    opened = ok(client.post(f"{API}/counters/{teller['id']}/open", headers=headers))
    assert opened["staff"]["username"] == "budi.santoso"
    # the token is the user's, with the user's rights
    assert_error(client.get(f"{API}/branches/MNL01/counters", headers=headers), 403)


def test_tokens_create_twice_gives_two_tokens(cli, network):
    first = cli("tokens", "create", "admin", "--name", "kiosk-1").output.strip().splitlines()[-1]
    second = cli("tokens", "create", "admin").output.strip().splitlines()[-1]
    assert first != second


def test_tokens_create_for_an_unknown_user(cli, network):
    _clean_failure(cli("tokens", "create", "nobody"), "no user 'nobody'")


def test_tokens_create_for_a_deactivated_user(cli, network):
    user = _user("siti.rahayu")
    user.active = False
    db.session.commit()
    _clean_failure(cli("tokens", "create", "siti.rahayu"), "deactivated")


# --- migrations ------------------------------------------------------------------------------


def test_models_and_migrations_agree(app_ctx):
    """Autogenerate against the migrated test database finds nothing to add or change."""
    options = dict(app_ctx.extensions["migrate"].configure_args)
    options.setdefault("compare_type", True)
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=options)
        differences = compare_metadata(context, db.metadata)
        connection.rollback()
    assert differences == []


def test_db_check_command_agrees(cli):
    """The same question through `flask db check` (Alembic's check command)."""
    result = cli("db", "check")
    assert result.exit_code == 0, result.output
