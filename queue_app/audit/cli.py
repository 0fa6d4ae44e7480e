"""`flask audit show`: the audit log in a terminal, newest first; `flask audit purge`: delete
the entries older than a number of days (as the daily job does with `AUDIT_RETENTION_DAYS`)."""

from __future__ import annotations

import json
from datetime import date

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..branches.models import Branch
from ..extensions import db
from . import queries
from .models import OUTCOMES

audit_cli = AppGroup("audit", help="The audit log of staff and admin actions.")


def _day(value):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("write the day as YYYY-MM-DD") from None


@audit_cli.command("show")
@click.option("--actor", default=None, help="Username of the actor.")
@click.option("--branch", default=None, help="Branch code.")
@click.option("--action", default=None, help="A verb, or a prefix ending in '.' (ticket.).")
@click.option("--outcome", type=click.Choice(OUTCOMES), default=None)
@click.option("--since", default=None, help="First UTC day, YYYY-MM-DD.")
@click.option("--until", default=None, help="Last UTC day, YYYY-MM-DD.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit_show(actor, branch, action, outcome, since, until, limit, as_json):
    """Print the newest entries that match."""
    branch_ids = None
    if branch:
        found = db.session.scalar(select(Branch.id).where(Branch.code == branch))
        if found is None:
            raise click.ClickException(f"no branch {branch!r}")
        branch_ids = (found,)
    rows, _more = queries.entries(
        queries.Filters(
            actor=actor,
            branch_ids=branch_ids,
            action=action,
            outcome=outcome,
            since=_day(since),
            until=_day(until),
        ),
        size=limit,
    )
    codes = {b.id: b.code for b in db.session.scalars(select(Branch))}
    for e in rows:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "at": e.at.isoformat(),
                        "actor": e.actor_username,
                        "role": e.actor_role,
                        "via": e.via,
                        "action": e.action,
                        "target": f"{e.target_type}:{e.target_id}" if e.target_type else None,
                        "branch": codes.get(e.branch_id),
                        "outcome": e.outcome,
                        "status": e.status,
                        "ip": e.ip,
                        "request_id": e.request_id,
                        "details": e.details,
                    },
                    sort_keys=True,
                )
            )
            continue
        target = f"{e.target_type}:{e.target_id}" if e.target_type else "-"
        click.echo(
            f"{e.at:%Y-%m-%d %H:%M:%S} {e.actor_username or 'system':<16} {e.via:<6} "
            f"{e.action:<28} {target:<20} {codes.get(e.branch_id, '-'):<6} {e.outcome}"
            + (f" {e.status}" if e.status else "")
        )
    if not rows:
        click.echo("no entries")


@audit_cli.command("purge")
@click.option(
    "--older-than-days",
    type=click.IntRange(min=1),
    default=None,
    help="Delete the entries older than this. Default: AUDIT_RETENTION_DAYS.",
)
@click.option("--dry-run", is_flag=True, help="Count them, delete nothing.")
def audit_purge(older_than_days, dry_run):
    """Delete old audit entries, a batch per transaction; the purge is itself logged."""
    from flask import current_app

    from ..core.types import utcnow
    from .models import VIA_CLI
    from .services import count_purgeable, purge

    days = older_than_days or int(current_app.config["AUDIT_RETENTION_DAYS"])
    if days <= 0:
        raise click.ClickException(
            "AUDIT_RETENTION_DAYS is 0 (kept for ever): give --older-than-days"
        )
    now = utcnow()
    if dry_run:
        count = count_purgeable(now=now, days=days)
        click.echo(f"{count} entries older than {days} days would be deleted")
        return
    batch = int(current_app.config["AUDIT_PURGE_BATCH"])
    deleted = purge(now=now, days=days, batch_size=batch, via=VIA_CLI)
    click.echo(f"{deleted} entries older than {days} days deleted")
