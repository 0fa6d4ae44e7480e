"""CSV exports for the data warehouse: the documented columns in their order, UTF-8 with a
header row, ISO-8601 UTC times, streamed in chunks, filtered by days and branch, limited by
the caller's role and branches and the token's scope, and with no personal data."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from queue_app.accounts.models import Role
from queue_app.cases.models import Case
from queue_app.exports import streams
from queue_app.extensions import db
from queue_app.tickets import services as engine

from .apihelp import API, assert_error, assert_invalid, fast_passwords
from .caseshelp import build_ladder, customer, respond

T0 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Tuesday 10:00 WIB: business day 2026-03-03
M = timedelta(minutes=1)
DAY = "from=2026-03-03&to=2026-03-03"
PII = ("Rina", "Sari Dewi", "6281234567890", "rina@example.com", "kecewa sekali")


@pytest.fixture
def world(make, monkeypatch):
    fast_passwords(monkeypatch)
    people = build_ladder(make)  # JKT01 (teller) and SBY01
    branch = people.branch
    person = customer(phone="+6281234567890", email="rina@example.com", name="Ibu Rina")
    counter = branch.counters[0]
    service = next(s for s in branch.services if s.code == "teller")
    # a served visit step with a customer, one still waiting, one on the next day
    served = engine.issue_ticket(branch, service, now=T0, customer=person)
    db.session.commit()
    engine.open_counter(counter, people.staff, now=T0)
    engine.call_next(counter, people.staff, now=T0 + 4 * M)
    db.session.commit()
    engine.start(served, people.staff, now=T0 + 5 * M)
    engine.finish(served, people.staff, now=T0 + 12 * M, outcome="done")
    db.session.commit()
    waiting = engine.issue_ticket(branch, service, now=T0 + 20 * M)
    engine.issue_ticket(branch, service, now=T0 + timedelta(days=1))
    elsewhere = engine.issue_ticket(
        people.other_branch, people.other_branch.services[0], now=T0 + 30 * M
    )
    # feedback with a comment that names the customer, which opens a case
    answer = respond(
        make,
        branch,
        now=T0 + 15 * M,
        nps=2,
        reasons=["waiting_time"],
        comment="Saya Rina, kecewa sekali",
        person=customer(name="Sari Dewi"),
    )
    db.session.commit()
    admin = make.user("root", role=Role.ADMIN)
    db.session.commit()
    return {
        "people": people,
        "served": served,
        "waiting": waiting,
        "elsewhere": elsewhere,
        "answer": answer,
        "admin": admin,
        "h_admin": make.auth(admin),
    }


def _rows(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert not raw.startswith(b"\xef\xbb\xbf")  # no byte-order mark: machine readers
    text = raw.decode("utf-8")
    assert "\r\n" in text
    for secret in PII:
        assert secret not in text
    return list(csv.DictReader(io.StringIO(text)))


def _header(response) -> list[str]:
    return next(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_visits(client, world):
    response = client.get(f"{API}/exports/visits.csv?{DAY}", headers=world["h_admin"])
    assert _header(response) == list(streams.VISIT_COLUMNS)
    rows = _rows(response)
    # JKT01's two steps of the day (the customer's respond() ticket too) and SBY01's one;
    # not the next day's
    ids = [int(r["ticket_id"]) for r in rows]
    assert world["served"].id in ids and world["waiting"].id in ids
    assert world["elsewhere"].id in ids
    assert all(r["business_day"] == "2026-03-03" for r in rows)
    served = next(r for r in rows if int(r["ticket_id"]) == world["served"].id)
    assert served["issued_at"] == "2026-03-03T03:00:00Z"
    assert served["called_at"] == "2026-03-03T03:04:00Z"
    assert served["finished_at"] == "2026-03-03T03:12:00Z"
    assert (served["wait_s"], served["service_s"]) == ("240", "420")
    assert (served["status"], served["outcome"], served["branch"]) == ("finished", "done", "JKT01")
    counter = world["people"].branch.counters[0]
    assert (served["counter_id"], served["counter"]) == (str(counter.id), counter.name)
    assert served["customer_known"] == "true"
    waiting = next(r for r in rows if int(r["ticket_id"]) == world["waiting"].id)
    assert (waiting["called_at"], waiting["wait_s"], waiting["customer_known"]) == ("", "", "false")
    # stable order: business day, then id
    assert ids == sorted(ids)


def test_the_branch_filter_and_the_days(client, world):
    only = _rows(
        client.get(f"{API}/exports/visits.csv?{DAY}&branch=SBY01", headers=world["h_admin"])
    )
    assert [int(r["ticket_id"]) for r in only] == [world["elsewhere"].id]
    two_days = _rows(
        client.get(
            f"{API}/exports/visits.csv?from=2026-03-03&to=2026-03-04&branch=JKT01",
            headers=world["h_admin"],
        )
    )
    assert {r["business_day"] for r in two_days} == {"2026-03-03", "2026-03-04"}
    none = _rows(
        client.get(
            f"{API}/exports/visits.csv?from=2026-01-01&to=2026-01-31", headers=world["h_admin"]
        )
    )
    assert none == []


def test_feedback(client, world):
    response = client.get(f"{API}/exports/feedback.csv?{DAY}", headers=world["h_admin"])
    assert _header(response) == list(streams.FEEDBACK_COLUMNS)
    [row] = _rows(response)
    assert int(row["response_id"]) == world["answer"].id
    assert (row["nps"], row["reasons"], row["has_comment"]) == ("2", "waiting_time", "true")
    assert (row["branch"], row["service"], row["submitted_at"]) == (
        "JKT01",
        "teller",
        "2026-03-03T03:15:00Z",
    )


def test_cases(client, world):
    response = client.get(f"{API}/exports/cases.csv?{DAY}", headers=world["h_admin"])
    assert _header(response) == list(streams.CASE_COLUMNS)
    [row] = _rows(response)
    assert int(row["response_id"]) == world["answer"].id
    assert (row["branch"], row["level"], row["status"]) == ("JKT01", "1", "open")
    assert row["opened_at"] == "2026-03-03T03:15:00Z"
    assert "nps<=6" in row["triggers"].split(";")


def test_cases_are_exported_by_the_local_day_they_were_opened(client, world):
    """17:30 UTC on 3 March is 00:30 on 4 March in Jakarta: the case is JKT01's 4 March."""
    case = db.session.scalar(select(Case).where(Case.response_id == world["answer"].id))
    case.opened_at = datetime(2026, 3, 3, 17, 30, tzinfo=UTC)
    db.session.commit()
    h = world["h_admin"]
    assert _rows(client.get(f"{API}/exports/cases.csv?{DAY}", headers=h)) == []
    [row] = _rows(client.get(f"{API}/exports/cases.csv?from=2026-03-04&to=2026-03-04", headers=h))
    assert (row["branch"], row["opened_at"]) == ("JKT01", "2026-03-03T17:30:00Z")


