"""The escalation pipeline for real: cases opened from unhappy responses, the ladder's clock
(wall and working hours, across a weekend and an Indonesian public holiday), the sweep with
frozen time and a real SMTP server, two sweeps at once, the case work and the recovery
survey."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select

from queue_app.booking.models import BranchClosure
from queue_app.cases import ladder, queries
from queue_app.cases import services as cases
from queue_app.cases.jobs import escalate_cases
from queue_app.cases.models import Case, CaseStatus, CaseStep, StepKind
from queue_app.core.errors import Conflict, InvalidInput
from queue_app.extensions import db
from queue_app.feedback.models import SurveyConfig
from queue_app.notify.models import OutboxMessage

from .apihelp import fast_passwords
from .caseshelp import build_ladder, customer, respond
from .outboxes import deliver_outbox as deliver_job

T0 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Tuesday 10:00 WIB
H = timedelta(hours=1)


@pytest.fixture
def people(make, monkeypatch):
    fast_passwords(monkeypatch)
    result = build_ladder(make)
    db.session.commit()
    return result


def the_case(response) -> Case:
    db.session.expire_all()
    return db.session.scalar(select(Case).where(Case.response_id == response.id))


def sweep(app, now: datetime) -> int:
    """The sweep job, in its own application context and session (as the scheduler runs it);
    the test's session ends its transaction first (SQLite's write lock)."""
    db.session.commit()
    return escalate_cases(app, now)


def deliver_outbox(app, now: datetime) -> dict:
    db.session.commit()
    return deliver_job(app, now)


def recipients(messages) -> list[str]:
    return sorted(str(m["To"]) for m in messages)


def kinds(case: Case) -> list[str]:
    return [s.kind.value for s in case.steps]


# --- the timeline, frozen time, real SMTP ------------------------------------------------------


def test_an_uncontacted_detractor_climbs_the_ladder_and_the_people_are_e_mailed(
    app, people, make, smtp
):
    with time_machine.travel(T0, tick=False) as traveller:
        response = respond(make, people.branch, now=T0, nps=3, comment="Antre lama sekali")
        db.session.commit()
        case = the_case(response)
        assert (case.level, case.status, case.owner_id) == (1, CaseStatus.OPEN, people.manager.id)
        assert case.due_at == T0 + 48 * H and case.triggers == ["nps<=6"]
        assert kinds(case) == ["opened"]
        deliver_outbox(app, T0)
        [opened] = smtp.wait_for(1)
        assert str(opened["To"]) == "dewi@bank.co.id"
        assert f"/cx/cases/{case.id}" in opened.get_content()

        # 47 hours later nothing has happened yet
        traveller.move_to(T0 + 47 * H)
        assert sweep(app, datetime.now(UTC)) == 0
        assert the_case(response).level == 1

        # just after 48 hours: level 2, the manager's manager owns it and is e-mailed
        traveller.move_to(T0 + 48 * H + timedelta(seconds=1))
        assert sweep(app, datetime.now(UTC)) == 1
        case = the_case(response)
        assert (case.level, case.owner_id) == (2, people.area.id)
        assert case.due_at == T0 + 72 * H  # 24 h after the previous due time
        deliver_outbox(app, datetime.now(UTC))
        messages = smtp.wait_for(2)
        assert str(messages[1]["To"]) == "hendra@bank.co.id"
        assert "2" in str(messages[1]["Subject"])
        # a sweep run again changes and sends nothing more
        assert sweep(app, datetime.now(UTC) + timedelta(minutes=5)) == 0
        deliver_outbox(app, datetime.now(UTC) + timedelta(minutes=5))
        assert len(smtp.messages) == 2

        # 24 hours later: level 3, nobody above hendra (kept, noted), executives informed
        traveller.move_to(T0 + 72 * H + timedelta(seconds=1))
        assert sweep(app, datetime.now(UTC)) == 1
        case = the_case(response)
        assert (case.level, case.owner_id, case.due_at) == (3, people.area.id, None)
        step = case.steps[-1]
        assert step.kind == StepKind.ESCALATED and step.data["from"] == 2 and step.data["to"] == 3
        assert "keeps" in step.note
        deliver_outbox(app, datetime.now(UTC))
        arrived = smtp.wait_for(5)
        assert recipients(arrived[2:]) == [
            "hendra@bank.co.id",
            "rudi@bank.co.id",
            "sari@bank.co.id",
        ]

        # the last level: the ladder ends there
        traveller.move_to(T0 + 200 * H)
        assert sweep(app, datetime.now(UTC)) == 0
        deliver_outbox(app, datetime.now(UTC))
        assert len(smtp.messages) == 5
        assert kinds(the_case(response)) == ["opened", "escalated", "escalated"]


def test_a_case_with_a_contact_logged_after_ten_hours_never_escalates(app, people, make, smtp):
    with time_machine.travel(T0, tick=False) as traveller:
        response = respond(make, people.branch, now=T0, nps=2)
        db.session.commit()
        traveller.move_to(T0 + 10 * H)
        case = the_case(response)
        cases.log_contact(
            case, actor=people.manager, now=T0 + 10 * H, reached=False, channel="phone"
        )
        db.session.commit()
        assert case.first_contact_at == T0 + 10 * H and case.due_at is None
        for hours in (48, 49, 73, 500):
            traveller.move_to(T0 + hours * H)
            assert sweep(app, datetime.now(UTC)) == 0
        case = the_case(response)
        assert (case.level, case.status) == (1, CaseStatus.ACKNOWLEDGED)
        deliver_outbox(app, datetime.now(UTC))
        assert recipients(smtp.wait_for(1)) == ["dewi@bank.co.id"]  # the opening only


def test_the_executive_list_is_configuration(app, people, make, smtp, monkeypatch):
    monkeypatch.setitem(app.config, "CASE_EXECUTIVES", "sari")
    monkeypatch.setitem(app.config, "CASE_LEVEL_HOURS", "1")  # two levels: 1 h, then the last
    response = respond(make, people.branch, now=T0, nps=0)
    db.session.commit()
    assert sweep(app, T0 + H) == 1
    case = the_case(response)
    assert (case.level, case.due_at) == (2, None)
    deliver_outbox(app, T0 + H)
    assert recipients(smtp.wait_for(3)) == [
        "dewi@bank.co.id",
        "hendra@bank.co.id",
        "sari@bank.co.id",
    ]


def test_the_cli_prints_what_it_would_change_and_what_it_changed(app, people, make):
    response = respond(make, people.branch, now=T0, nps=1)
    db.session.commit()
    runner = app.test_cli_runner()
    db.session.commit()
    as_of = (T0 + 49 * H).isoformat()
    dry = runner.invoke(args=["cases", "escalate", "--as-of", as_of, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would escalate level 1 -> 2" in dry.output and "hendra" in dry.output
    assert the_case(response).level == 1
    done = runner.invoke(args=["cases", "escalate", "--as-of", as_of])
    assert done.exit_code == 0, done.output
    assert "escalated level 1 -> 2" in done.output and "hendra@bank.co.id" in done.output
    assert the_case(response).level == 2
    again = runner.invoke(args=["cases", "escalate", "--as-of", as_of])
    assert "nothing due" in again.output
    bad = runner.invoke(args=["cases", "escalate", "--as-of", "tomorrow"])
    assert bad.exit_code != 0 and "ISO 8601" in bad.output


# --- the working-hours clock -------------------------------------------------------------------


def wib(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=ZoneInfo("Asia/Jakarta")).astimezone(UTC)


def test_the_public_holiday_is_the_one_the_holidays_package_knows():
    import holidays

    assert date(2026, 3, 19) in holidays.country_holidays("ID", years=2026)  # Nyepi, Thursday
    assert date(2026, 3, 20) not in holidays.country_holidays("ID", years=2026)


def test_the_working_hours_clock_skips_nights_weekends_and_public_holidays(people):
    branch = people.branch  # 08:00-15:00 Monday to Friday, Asia/Jakarta, Indonesia
    # Friday 14:00 + 2 working hours: 1 h on Friday, the weekend skipped, 1 h on Monday
    assert ladder.due_after(branch, wib(13, 14), 2, working_hours=True) == wib(16, 9)
    # Wednesday 14:00 + 2 h: Thursday 19 March is Nyepi (Day of Silence): Friday 09:00
    assert ladder.due_after(branch, wib(18, 14), 2, working_hours=True) == wib(20, 9)
    # 48 working hours from Wednesday 18th 14:00 (7 h a day): 1 (Wed) + Nyepi + 7 (Fri) +
    # weekend + 5 x 7 (23rd-27th) = 43, weekend, then 5 more on Monday 30th: 13:00
    assert ladder.due_after(branch, wib(18, 14), 48, working_hours=True) == wib(30, 13)
    # before opening counts from the opening; the wall clock just adds
    assert ladder.due_after(branch, wib(16, 6), 3, working_hours=True) == wib(16, 11)
    assert ladder.due_after(branch, wib(18, 14), 48, working_hours=False) == wib(20, 14)
    # a closure of the branch (booking's BranchClosure) is skipped like a holiday
    db.session.add(BranchClosure(branch_id=branch.id, day=date(2026, 3, 16), reason="renovasi"))
    db.session.flush()
    assert ladder.due_after(branch, wib(13, 14), 2, working_hours=True) == wib(17, 9)


def test_the_sweep_on_the_working_hours_clock(app, people, make, monkeypatch):
    monkeypatch.setitem(app.config, "CASE_WORKING_HOURS_CLOCK", "true")
    monkeypatch.setitem(app.config, "CASE_LEVEL_HOURS", "2,1")
    opened = wib(18, 14)  # Wednesday before Nyepi
    response = respond(make, people.branch, now=opened, nps=4)
    db.session.commit()
    assert the_case(response).due_at == wib(20, 9)
    assert sweep(app, wib(19, 23)) == 0  # Nyepi: the clock stood still
    assert sweep(app, wib(20, 9) + timedelta(minutes=1)) == 1
    case = the_case(response)
    assert (case.level, case.due_at) == (2, wib(20, 10))


# --- two sweeps at once ------------------------------------------------------------------------


def test_two_concurrent_sweeps_escalate_and_notify_once(app, people, make):
    responses = [respond(make, people.branch, now=T0, nps=n % 7) for n in range(12)]
    db.session.commit()
    at = T0 + 48 * H + timedelta(minutes=1)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run_sweep():
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                changes = cases.escalate_due(at)
                db.session.commit()
                results.append(changes)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run_sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    moved = sorted(c.case_id for changes in results for c in changes)
    db.session.expire_all()
    ids = sorted(the_case(r).id for r in responses)
    assert moved == ids  # each case once, whoever took it
    assert db.session.scalar(
        select(func.count()).select_from(CaseStep).where(CaseStep.kind == StepKind.ESCALATED)
    ) == len(ids)
    assert db.session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.kind == cases.ESCALATED_KIND)
    ) == len(ids)
    assert {the_case(r).level for r in responses} == {2}


# --- criteria ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer, config, triggers",
    [
        ({"nps": 6}, {}, ["nps<=6"]),
        ({"nps": 7}, {}, []),
        ({"nps": 9, "csat": 2}, {}, ["csat<=2"]),
        ({"nps": 9, "csat": 3, "ces": 2}, {}, ["ces<=2"]),
        ({"nps": 9, "ces": 2}, {"escalate_ces_max": None}, []),
        (
            {"nps": 8, "reasons": ["staff_attitude"]},
            {"escalate_reasons": ["staff_attitude"]},
            ["reason:staff_attitude"],
        ),
        ({"nps": 8, "reasons": ["facilities"]}, {"escalate_reasons": ["staff_attitude"]}, []),
        (
            {"nps": 9, "comment": "Saya sangat KECEWA, tidak dilayani."},
            {"escalate_keywords": ["kecewa", "tidak dilayani"]},
            ["keyword:kecewa", "keyword:tidak dilayani"],
        ),
        (
            {"nps": 9, "comment": "Kekecewaannya sudah hilang"},
            {"escalate_keywords": ["kecewa"]},
            [],
        ),
        ({"nps": 2, "csat": 1}, {"escalate_nps_max": 3}, ["nps<=3", "csat<=2"]),
    ],
)
def test_the_touchpoints_criteria_open_a_case(people, make, answer, config, triggers):
    if config:
        survey = SurveyConfig(branch_id=people.branch.id, service_id=None, **config)
        db.session.add(survey)
        db.session.flush()
        for name, value in config.items():  # a None given at construction gets the default
            setattr(survey, name, value)
        db.session.flush()
    response = respond(make, people.branch, now=T0, **answer)
    case = the_case(response)
    if not triggers:
        assert case is None
    else:
        assert case is not None and case.triggers == triggers


def test_the_survey_owner_owns_level_one_and_one_case_per_response(people, make):
    teller = make.service(people.branch, "teller")
    db.session.add(
        SurveyConfig(branch_id=people.branch.id, service_id=teller.id, owner_id=people.cx.id)
    )
    db.session.flush()
    response = respond(make, people.branch, now=T0, nps=1)
    case = the_case(response)
    assert case.owner_id == people.cx.id
    assert cases.open_case_for(response, now=T0 + H).id == case.id
    assert db.session.scalar(select(func.count()).select_from(Case)) == 1
    # without any manager or owner the case is opened all the same, unowned
    other = respond(make, people.other_branch, now=T0, nps=1)
    assert the_case(other).owner_id == people.other_manager.id
    people.other_manager.active = False
    third = respond(make, people.other_branch, now=T0, nps=1)
    assert the_case(third).owner_id is None


# --- case work ---------------------------------------------------------------------------------


def test_the_case_work_and_its_illegal_steps(people, make):
    response = respond(make, people.branch, now=T0, nps=2)
    case = the_case(response)
    actor = people.manager
    cases.acknowledge(case, actor=actor, now=T0 + H)
    with pytest.raises(Conflict):
        cases.acknowledge(case, actor=actor, now=T0 + H)
    with pytest.raises(InvalidInput):
        cases.log_contact(case, actor=actor, now=T0 + H, reached=True, channel="pigeon")
    with pytest.raises(InvalidInput):
        cases.add_note(case, actor=actor, now=T0 + H, note="   ")
    cases.add_note(case, actor=actor, now=T0 + H, note="Nasabah minta ditelepon sore")
    cases.reassign(case, actor=actor, now=T0 + 2 * H, to_user=people.cx)
    assert case.owner_id == people.cx.id
    with pytest.raises(Conflict):
        cases.reassign(case, actor=actor, now=T0 + 2 * H, to_user=people.cx)
    with pytest.raises(InvalidInput):  # a teller does not work on cases
        cases.reassign(case, actor=actor, now=T0 + 2 * H, to_user=people.staff)
    with pytest.raises(InvalidInput):  # another branch's manager
        cases.reassign(case, actor=actor, now=T0 + 2 * H, to_user=people.other_manager)
    cases.reassign(case, actor=actor, now=T0 + 2 * H, department="Operations")
    assert case.department == "Operations"

    # resolving needs a contact attempt, then all three fields
    full = {"root_cause": "process", "reason_code": "waiting_time", "action_taken": "Maaf"}
    with pytest.raises(Conflict) as refused:
        cases.resolve(case, actor=actor, now=T0 + 3 * H, **full)
    assert refused.value.code == "no_contact"
    cases.log_contact(case, actor=actor, now=T0 + 3 * H, reached=True, channel="whatsapp")
    for missing in full:
        with pytest.raises(InvalidInput) as invalid:
            cases.resolve(case, actor=actor, now=T0 + 3 * H, **{**full, missing: None})
        assert invalid.value.status == 422 and missing in invalid.value.message
    with pytest.raises(InvalidInput):
        cases.resolve(case, actor=actor, now=T0 + 3 * H, **{**full, "root_cause": "planet"})
    cases.resolve(case, actor=actor, now=T0 + 4 * H, **full)
    assert case.status == CaseStatus.RESOLVED and case.root_cause.value == "process"
    for illegal in (
        lambda: cases.resolve(case, actor=actor, now=T0 + 5 * H, **full),
        lambda: cases.acknowledge(case, actor=actor, now=T0 + 5 * H),
        lambda: cases.log_contact(case, actor=actor, now=T0 + 5 * H, reached=True, channel="sms"),
        lambda: cases.reassign(case, actor=actor, now=T0 + 5 * H, department="Legal"),
    ):
        with pytest.raises(Conflict):
            illegal()
    assert kinds(case) == [
        "opened",
        "acknowledged",
        "note",
        "reassigned",
        "reassigned",
        "contact",
        "resolved",
    ]  # no customer contact on file: no recovery survey
    assert all(s.actor_id == actor.id for s in case.steps[1:])


# --- the recovery survey -----------------------------------------------------------------------


def resolved_case(people, make, *, email="rina@example.co.id", locale="en", **scores):
    person = customer(email=email, locale=locale)
    response = respond(make, people.branch, now=T0, person=person, **(scores or {"nps": 2}))
    case = the_case(response)
    cases.log_contact(case, actor=people.manager, now=T0 + H, reached=True, channel="phone")
    cases.resolve(
        case,
        actor=people.manager,
        now=T0 + 2 * H,
        root_cause="people",
        reason_code="staff_attitude",
        action_taken="Called, apologised, coached the teller",
    )
    db.session.commit()
    return case


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def answer(client, link: str, nps) -> tuple[int, str]:
    path = link.split("://", 1)[-1]
    path = path[path.index("/") :]
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    response = client.post(
        path.split("?")[0],
        data={"nps": str(nps), "csrf_token": csrf_of(page.get_data(as_text=True))},
    )
    return response.status_code, response.get_data(as_text=True)


def test_a_happy_recovery_answer_converts_the_detractor(app, people, make, smtp, client):
    case = resolved_case(people, make)
    assert kinds(case)[-1] == "recovery_sent"
    deliver_outbox(app, T0 + 2 * H)
    mail = next(m for m in smtp.wait_for(2) if str(m["To"]) == "rina@example.co.id")
    assert "how likely are you now" in mail.get_content()  # in the customer's language (English)
    link = re.search(r"https?://\S+/r/case/\S+", mail.get_content()).group(0)
    status, page = answer(client, link, 10)
    assert status == 200 and "Thank you" in page
    case = db.session.get(Case, case.id)
    db.session.refresh(case)
    assert (case.status, case.recovery_nps) == (CaseStatus.RESOLVED, 10)
    assert kinds(case)[-1] == "recovery_answered"
    # the link works once
    again = client.get(link[link.index("/r/case/") :])
    assert "closed" in again.get_data(as_text=True)
    assert queries.detractor_conversion().as_dict() == {"answered": 1, "promoters": 1, "rate": 1.0}


def test_a_still_unhappy_answer_reopens_the_case(app, people, make, client):
    case = resolved_case(people, make)
    message = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.kind == cases.RECOVERY_KIND)
    )
    assert message.recipient == "rina@example.co.id" and message.locale == "en"
    link = re.search(r"https?://\S+/r/case/\S+", message.body).group(0)
    forged = client.get("/r/case/not-a-token")
    assert forged.status_code == 404
    status, _page = answer(client, link, 11)
    assert status == 422
    status, _page = answer(client, link, 5)
    assert status == 200
    case = db.session.get(Case, case.id)
    db.session.refresh(case)
    assert (case.status, case.level, case.recovery_nps) == (CaseStatus.OPEN, 1, 5)
    assert case.root_cause is None and case.first_contact_at is None
    assert case.due_at is not None and case.due_at > T0 + 2 * H  # counted from the answer
    assert kinds(case)[-2:] == ["recovery_answered", "reopened"]
    assert queries.detractor_conversion().as_dict() == {"answered": 1, "promoters": 0, "rate": 0.0}
    # it climbs the ladder again, and its e-mails are new ones (not taken for the old ones)
    assert cases.escalate_due(case.due_at + timedelta(seconds=1))[0].to_level == 2
    db.session.commit()
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == cases.ESCALATED_KIND)
        )
        == 1
    )


def test_conversion_counts_only_cases_opened_from_detractors(people, make):
    assert queries.detractor_conversion().rate is None
    resolved_case(people, make, nps=3)
    # opened by its CSAT, not a detractor: its answer does not count
    passive = resolved_case(people, make, email="a@example.co.id", nps=8, csat=1)
    cases.answer_recovery(passive, round_=1, nps=10, now=T0 + 3 * H)
    assert queries.detractor_conversion().as_dict() == {"answered": 0, "promoters": 0, "rate": None}


def test_the_demo_cases_stand_at_every_point_of_the_ladder(people):
    from queue_app.cases.demo import seed_demo_cases

    now = T0 + 200 * H
    ids = seed_demo_cases(None, now)
    assert len(ids) == 12  # six stories in each of the two branches
    rows = [
        db.session.get(Case, i)
        for i in ids
        if db.session.get(Case, i).branch_id == people.branch.id
    ]
    by_level = sorted((c.level, c.status.value) for c in rows)
    assert by_level == [
        (1, "acknowledged"),
        (1, "open"),
        (1, "open"),
        (1, "resolved"),
        (2, "open"),
        (3, "open"),
    ]
    assert queries.detractor_conversion(branch_ids=[people.branch.id]).as_dict() == {
        "answered": 2,
        "promoters": 1,
        "rate": 0.5,
    }
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert seed_demo_cases(None, now) == []  # a second run adds nothing
