"""GET /healthz (liveness: the process answers, whatever the database) and GET /readyz
(readiness: 200 while the database and every Redis in use answer, 503, still JSON, when one
does not).

The unavailable cases use real servers that cannot answer: a PostgreSQL address where nothing
listens, an SQLite file in a folder that does not exist, a Redis port where nothing listens;
the available Redis is the real one on 127.0.0.1:6379. No mocks.
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


def test_readyz_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": "ok"}}


def test_healthz_answers_while_readyz_is_503_when_the_database_does_not_answer(down):
    # liveness: the process is fine, restarting it would not help
    assert down.get("/healthz").status_code == 200
    started = time.monotonic()
    response = down.get("/readyz")
    assert time.monotonic() - started < 10
    assert response.status_code == 503
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] not in ("ok", None)
    # says what kind of failure, never the connection string
    text = response.get_data(as_text=True)
    assert "127.0.0.1" not in text and "nonexistent" not in text and "postgres@" not in text


def test_readyz_recovers_on_the_next_call(down):
    assert down.get("/readyz").status_code == 503
    assert down.get("/readyz").status_code == 503  # no poisoned session in between


@pytest.mark.parametrize("setting", ["SOCKETIO_MESSAGE_QUEUE", "RATELIMIT_STORAGE_URI"])
def test_readyz_checks_every_redis_in_use(app, setting):
    """The message queue of Socket.IO and the rate limits' storage: the real Redis answers; a
    port where nothing listens makes the process unready (and still alive)."""
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    up = create_app(
        "testing", SQLALCHEMY_DATABASE_URI=database, **{setting: "redis://127.0.0.1:6379/0"}
    )
    response = up.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}
    gone = create_app(
        "testing", SQLALCHEMY_DATABASE_URI=database, **{setting: "redis://:secret@127.0.0.1:1/0"}
    )
    client = gone.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == "ConnectionError"
    assert "secret" not in response.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200
    for made in (up, gone):
        with made.app_context():
            db.engine.dispose()


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
