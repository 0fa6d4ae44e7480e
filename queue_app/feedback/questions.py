"""The questions of a touchpoint's survey and the reason codes customers can pick.

`survey_for(branch_id, service_id)` is the survey of a touchpoint: the service's own
`SurveyConfig` row, else the branch's default row (no service), else the network's defaults
(`DEFAULTS`: NPS, CSAT and a comment; every reason offered; escalation at NPS <= 6, CSAT <= 2,
CES <= 2). It never writes: a touchpoint without a row gets a transient `SurveyConfig`.
Its two halves, `touchpoint_rows` (which rows) and `pick_survey` (which of them), serve a
caller that reads the rows within a statement of its own (`invitations.invite`).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..extensions import db
from .models import SurveyConfig

# reason codes a customer can pick (multi-select), with their labels; a touchpoint offers a subset
REASONS = {
    "waiting_time": _l("Waiting time"),
    "staff_attitude": _l("Staff attitude"),
    "staff_competence": _l("Staff knowledge"),
    "process": _l("Process and paperwork"),
    "product": _l("Product or fees"),
    "facilities": _l("Branch facilities"),
}

DEFAULTS = {
    "ask_nps": True,
    "ask_csat": True,
    "ask_ces": False,
    "ask_comment": True,
    "reasons": list(REASONS),
    "sample_percent": 100,
    "quiet_days": 30,
    "link_valid_days": 7,
    "escalate_nps_max": 6,
    "escalate_csat_max": 2,
    "escalate_ces_max": 2,
    "escalate_reasons": [],
    "escalate_keywords": [],
    "owner_id": None,
}


def touchpoint_rows(branch_id: int, service_id: int | None):
    """The condition on `SurveyConfig` rows that may be the touchpoint's survey: the service's
    own and the branch's default (`pick_survey` chooses); a WHERE or a join's ON clause."""
    return (SurveyConfig.branch_id == branch_id) & (
        (SurveyConfig.service_id == service_id) | SurveyConfig.service_id.is_(None)
    )


def pick_survey(rows, branch_id: int, service_id: int | None) -> SurveyConfig:
    """The touchpoint's survey among its `touchpoint_rows`: its own row, the branch's, or a
    transient row of `DEFAULTS`."""
    own = next((r for r in rows if r.service_id is not None and r.service_id == service_id), None)
    branch_default = next((r for r in rows if r.service_id is None), None)
    if own or branch_default:
        return own or branch_default
    return SurveyConfig(branch_id=branch_id, service_id=service_id, **DEFAULTS)


def survey_for(branch_id: int, service_id: int | None) -> SurveyConfig:
    """The survey of the touchpoint (branch, service): its own row, the branch's, or defaults."""
    rows = db.session.scalars(
        select(SurveyConfig).where(touchpoint_rows(branch_id, service_id))
    ).all()
    return pick_survey(rows, branch_id, service_id)


def reason_label(code: str) -> str:
    return str(REASONS.get(code, code))
