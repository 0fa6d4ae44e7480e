"""What the counter screen offers to choose from, and what it says when the engine refuses.

The engine's own messages are English and meant for logs and API clients; the screen shows a
sentence in the page's language, chosen by the error's stable code.
"""

from flask_babel import lazy_gettext as _l

# outcome codes a member of staff finishes a ticket with (stored in tickets.outcome_code)
OUTCOMES = (
    ("served", _l("Served, done")),
    ("cash_deposit", _l("Cash deposit")),
    ("cash_withdrawal", _l("Cash withdrawal")),
    ("transfer_payment", _l("Transfer or payment")),
    ("account_opened", _l("Account opened")),
    ("card_service", _l("Card service")),
    ("loan_application", _l("Loan application")),
    ("information", _l("Information given")),
    ("complaint", _l("Complaint recorded")),
    ("documents_missing", _l("Documents missing, customer will return")),
    ("not_resolved", _l("Not resolved")),
)
OUTCOME_CODES = frozenset(code for code, _ in OUTCOMES)

# reasons for a break; the free text is stored after the code ("prayer: Jumat")
PAUSE_REASONS = (
    ("break", _l("Short break")),
    ("meal", _l("Meal")),
    ("prayer", _l("Prayer")),
    ("briefing", _l("Briefing or meeting")),
    ("back_office", _l("Back-office work")),
    ("technical", _l("Technical problem")),
    ("other", _l("Other")),
)
PAUSE_CODES = frozenset(code for code, _ in PAUSE_REASONS)

NOTE_MAX = 2000
PAUSE_TEXT_MAX = 100

# the engine's error codes (core.errors, tickets.services, tickets.states) -> the screen's words
ERROR_MESSAGES = {
    "cannot_call": _l("This ticket is no longer waiting; it cannot be called."),
    "cannot_recall": _l("Only a called ticket can be recalled."),
    "cannot_start": _l("Only a called ticket can be started."),
    "cannot_finish": _l("Only a ticket in service can be finished; start it first."),
    "cannot_no_show": _l("Only a called ticket can be marked as a no-show."),
    "cannot_transfer": _l("Only a called ticket or a ticket in service can be transferred."),
    "cannot_hold": _l("Only a called ticket or a ticket in service can be put on hold."),
    "cannot_resume": _l("Only a ticket on hold can be resumed."),
    "cannot_cancel": _l("This ticket can no longer be cancelled."),
    "counter_not_open": _l("The counter is not open. Open it first."),
    "counter_busy": _l(
        "The counter still has a ticket. Finish, transfer or hold it before calling another."
    ),
    "counter_taken": _l("This counter is already open for someone else."),
    "counter_closed": _l("That counter is closed."),
    "signed_in_elsewhere": _l("You are signed in at another counter. Close it first."),
    "not_your_counter": _l("This counter is operated by someone else; you cannot act for them."),
    "other_counter": _l("This ticket was sent to another counter."),
    "service_not_served": _l("This counter does not serve that ticket's service."),
    "not_at_counter": _l("This ticket is not at a counter."),
    "changed": _l("The ticket changed meanwhile. Please try again."),
    "missing_target": _l("Choose a service or a counter to transfer to."),
    "bad_service": _l("That service is not available at this branch."),
    "bad_counter": _l("That counter is not in this branch."),
    "same_target": _l("Choose another service or counter than the current one."),
    "forbidden": _l("You may not do this at this branch."),
    "not_found": _l("That ticket or counter was not found."),
    "illegal_transition": _l("This step is not possible in the ticket's current state."),
    "conflict": _l("This is not possible right now."),
    "invalid": _l("The input is not valid."),
    "csrf": _l("The page has expired. Reload it and try again."),
    "unauthorized": _l("Your session has ended. Please sign in again."),
    "bad_outcome": _l("Choose an outcome from the list."),
    "bad_reason": _l("Choose a reason for the break from the list."),
    "too_long": _l("The text is too long."),
    "bad_ticket": _l("That ticket is not in this branch."),
}


def error_message(code: str) -> str:
    message = ERROR_MESSAGES.get(code)
    if message is None and code.startswith("cannot_"):
        message = ERROR_MESSAGES["illegal_transition"]
    return str(message or ERROR_MESSAGES["conflict"])
