"""How a touchpoint's survey is worded for the customer (phone pages and the API's
`GET /tickets/<token>/feedback`): the questions it asks, in order, with their scales and the
words at both ends, the reasons it offers and whether it asks for a comment."""

from __future__ import annotations

from flask_babel import gettext as _

from .models import SurveyConfig
from .questions import reason_label
from .services import SCALES, asked


def question_text(name: str, about: str) -> str:
    if name == "nps":
        return _("How likely are you to recommend %(name)s to a friend or colleague?", name=about)
    if name == "csat":
        return _("How satisfied are you with your visit today?")
    return _("How easy was it to get what you came for?")


def scale_ends(name: str) -> tuple[str, str]:
    if name == "nps":
        return _("Not at all likely"), _("Extremely likely")
    if name == "csat":
        return _("Very dissatisfied"), _("Very satisfied")
    return _("Very difficult"), _("Very easy")


def survey_view(survey: SurveyConfig, about: str) -> dict:
    """The survey as the customer sees it, in the current language."""
    questions = []
    for name in asked(survey):
        low, high = SCALES[name]
        low_text, high_text = scale_ends(name)
        questions.append(
            {
                "id": name,
                "text": question_text(name, about),
                "min": low,
                "max": high,
                "min_label": low_text,
                "max_label": high_text,
            }
        )
    return {
        "questions": questions,
        "reasons": [{"code": c, "label": reason_label(c)} for c in survey.reasons or ()],
        "comment": bool(survey.ask_comment),
    }
