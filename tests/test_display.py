"""The lobby display's page: what the server hands its script (the branch's language, the
words of the estimated wait). The page itself in a browser: tests/browser/test_display.py."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import unescape

import pytest
from flask_babel import force_locale

from queue_app.devices.models import DeviceKind
from queue_app.devices.services import register_device
from queue_app.extensions import db
from queue_app.waits.present import range_patterns

RANGES = {
    # the words of waits/text.py range_text, as the phone's tracking page has them
    "en": {"range": "{low}-{high} min", "up_to": "Up to {high} min"},
    "id": {"range": "{low}-{high} mnt", "up_to": "Hingga {high} mnt"},
}


def display_token(branch) -> str:
    now = datetime.now(UTC)
    device, token = register_device(DeviceKind.DISPLAY, now=now)
    device.branch = branch
    device.paired_at = now
    device.pairing_code = None
    device.name = "Lobby TV"
    db.session.commit()
    return token


def config_of(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="display-config">(.*?)</script>', html)
    assert found, "no display-config"
    return json.loads(unescape(found.group(1)))


@pytest.mark.parametrize("locale", ["id", "en"])
def test_the_display_gets_the_words_of_the_range_in_the_branch_language(client, make, locale):
    branch = make.branch("JKT01" if locale == "id" else "MNL01", locale=locale)
    token = display_token(branch)
    # whatever the browser prefers, the lobby reads the branch's language
    other = "en-US" if locale == "id" else "id-ID"
    response = client.get(
        f"/display/?device_token={token}",
        headers={"Accept-Language": other},
        follow_redirects=True,
    )
    assert response.status_code == 200
    config = config_of(response.get_data(as_text=True))
    words = config["strings"]["wait_range"]
    assert {k: words[k] for k in ("range", "up_to")} == RANGES[locale]
    with client.application.test_request_context("/"), force_locale(locale):
        assert words == range_patterns()  # the same three wordings as the tracking page
    # the mean ("about 7 min") is not what a customer reads any more
    assert not {"minutes", "under_minute"} & set(config["strings"])
    assert config["strings"]["no_estimate"]
