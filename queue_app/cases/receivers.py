"""Cases hear about feedback: `feedback.received` (from `feedback.services.record_response`,
through `core.events.in_transaction`) opens the response's case when the touchpoint's criteria
say so, in the same unit of work as the response (and the e-mail to the case's owner goes to
the outbox in that transaction too)."""

from __future__ import annotations

from ..core.events import in_transaction_signal
from ..core.types import utcnow
from .services import open_case_for


def init_cases(app) -> None:
    """Connect the receivers (blinker keeps one connection however many apps)."""
    in_transaction_signal("feedback.received").connect(on_feedback_received)
    app.extensions["queue_app.cases"] = True


def on_feedback_received(_sender, *, response, now=None, **_payload) -> None:
    open_case_for(response, now=now or response.submitted_at or utcnow())
