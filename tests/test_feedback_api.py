"""The rating API: `GET/POST /api/v1/tickets/<token>/feedback` (api/feedback.py).

201 with the response; 409 already rated / not finished; 422 out of range or not offered;
404 for a token or step that names nothing; 429 past `FEEDBACK_RATE_LIMIT`; and, with
Hypothesis, never a 5xx and always the error shape whatever the body.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from queue_app.cases.models import Case, CaseStep
from queue_app.extensions import db
from queue_app.feedback.models import FeedbackResponse, SurveyConfig
from queue_app.tickets import services as engine

from .apihelp import API, assert_error, ok

M = timedelta(minutes=1)


@pytest.fixture
def visit(make, now, app, monkeypatch):
    monkeypatch.setitem(app.config, "FEEDBACK_RATE_LIMIT", "1000 per minute")
    b = make.branch("FAPI1", counters=[("Teller 1", ["teller"]), ("CS 1", ["cs"])])
    budi = make.user("budi_fapi", branches=[b])
    teller, cs = make.counter(b, "Teller 1"), make.counter(b, "CS 1")
    make.open_counter(teller, budi, now=now)
    first = make.ticket(b, "teller", now=now)
    db.session.commit()
    engine.call_ticket(first, teller, budi, now=now + 3 * M)
    engine.start(first, budi, now=now + 4 * M)
    engine.finish(first, budi, now=now + 9 * M)
    db.session.commit()
    return {"branch": b, "ticket": first, "token": first.token, "budi": budi, "cs": cs}


def _post(client, token, body, **kw):
    return client.post(f"{API}/tickets/{token}/feedback", json=body, **kw)


def _count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(FeedbackResponse))


def test_a_finished_visit_is_rated_once(client, visit):
    body = {"nps": 7, "csat": 3, "reasons": ["process"], "comment": "  ok  "}
    created = ok(_post(client, visit["token"], body), 201)
    assert created["nps"] == 7 and created["csat"] == 3 and created["ces"] is None
    assert created["reasons"] == ["process"] and created["comment"] == "ok"
    assert created["channel"] == "api" and created["step"] == 1
    assert created["number"] == visit["ticket"].number and created["service"] == "teller"
    row = db.session.get(FeedbackResponse, created["id"])
    assert (row.wait_s, row.service_s, row.transfers) == (180, 300, 0)
    assert_error(_post(client, visit["token"], {"nps": 10}), 409, "already_rated")
    assert_error(_post(client, visit["token"], {"nps": 10, "step": 1}), 409, "already_rated")
    assert _count() == 1


def test_not_finished_unknown_token_and_step(client, make, visit, now):
    waiting = make.ticket(visit["branch"], "teller", now=now)
    db.session.commit()
    assert_error(_post(client, waiting.token, {"nps": 9}), 409, "not_finished")
    assert_error(_post(client, "no-such-token", {"nps": 9}), 404)
    assert_error(_post(client, "x" * 500, {"nps": 9}), 404)
    assert_error(_post(client, visit["token"], {"nps": 9, "step": 2}), 404, "no_such_step")
    assert _count() == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"nps": 11}, "invalid_nps"),
        ({"nps": -1}, "invalid_nps"),
        ({"csat": 0}, "invalid_csat"),
        ({"csat": 6}, "invalid_csat"),
        ({"ces": 5}, "invalid_ces"),  # not asked at this touchpoint
        ({"reasons": ["nope"]}, "unknown_reason"),
        ({"comment": "z" * 2001}, "comment_too_long"),
        ({}, "empty_response"),
        ({"nps": "9"}, None),  # schema: a JSON integer, not a string
        ({"nps": 9.0}, None),
        ({"nps": True}, None),
        ({"nps": 9, "extra": 1}, None),
        ({"nps": 10**30}, None),
        ({"reasons": "process"}, None),
        ({"comment": "a\x00b"}, None),
        ({"step": 0, "nps": 9}, None),
    ],
)
def test_out_of_range_or_malformed_is_422(client, visit, body, code):
    error = assert_error(_post(client, visit["token"], body), 422, code)
    assert error["message"]
    assert _count() == 0


def test_get_lists_the_steps_and_their_questions(client, make, visit, now):
    b = visit["branch"]
    db.session.add(
        SurveyConfig(
            branch_id=b.id,
            service_id=make.service(b, "cs").id,
            ask_nps=False,
            ask_csat=True,
            ask_ces=True,
            ask_comment=False,
            reasons=["waiting_time", "facilities"],
        )
    )
    # a second visit, transferred to CS and finished there
    budi, cs = visit["budi"], visit["cs"]
    engine.open_counter(cs, make.user("ana_fapi", branches=[b]), now=now)
    t = make.ticket(b, "teller", now=now + 10 * M)
    db.session.commit()
    engine.call_ticket(t, make.counter(b, "Teller 1"), budi, now=now + 11 * M)
    nxt = engine.transfer(t, budi, now=now + 12 * M, service=make.service(b, "cs"))
    db.session.commit()
    ana = cs.staff
    engine.call_ticket(nxt, cs, ana, now=now + 13 * M)
    engine.start(nxt, ana, now=now + 14 * M)
    engine.finish(nxt, ana, now=now + 15 * M)
    db.session.commit()

    got = ok(client.get(f"{API}/tickets/{t.token}/feedback", headers={"Accept-Language": "en"}))
    assert got["next_step"] == 2
    (step,) = got["steps"]  # the transferred step was not served: not rateable
    assert (step["step"], step["service"], step["rated"], step["comment"]) == (
        2,
        "cs",
        False,
        False,
    )
    assert [q["id"] for q in step["questions"]] == ["csat", "ces"]
    assert step["questions"][0]["text"] == "How satisfied are you with your visit today?"
    assert (step["questions"][1]["min"], step["questions"][1]["max"]) == (1, 5)
    assert [r["code"] for r in step["reasons"]] == ["waiting_time", "facilities"]
    assert_error(_post(client, t.token, {"nps": 9}), 422, "invalid_nps")
    assert ok(_post(client, t.token, {"ces": 2, "reasons": ["facilities"]}), 201)["step"] == 2
    again = ok(client.get(f"{API}/tickets/{t.token}/feedback"))
    assert again["next_step"] is None and again["steps"][0]["rated"] is True

    default = ok(client.get(f"{API}/tickets/{visit['token']}/feedback"))["steps"][0]
    assert [q["id"] for q in default["questions"]] == ["nps", "csat"]
    assert (default["questions"][0]["min"], default["questions"][0]["max"]) == (0, 10)
    assert_error(client.get(f"{API}/tickets/nope/feedback"), 404)


def test_posting_is_rate_limited_per_address(client, visit, app, monkeypatch):
    monkeypatch.setitem(app.config, "FEEDBACK_RATE_LIMIT", "3 per minute")
    answers = [_post(client, visit["token"], {"nps": 99}).status_code for _ in range(4)]
    assert answers[:3] == [422, 422, 422]
    assert_error(_post(client, visit["token"], {"nps": 9}), 429)
    assert _count() == 0


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(
        ["waiting_time", "process", "\x00", "\ud800", "x" * 3000, " ", "staff_attitude"]
    )
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
FIELDS = ["nps", "csat", "ces", "reasons", "comment", "step"]
shaped = st.dictionaries(
    st.sampled_from(FIELDS),
    st.integers(min_value=-2, max_value=12) | json_values | st.lists(scalars, max_size=4),
    max_size=5,
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.one_of(shaped, json_values), raw=st.none() | st.binary(max_size=100))
def test_any_body_gets_a_proper_answer(client, visit, body, raw):
    if raw is not None:
        response = client.post(
            f"{API}/tickets/{visit['token']}/feedback",
            data=raw,
            content_type="application/json",
        )
    else:
        response = _post(client, visit["token"], body)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code == 201:
        created = response.get_json()
        assert 0 <= (created["nps"] if created["nps"] is not None else 0) <= 10
        # rated: the next one must be a 409; undo for the next example
        assert _post(client, visit["token"], {"nps": 5}).status_code == 409
        db.session.rollback()
        # a low score opened a case (queue_app/cases): it goes with its response
        db.session.execute(CaseStep.__table__.delete())
        db.session.execute(Case.__table__.delete())
        db.session.execute(FeedbackResponse.__table__.delete())
        db.session.commit()
    else:
        error = response.get_json()["error"]
        assert error["code"] and error["message"], json.dumps(error)
