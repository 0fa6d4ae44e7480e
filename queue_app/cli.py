"""Command-line interface: `flask --app queue_app <group> <command>`."""

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .accounts.models import Role, User
from .accounts.services import create_api_token, create_user, generate_password
from .branches.models import Branch
from .core.errors import DomainError
from .core.types import utcnow
from .extensions import db

demo_cli = AppGroup("demo", help="The demo network.")
users_cli = AppGroup("users", help="Staff accounts.")
tokens_cli = AppGroup("tokens", help="API tokens.")
jobs_cli = AppGroup("jobs", help="Scheduled jobs.")


@demo_cli.command("seed")
@click.option("--if-empty", is_flag=True, help="Only seed a database that has no branch yet.")
@click.option("--allow-production", is_flag=True, help="Seed even in the production profile.")
def demo_seed(if_empty, allow_production):
    """Create the demo network (idempotent) and print the new accounts."""
    from .demo.seed import database_is_empty, seed

    if current_app.config["PROFILE"] == "production" and not allow_production:
        raise click.ClickException("refusing to seed demo accounts in production")
    if if_empty and not database_is_empty():
        click.echo("demo: the database has data already, nothing seeded")
        return
    created = seed(utcnow())
    db.session.commit()
    if not created:
        click.echo("demo: everything exists already, nothing new")
        return
    click.echo(f"demo: {len(created)} accounts created")
    click.echo(f"{'username':<18} {'role':<15} {'branches':<8} password")
    for username, role, branches, password in created:
        click.echo(f"{username:<18} {role:<15} {branches:<8} {password}")


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--branch", "branch_codes", multiple=True, help="Branch code; repeat for several.")
@click.option("--services", default=None, help="Comma-separated service codes (default: all).")
@click.option("--password", default=None, help="Default: a generated one, printed.")
@click.option("--name", default=None, help="Display name.")
@click.option("--manager", default=None, help="Username of this user's manager.")
def users_create(username, role, branch_codes, services, password, name, manager):
    """Create an account for the given role and branches."""
    branches = []
    for code in branch_codes:
        branch = db.session.scalar(select(Branch).where(Branch.code == code))
        if branch is None:
            raise click.ClickException(f"no branch {code!r}")
        branches.append(branch)
    chosen = None
    if services is not None:
        wanted = [c.strip() for c in services.split(",") if c.strip()]
        offered = [s for b in branches for s in b.services]
        missing = [c for c in wanted if c not in {s.code for s in offered}]
        if missing:
            raise click.ClickException(f"unknown services: {', '.join(missing)}")
        # a code names that service in each of the user's branches that offers it
        chosen = [s for s in offered if s.code in wanted]
    boss = None
    if manager:
        boss = db.session.scalar(select(User).where(User.username == manager))
        if boss is None:
            raise click.ClickException(f"no user {manager!r}")
    generated = password is None
    password = password or generate_password()
    try:
        user = create_user(
            username,
            role=Role(role),
            password=password,
            display_name=name,
            branches=branches,
            services=chosen,
            manager=boss,
        )
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    from .audit.services import record as audit

    db.session.flush()
    audit(
        "user.create",
        via="cli",
        target_type="user",
        target_id=user.id,
        details={"username": user.username, "role": user.role.value},
    )
    db.session.commit()
    click.echo(f"created {user.username} ({user.role.value})")
    if generated:
        click.echo(f"password: {password}")


@tokens_cli.command("create")
@click.argument("username")
@click.option("--name", default="cli", help="A label for the token.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="What the token may do (repeat; default: every scope). See `flask tokens scopes`.",
)
def tokens_create(username, name, scopes):
    """Create an API token; the token is the last line printed.

    The token can do what both its scopes and its user's role and branches allow."""
    from .accounts.scopes import UnknownScope, normalise

    try:
        granted = normalise(scopes or None)
    except UnknownScope as exc:
        raise click.ClickException(f"unknown scope: {exc} (see `flask tokens scopes`)") from None
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    if not user.active:
        # the API refuses every token of a deactivated account: do not hand out a dead one
        raise click.ClickException(f"user {username!r} is deactivated")
    token = create_api_token(user, name=name, now=utcnow(), scopes=granted)
    from .audit.services import record as audit

    audit(
        "token.create",
        via="cli",
        target_type="user",
        target_id=user.id,
        details={"username": user.username, "name": name[:80], "scopes": list(granted)},
    )
    db.session.commit()
    click.echo(f"token for {user.username} ({user.role.value}), scopes: {' '.join(granted)}")
    click.echo(token)


@tokens_cli.command("scopes")
def tokens_scopes():
    """List the scopes an API token can have."""
    from .accounts.scopes import SCOPES

    for name, what in SCOPES.items():
        click.echo(f"{name:16} {what}")


@jobs_cli.command("run")
def jobs_run():
    """Run the scheduler in the foreground. Exactly one runs the jobs: a second one started by
    mistake stands by (the scheduler lock, `jobs/leader.py`) and takes over if the first dies."""
    import threading

    from apscheduler.schedulers.background import BackgroundScheduler

    from .jobs import leader
    from .jobs.scheduler import configure

    app = current_app._get_current_object()
    stop = threading.Event()
    try:
        leader.run(
            app,
            lambda: configure(BackgroundScheduler(timezone="UTC"), app),
            poll_s=app.config["SCHEDULER_POLL_S"],
            stop=stop,
            say=lambda line: click.echo(line, nl=True),
        )
    except KeyboardInterrupt:
        stop.set()


@jobs_cli.command("close-days")
def jobs_close_days():
    """Close the tickets left open from earlier business days, now."""
    from .jobs.tasks import close_past_business_days

    closed = close_past_business_days(current_app._get_current_object(), utcnow())
    click.echo(f"closed {closed} tickets of earlier business days")


def register_cli(app):
    for group in (demo_cli, users_cli, tokens_cli, jobs_cli):
        app.cli.add_command(group)
    from .cases.cli import cases_cli

    app.cli.add_command(cases_cli)
    from .waits.cli import ewt_cli

    app.cli.add_command(ewt_cli)
    from .reports.cli import reports_cli

    app.cli.add_command(reports_cli)
    from .audit.cli import audit_cli
    from .customers.cli import customers_cli, privacy_cli

    app.cli.add_command(audit_cli)
    app.cli.add_command(customers_cli)
    app.cli.add_command(privacy_cli)
