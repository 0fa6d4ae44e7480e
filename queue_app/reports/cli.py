"""`flask --app queue_app reports snapshot [--rebuild]`: store the reports of closed periods.

    flask --app queue_app reports snapshot            # what the hourly job does, now
    flask --app queue_app reports snapshot --rebuild  # after a history import

`--rebuild` deletes every stored report first (they were worked out from the history before
the import) and stores the periods just closed again; older periods are worked out again
and stored at their first read.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from ..core.types import utcnow
from ..extensions import db
from . import jobs, snapshots

reports_cli = AppGroup("reports", help="Reports: the stored figures of closed periods.")


@reports_cli.command("snapshot")
@click.option("--rebuild", is_flag=True, help="Delete every stored report first, then store again.")
def snapshot_command(rebuild):
    """Store the report of the day, week and month each active branch closed last."""
    if rebuild:
        deleted = snapshots.delete_all()
        db.session.commit()
        click.echo(f"deleted {deleted} stored reports")
    written = jobs.snapshot_closed_periods(current_app._get_current_object(), utcnow())
    click.echo(f"stored {written} reports of closed periods")
