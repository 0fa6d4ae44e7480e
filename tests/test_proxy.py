"""Behind a reverse proxy (`PROXY_COUNT`): limits per client address count the address the proxy
saw, and a client can't pick its own address by sending X-Forwarded-For to an app that trusts
no proxy."""

import pytest

from queue_app import create_app
from queue_app.extensions import db

from .apihelp import API


@pytest.fixture
def proxied(app):
    """A second application on the test database, with a tight per-address limit."""

    def build(proxies: int):
        other = create_app(
            "testing",
            SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
            PROXY_COUNT=proxies,
            BOOKING_CODE_RATE_LIMIT="2 per minute",
        )
        built.append(other)
        return other.test_client()

    built = []
    yield build
    for other in built:
        with other.app_context():
            db.engine.dispose()


def lookups(client, address: str, n: int = 3) -> list[int]:
    headers = {"X-Forwarded-For": address}
    return [client.get(f"{API}/appointments/ABC123", headers=headers).status_code for _ in range(n)]


def test_behind_one_proxy_each_client_address_has_its_own_limit(proxied):
    client = proxied(1)
    assert lookups(client, "203.0.113.7") == [404, 404, 429]
    # another customer behind the same proxy is not throttled by the first one
    assert lookups(client, "203.0.113.8") == [404, 404, 429]


def test_without_a_trusted_proxy_the_header_is_ignored(proxied):
    client = proxied(0)
    assert lookups(client, "203.0.113.7") == [404, 404, 429]
    # a made-up address does not buy new tries: the connection's address counts
    assert lookups(client, "198.51.100.1", n=1) == [429]


def test_only_the_trusted_hop_counts(proxied):
    client = proxied(1)
    # the client put its own X-Forwarded-For in front; the proxy appended the real address
    assert lookups(client, "10.9.9.9, 203.0.113.50") == [404, 404, 429]
    assert lookups(client, "10.9.9.10, 203.0.113.50", n=1) == [429]
