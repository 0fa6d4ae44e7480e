"""GET /healthz: 200 while the database answers, 503 (still JSON) when it does not.

The unavailable cases use real databases that cannot answer: a PostgreSQL address where
nothing listens, and an SQLite file in a folder that does not exist. No mocks.
"""

import time

import pytest

from queue_app import create_app
from queue_app.extensions import db

from .apihelp import API, assert_error

UNREACHABLE = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:1/none",
    "sqlite": "sqlite:////nonexistent-folder-of-queue-app/none.sqlite3",
}


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}


@pytest.fixture(params=sorted(UNREACHABLE))
def down(request):
    """An application whose database does not answer."""
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=UNREACHABLE[request.param])
    # the test profile re-raises unexpected exceptions; a crash must show as a failure, not
    # as a 500 page, and a handled error must still be an answer
    yield app.test_client()
    with app.app_context():
        db.engine.dispose()


def test_healthz_is_503_when_the_database_does_not_answer(down):
    started = time.monotonic()
    response = down.get("/healthz")
    assert time.monotonic() - started < 10
    assert response.status_code == 503
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["status"] != "ok"
    # says what kind of failure, never the connection string
    text = response.get_data(as_text=True)
    assert "127.0.0.1" not in text and "nonexistent" not in text and "postgres@" not in text


def test_healthz_recovers_on_the_next_call(down):
    assert down.get("/healthz").status_code == 503
    assert down.get("/healthz").status_code == 503  # no poisoned session in between


def test_api_is_503_with_the_error_shape_when_the_database_does_not_answer(down):
    assert_error(down.get(f"{API}/branches"), 503, "unavailable")
    response = down.post(f"{API}/branches/JKT01/tickets", json={"service": "teller"})
    assert_error(response, 503, "unavailable")
    response = down.post(
        f"{API}/counters/1/open", headers={"Authorization": "Bearer qa_whatever-token"}
    )
    assert_error(response, 503, "unavailable")


def test_api_still_validates_without_a_database(down):
    """A malformed request is the client's fault whatever the state of the database."""
    response = down.post(
        f"{API}/branches/JKT01/tickets", data="{bad", content_type="application/json"
    )
    assert_error(response, 400, "bad_json")


def test_pages_are_503_when_the_database_does_not_answer(down):
    response = down.get("/")
    assert response.status_code == 503
