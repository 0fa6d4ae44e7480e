"""Who may see a customer's personal data, the masks everyone else sees, and consent.

The policy (one place, used by every page, payload and API answer that shows a customer):

- `counter` (the customer being served: the counter screen): the floor roles (staff, branch
  managers, admins) see the name in full; the phone number is masked for everyone (enough
  to confirm it with the customer, not to dial). The staff socket room, which every role
  that may view the branch joins, carries the masked name only.
- `case` (a case's customer, to call back): CX agents, branch managers and admins, who work
  cases, see name, phone and e-mail in full; executives and any other role see them masked.
- `report` (reports, metrics, the review, exports, dashboards): no personal data at all.
- The API follows the same rule: it returns no customer's data to staff tokens, and a
  booking's name only to whoever holds its booking code (the customer).

`mask_phone("+6281234567890")` -> `+62 812 •••• 7890`; `mask_name("Budi Santoso")` ->
`Bu•• S••••••`; `mask_email("budi.santoso@example.com")` -> `bu••••••••••@example.com`.
"""

from __future__ import annotations

from datetime import datetime

from ..accounts.models import FLOOR_ROLES, Role

COUNTER = "counter"
CASE = "case"
REPORT = "report"
CONTEXTS = (COUNTER, CASE, REPORT)

# who sees what in full, per context: {"name", "phone", "email"}
_FULL = {
    COUNTER: {role: {"name"} for role in FLOOR_ROLES},
    CASE: {
        Role.CX_AGENT: {"name", "phone", "email"},
        Role.BRANCH_MANAGER: {"name", "phone", "email"},
        Role.ADMIN: {"name", "phone", "email"},
    },
    REPORT: {},
}

# where consent can be given (Customer.consent_*_source)
CONSENT_SOURCES = ("booking", "remote_join", "kiosk", "staff", "api", "import")


def can_see_pii(user, context: str, field: str = "name") -> bool:
    """Whether `user` may see `field` ("name", "phone", "email") of a customer in `context`."""
    if context not in _FULL:
        raise ValueError(f"unknown context {context!r}")
    if user is None or not getattr(user, "is_authenticated", True):
        return False
    if not getattr(user, "active", True):
        return False
    return field in _FULL[context].get(getattr(user, "role", None), set())


def mask_phone(phone: str | None) -> str | None:
    """+6281234567890 -> +62 812 •••• 7890: enough to confirm with the customer, not to dial."""
    if not phone:
        return None
    digits = phone.lstrip("+")
    if len(digits) < 8:
        return "•" * len(digits)
    head, tail = digits[:5], digits[-4:]
    hidden = "•" * (len(digits) - 9) if len(digits) > 9 else "••"
    return f"+{head[:2]} {head[2:]} {hidden} {tail}"


def _mask_word(word: str, keep: int) -> str:
    return word[:keep] + "•" * max(len(word) - keep, 1) if word else word


def mask_name(name: str | None) -> str | None:
    """ "Budi Santoso" -> "Bu•• S••••••": two letters of the first word, one of the others."""
    if not name or not name.strip():
        return None
    words = name.split()
    first = _mask_word(words[0], 2 if len(words[0]) > 2 else 1)
    return " ".join([first, *(_mask_word(w, 1) for w in words[1:])])


def mask_email(email: str | None) -> str | None:
    """ "budi.santoso@example.com" -> "bu••••••••••@example.com"."""
    if not email:
        return None
    local, at, domain = email.partition("@")
    if not at:
        return _mask_word(email, 1)
    return f"{_mask_word(local, 2 if len(local) > 2 else 1)}@{domain}"


_MASKS = {"name": mask_name, "phone": mask_phone, "email": mask_email}


def shown(user, context: str, field: str, value: str | None) -> str | None:
    """`value` as `user` may see it in `context`: in full, masked, or (reports) nothing."""
    if value is None:
        return None
    if context == REPORT:
        return None
    if can_see_pii(user, context, field):
        return value
    return _MASKS[field](value)


def contact_view(user, context: str, customer) -> dict | None:
    """A customer's name, phone and e-mail as `user` may see them, and whether masked."""
    if customer is None:
        return None
    out = {
        field: shown(user, context, field, getattr(customer, field))
        for field in ("name", "phone", "email")
    }
    out["masked"] = {
        field: getattr(customer, field) is not None and out[field] != getattr(customer, field)
        for field in ("name", "phone", "email")
    }
    out["locale"] = customer.locale
    return out


# --- consent ---------------------------------------------------------------------------------


def give_consent(customer, *, now: datetime, source: str, contact=True, survey=False) -> None:
    """Record consent with when and how it was given. Consent already given keeps its first
    moment and source; this never takes consent back (`withdraw_consent` does)."""
    if customer is None:
        return
    if source not in CONSENT_SOURCES:
        raise ValueError(f"unknown consent source {source!r}")
    if contact and not (customer.consent_contact and customer.consent_contact_at):
        customer.consent_contact = True
        customer.consent_contact_at = now
        customer.consent_contact_source = source
    if survey and not (customer.consent_survey and customer.consent_survey_at):
        customer.consent_survey = True
        customer.consent_survey_at = now
        customer.consent_survey_source = source


def withdraw_consent(customer, *, contact=True, survey=True) -> None:
    if contact:
        customer.consent_contact = False
        customer.consent_contact_at = None
        customer.consent_contact_source = None
    if survey:
        customer.consent_survey = False
        customer.consent_survey_at = None
        customer.consent_survey_source = None
