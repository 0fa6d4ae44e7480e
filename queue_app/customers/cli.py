"""`flask customers erase` (one customer's personal data, on request) and
`flask privacy anonymise` (the retention job, by hand)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from ..audit.models import VIA_CLI
from ..audit.services import record
from ..core.errors import DomainError
from ..core.types import utcnow
from ..extensions import db
from . import erasure, retention

customers_cli = AppGroup("customers", help="Customers' personal data.")
privacy_cli = AppGroup("privacy", help="Retention of personal data.")


@customers_cli.command("erase")
@click.option("--phone", default=None, help="The customer's phone number (local or E.164).")
@click.option("--email", default=None, help="The customer's e-mail address.")
@click.option("--id", "customer_id", type=int, default=None, help="The customer's id.")
@click.option("--region", default="ID", show_default=True, help="Region of a local number.")
@click.option("--dry-run", is_flag=True, help="Say what would be erased; change nothing.")
def customers_erase(phone, email, customer_id, region, dry_run):
    """Erase one customer's personal data on their request, keeping anonymous statistics.
    Name them by exactly one of --phone, --email or --id."""
    now = utcnow()
    try:
        customer = erasure.find_customer(
            phone=phone, email=email, customer_id=customer_id, region=region
        )
        if customer.erased_at is not None:
            click.echo(f"customer {customer.id}: erased already on {customer.erased_at:%Y-%m-%d}")
        result = erasure.erase_customer(customer, now=now)
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    summary = result.as_dict()
    if dry_run:
        db.session.rollback()
        click.echo(f"dry run: customer {result.customer_id} would be erased; nothing changed")
    else:
        record(
            "customer.erase",
            via=VIA_CLI,
            target_type="customer",
            target_id=result.customer_id,
            details={k: v for k, v in summary.items() if k != "customer_id"},
            now=now,
        )
        db.session.commit()
        click.echo(f"customer {result.customer_id}: personal data erased")
    click.echo(f"  fields: {', '.join(result.fields) or 'none'}")
    for key in (
        "appointments",
        "feedback_comments",
        "ticket_notes",
        "case_notes",
        "outbox_withdrawn",
        "outbox_blanked",
        "verifications",
    ):
        click.echo(f"  {key.replace('_', ' ')}: {summary[key]}")


@customers_cli.command("withdraw-consent")
@click.option("--phone", default=None, help="The customer's phone number (local or E.164).")
@click.option("--email", default=None, help="The customer's e-mail address.")
@click.option("--id", "customer_id", type=int, default=None, help="The customer's id.")
@click.option("--region", default="ID", show_default=True, help="Region of a local number.")
@click.option(
    "--only",
    type=click.Choice(["contact", "survey"]),
    default=None,
    help="Withdraw one consent only (default: both).",
)
def customers_withdraw_consent(phone, email, customer_id, region, only):
    """Record that a customer withdrew their consent to messages (and/or surveys). Messages
    about a visit they start themselves (a booking, a remote ticket) still reach them."""
    from .privacy import withdraw_consent

    try:
        customer = erasure.find_customer(
            phone=phone, email=email, customer_id=customer_id, region=region
        )
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    contact, survey = only in (None, "contact"), only in (None, "survey")
    withdraw_consent(customer, contact=contact, survey=survey)
    record(
        "customer.withdraw_consent",
        via=VIA_CLI,
        target_type="customer",
        target_id=customer.id,
        details={"contact": contact, "survey": survey},
    )
    db.session.commit()
    what = " and ".join(n for n, on in (("contact", contact), ("survey", survey)) if on)
    click.echo(f"customer {customer.id}: consent withdrawn ({what})")


@privacy_cli.command("anonymise")
@click.option(
    "--older-than-days",
    type=click.IntRange(min=1),
    default=None,
    help="Default: RETENTION_DAYS of the configuration.",
)
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=retention.DEFAULT_BATCH)
@click.option("--dry-run", is_flag=True, help="Count what would be anonymised; change nothing.")
def privacy_anonymise(older_than_days, batch_size, dry_run):
    """Anonymise the visits, feedback, messages and contacts older than the retention period,
    keeping the anonymous statistics. Idempotent; each batch is one transaction."""
    days = older_than_days or int(current_app.config["RETENTION_DAYS"])
    now = utcnow()
    counts = retention.run(now=now, days=days, batch_size=batch_size, commit=not dry_run)
    if dry_run:
        db.session.rollback()
    else:
        record(
            "privacy.anonymise",
            via=VIA_CLI,
            details={"older_than_days": days, **counts.as_dict()},
            now=now,
        )
        db.session.commit()
    prefix = "dry run: would anonymise" if dry_run else "anonymised"
    click.echo(
        f"{prefix} data older than {days} days (before {retention.cutoff_for(now, days):%Y-%m-%d}):"
    )
    for key, value in counts.as_dict().items():
        click.echo(f"  {key.replace('_', ' ')}: {value}")
