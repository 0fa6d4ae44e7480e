"""The quoted range in English and Bahasa Indonesia (the catalogue may not have these strings
yet: then both read as the English source, which is still a whole sentence)."""

from __future__ import annotations

from flask_babel import force_locale

from queue_app.waits.estimator import Estimate
from queue_app.waits.text import range_text


def test_range_text(app):
    with app.test_request_context("/"):
        with force_locale("en"):
            assert range_text(Estimate(620, 610, 860, 1.0)) == "10-15 min"
            assert range_text(Estimate(40, 0, 230, 1.0)) == "Up to 4 min"
            assert range_text(Estimate(10, 0, 40, 1.0)) == "Less than a minute"
        with force_locale("id"):
            assert "10" in range_text(Estimate(620, 610, 860, 1.0))