def test_who_may_export(client, world, make):
    people = world["people"]
    manager = make.auth(people.manager)  # JKT01's manager
    mine = _rows(client.get(f"{API}/exports/visits.csv?{DAY}", headers=manager))
    assert {r["branch"] for r in mine} == {"JKT01"}
    assert_error(client.get(f"{API}/exports/visits.csv?{DAY}&branch=SBY01", headers=manager), 403)
    assert_error(client.get(f"{API}/exports/cases.csv?{DAY}", headers=make.auth(people.staff)), 403)
    executive = _rows(client.get(f"{API}/exports/cases.csv?{DAY}", headers=make.auth(people.ceo)))
    assert len(executive) == 1
    # the scope: an admin's token without exports:read
    from queue_app.accounts.scopes import LEGACY_SCOPES
    from queue_app.accounts.services import create_api_token

    legacy = create_api_token(world["admin"], now=T0, scopes=LEGACY_SCOPES)
    db.session.commit()
    error = assert_error(
        client.get(
            f"{API}/exports/visits.csv?{DAY}", headers={"Authorization": f"Bearer {legacy}"}
        ),
        403,
        "missing_scope",
    )
    assert "exports:read" in error["message"]
    assert_error(client.get(f"{API}/exports/visits.csv?{DAY}"), 401)


@pytest.mark.parametrize(
    "query, field",
    [
        ("to=2026-03-03", "from"),
        ("from=2026-03-03", "to"),
        ("from=2026-03-04&to=2026-03-03", "to"),
        ("from=2025-01-01&to=2026-03-03", "to"),
        ("from=yesterday&to=2026-03-03", "from"),
        ("from=1999-12-31&to=2000-01-01", "from"),
    ],
)
def test_bad_queries_are_422(client, world, query, field):
    response = client.get(f"{API}/exports/visits.csv?{query}", headers=world["h_admin"])
    assert_invalid(response, f"query.{field}")


def test_an_unknown_branch_is_404(client, world):
    response = client.get(f"{API}/exports/feedback.csv?{DAY}&branch=NOPE", headers=world["h_admin"])
    assert_error(response, 404)


def test_the_answer_is_streamed_in_chunks(client, world, monkeypatch):
    monkeypatch.setattr(streams, "CHUNK_ROWS", 1)
    response = client.get(f"{API}/exports/visits.csv?{DAY}", headers=world["h_admin"])
    assert response.is_streamed
    chunks = [c for c in response.response if c]
    lines = b"".join(chunks).decode().split("\r\n")
    rows = [line for line in lines[1:] if line]
    assert len(rows) >= 3
    assert len(chunks) == len(rows) + 1  # the header, then one chunk per row here


def test_encode_is_lazy():
    """`encode` pulls rows as it writes: a row source that would never end is not read to
    its end before the first bytes go out."""

    def endless():
        n = 0
        while True:
            n += 1
            yield (n, None, True, T0, [1, 2])

    out = streams.encode(("n", "none", "flag", "at", "list"), endless())
    assert next(out).decode() == "n,none,flag,at,list\r\n"
    rows = next(out).decode().split("\r\n")
    assert len(rows) == streams.CHUNK_ROWS + 1  # one chunk, then the empty end of the last line
    assert rows[0] == "1,,true,2026-03-03T03:00:00Z,1;2"
