"""`flask --app queue_app cases escalate --as-of <ISO 8601> [--dry-run]`: the escalation sweep
by hand, printing what it changed (or would change)."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask.cli import AppGroup

from ..core.types import utcnow
from ..extensions import db
from .services import escalate_due

cases_cli = AppGroup("cases", help="Cases and their escalation ladder.")


def _moment(value: str | None) -> datetime:
    if not value:
        return utcnow()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 date and time: {value!r}") from None
    if moment.tzinfo is None:
        raise click.BadParameter("give a UTC offset (e.g. 2026-03-20T09:00:00+07:00 or ...Z)")
    return moment.astimezone(UTC)


@cases_cli.command("escalate")
@click.option("--as-of", "as_of", default=None, help="ISO 8601 with offset; default: now.")
@click.option("--dry-run", is_flag=True, help="Only print what would change.")
def escalate(as_of, dry_run):
    """Escalate the cases due at --as-of that nobody has contacted."""
    now = _moment(as_of)
    try:
        changes = escalate_due(now, dry_run=dry_run)
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    verb = "would escalate" if dry_run else "escalated"
    if not changes:
        click.echo(f"cases: nothing due at {now.isoformat()}")
        return
    for c in changes:
        owner = c.owner or "nobody"
        kept = " (owner kept: no manager)" if c.owner_kept else ""
        due = c.due_at.isoformat() if c.due_at else "none (last level)"
        mailed = f", e-mailed {', '.join(c.notified)}" if c.notified else ""
        click.echo(
            f"case {c.case_id} [{c.branch}]: {verb} level {c.from_level} -> {c.to_level}, "
            f"owner {owner}{kept}, due {due}{mailed}"
        )
    click.echo(f"cases: {len(changes)} {verb}")
