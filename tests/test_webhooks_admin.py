"""The webhook admin pages: admins only; adding an endpoint shows its secret once; changing,
turning off, a new secret; the delivery log with its filters."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from queue_app.accounts.models import Role
from queue_app.extensions import db
from queue_app.webhooks import services as webhooks
from queue_app.webhooks.models import DeliveryStatus, WebhookEndpoint

from .apihelp import fast_passwords

T0 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
PAGE = "/admin/webhooks"


def sign_in(client, user):
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True


def csrf(client, path=PAGE) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def submit(client, path=PAGE, **fields):
    """Post the page's form at `path` with these fields and its CSRF token."""
    return client.post(path, data={"csrf_token": csrf(client, path), **fields})


@pytest.fixture
def admin(client, make, monkeypatch):
    fast_passwords(monkeypatch)
    make.branch("JKT01")
    user = make.user("root", role=Role.ADMIN)
    db.session.commit()
    sign_in(client, user)
    return user


def endpoints() -> list[WebhookEndpoint]:
    db.session.expire_all()
    return list(db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def test_only_admins_open_the_pages(client, make, monkeypatch):
    fast_passwords(monkeypatch)
    branch = make.branch("JKT01")
    manager = make.user("dewi", role=Role.BRANCH_MANAGER, branches=[branch])
    db.session.commit()
    assert client.get(PAGE).status_code == 302  # to sign in
    sign_in(client, manager)
    for path in (PAGE, f"{PAGE}/deliveries"):
        assert client.get(path).status_code == 403


def test_adding_a_webhook_shows_its_secret_once(client, admin):
    token = csrf(client)
    response = client.post(
        PAGE,
        data={
            "csrf_token": token,
            "url": "https://warehouse.bank.example/hooks",
            "name": "Warehouse",
            "events": ["ticket.called", "case.escalated"],
            "branch": "JKT01",
        },
    )
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    [endpoint] = endpoints()
    secret = webhooks.signing_secret(endpoint)
    assert secret.startswith("whsec_")
    assert secret in response.get_data(as_text=True)
    # sealed in the database: a copy of it does not reveal the secret
    assert endpoint.secret_sealed.startswith("fernet:") and secret not in endpoint.secret_sealed
    assert (endpoint.events, endpoint.branch.code, endpoint.active) == (
        ["case.escalated", "ticket.called"],
        "JKT01",
        True,
    )
    # never again
    assert secret not in client.get(PAGE).get_data(as_text=True)
    edit = client.get(f"{PAGE}/{endpoint.id}").get_data(as_text=True)
    assert secret not in edit


@pytest.mark.parametrize(
    "form, message",
    [
        ({"url": "ftp://x.example/", "events": ["ticket.called"]}, "http://"),
        ({"url": "https://x.example/", "events": []}, "events"),
        ({"url": "https://x.example/", "events": ["ticket.exploded"]}, "events"),
        ({"url": "https://x.example/", "events": ["ticket.called"], "branch": "NOPE"}, "branch"),
        ({"url": "https://x.example/", "events": ["ticket.called"], "name": "x" * 81}, "80"),
    ],
)
def test_a_bad_form_is_refused_with_a_message(client, admin, form, message):
    response = client.post(PAGE, data={"csrf_token": csrf(client), **form})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert endpoints() == []


def test_changing_turning_off_and_a_new_secret(client, admin):
    endpoint, secret = webhooks.create_endpoint(
        url="https://a.example/", events=["ticket.called"], now=T0
    )
    db.session.commit()
    path = f"{PAGE}/{endpoint.id}"
    response = submit(client, path, url="https://b.example/in", events=["alert.raised"], branch="")
    assert response.status_code == 302
    [endpoint] = endpoints()
    assert (endpoint.url, endpoint.events, endpoint.active, endpoint.branch_id) == (
        "https://b.example/in",
        ["alert.raised"],
        False,  # the box "on" was not ticked
        None,
    )
    response = client.post(f"{path}/secret", data={"csrf_token": csrf(client, path)})
    [endpoint] = endpoints()
    rotated = webhooks.signing_secret(endpoint)
    assert rotated != secret and rotated in response.get_data(as_text=True)
    assert client.get(f"{PAGE}/999999").status_code == 404


def test_the_delivery_log_filters(client, admin):
    endpoint, _secret = webhooks.create_endpoint(
        url="https://a.example/", events=["ticket.called", "alert.raised"], now=T0
    )
    db.session.flush()
    called = webhooks.record(
        db.session, "ticket.called", branch_id=None, data={"n": 1}, now=T0, endpoints=[endpoint]
    )[0]
    raised = webhooks.record(
        db.session, "alert.raised", branch_id=None, data={"n": 2}, now=T0, endpoints=[endpoint]
    )[0]
    raised.status = DeliveryStatus.FAILED
    db.session.commit()
    page = client.get(f"{PAGE}/deliveries").get_data(as_text=True)
    assert called.uid in page and raised.uid in page
    failed = client.get(f"{PAGE}/deliveries?status=failed").get_data(as_text=True)
    assert raised.uid in failed and called.uid not in failed
    by_event = client.get(f"{PAGE}/deliveries?event=ticket.called").get_data(as_text=True)
    assert called.uid in by_event and raised.uid not in by_event
    # junk filters are ignored, never a 500
    junk = client.get(f"{PAGE}/deliveries?status=x&event=y&webhook=z&before=-1")
    assert junk.status_code == 200
    assert (
        client.post(
            f"{PAGE}/deliveries/999999/replay", data={"csrf_token": csrf(client)}
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://localhost:6379/",  # this machine's Redis
        "https://10.20.30.40/hooks",
        "http://[::1]:8000/metrics",
    ],
)
def test_a_webhook_to_this_server_or_a_private_network_is_refused(client, admin, url, monkeypatch):
    monkeypatch.setitem(client.application.config, "WEBHOOK_ALLOWED_NETWORKS", "")
    response = submit(client, url=url, events=["ticket.called"])
    assert response.status_code == 422
    assert "WEBHOOK_ALLOWED_NETWORKS" in response.get_data(as_text=True)
    assert endpoints() == []


def test_a_webhook_to_a_network_the_operator_allows_is_saved(client, admin, monkeypatch):
    monkeypatch.setitem(client.application.config, "WEBHOOK_ALLOWED_NETWORKS", "10.20.0.0/16")
    url = "https://10.20.30.40/hooks"
    response = submit(client, url=url, events=["ticket.called"])
    assert response.status_code == 201
    [endpoint] = endpoints()
    assert endpoint.url == url
    # and changing it to a network not allowed is refused, the saved address kept
    edit = f"{PAGE}/{endpoint.id}"
    response = submit(
        client, edit, url="https://10.99.0.1/hooks", events=["ticket.called"], active="1"
    )
    assert response.status_code == 422
    assert [e.url for e in endpoints()] == [url]


def test_the_refusal_of_a_private_address_reads_in_bahasa_indonesia(client, admin, monkeypatch):
    monkeypatch.setitem(client.application.config, "WEBHOOK_ALLOWED_NETWORKS", "")
    path = f"{PAGE}?lang=id"
    response = submit(client, path, url="http://10.0.0.7/hooks", events=["ticket.called"])
    assert response.status_code == 422
    assert "Alamat ini berada di server ini atau di jaringan privat" in response.get_data(
        as_text=True
    )
