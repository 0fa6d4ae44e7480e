"""A gateway URL is reached over HTTP only: urllib would also open `file:` and `ftp:` URLs, so
a mistyped or hostile SMS_GATEWAY_URL must fail the message, not read a local file (bandit B310)."""

from types import SimpleNamespace
from urllib import request

import pytest

from queue_app.notify import channels
from queue_app.notify.models import Channel


@pytest.mark.parametrize(
    "url", ["file:///etc/hostname", "ftp://127.0.0.1/send", "/send", "gateway.local/send"]
)
def test_a_gateway_url_that_is_not_http_fails_permanently_without_opening_it(app, monkeypatch, url):
    opened = []
    monkeypatch.setattr(request, "urlopen", lambda *a, **k: opened.append(a))
    monkeypatch.setitem(app.config, "SMS_GATEWAY_URL", url)
    message = SimpleNamespace(id=1, channel=Channel.SMS.value, recipient="+6281234567890", body="x")
    with app.app_context(), pytest.raises(channels.ChannelError) as failure:
        channels.send(message)
    assert failure.value.permanent
    assert "not http(s)" in str(failure.value)
    assert opened == []
