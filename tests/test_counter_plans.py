"""A counter's plan (`branches/plans.py`): checking it, its absences in the branch's own zone,
`set_counter_plan`, and changing it on the settings page and through the settings API."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from queue_app.accounts.models import Role
from queue_app.branches import plans
from queue_app.branches.models import Branch, Counter
from queue_app.core.errors import NotAllowed
from queue_app.extensions import db
from queue_app.i18n import ensure_compiled

from .apihelp import API, assert_error, assert_invalid, ok
from .test_branch_settings import PAGE, PASSWORD, form_of, fresh, signed_in

SETTINGS = f"{API}/branches/JKT01/settings"
TUESDAY = date(2026, 3, 3)
FRIDAY = date(2026, 3, 6)
SATURDAY = date(2026, 3, 7)
LUNCH = {"tue": {"breaks": [["12:00", "12:30"]]}}


@pytest.fixture(scope="module", autouse=True)
def compiled(app):
    ensure_compiled(app)


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


# --- checking a plan -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plan",
    [
        None,
        {},
        {"mon": None},
        {"mon": {}},
        {"mon": {"hours": ["08:30", "14:00"], "breaks": [["12:00", "12:30"]]}},
        {"fri": {"breaks": [["11:30", "13:00"], ["14:00", "14:15"]]}},
        {"sat": {"hours": ["08:00", "12:00"], "breaks": []}},
        {"sun": {"hours": None, "breaks": [["10:00", "10:15"], ["10:15", "10:30"]]}},
    ],
)
def test_good_plans(plan):
    assert plans.check_plan(plan) == {}


@pytest.mark.parametrize(
    ("plan", "part", "problem"),
    [
        ([], "plan", None),
        ("08:00", "plan", None),
        ({"monday": {}}, "monday", None),
        ({"0": {}}, "0", None),
        ({"mon": []}, "mon", None),
        ({"mon": {"hours": ["8:30", "14:00"]}}, "mon.hours", plans.NOT_A_TIME),
        ({"mon": {"hours": ["24:00", "14:00"]}}, "mon.hours", plans.NOT_A_TIME),
        ({"mon": {"hours": ["08:00"]}}, "mon.hours", plans.NOT_A_PAIR),
        ({"mon": {"hours": "08:00-14:00"}}, "mon.hours", plans.NOT_A_PAIR),
        ({"mon": {"hours": [800, 1400]}}, "mon.hours", plans.NOT_A_TIME),
        ({"mon": {"hours": ["14:00", "08:00"]}}, "mon.hours", plans.START_BEFORE_END),
        ({"mon": {"hours": ["08:00", "08:00"]}}, "mon.hours", plans.START_BEFORE_END),
        ({"tue": {"breaks": [["12:30", "12:00"]]}}, "tue.breaks", plans.START_BEFORE_END),
        (
            {"tue": {"breaks": [["12:00", "12:30"], ["12:15", "12:45"]]}},
            "tue.breaks",
            plans.OVERLAP,
        ),
        (
            {"tue": {"hours": ["08:00", "12:00"], "breaks": [["11:45", "12:15"]]}},
            "tue.breaks",
            plans.OUTSIDE_HOURS,
        ),
        (
            {"tue": {"hours": ["09:00", "15:00"], "breaks": [["08:30", "09:15"]]}},
            "tue.breaks",
            plans.OUTSIDE_HOURS,
        ),
        ({"tue": {"breaks": "12:00-12:30"}}, "tue.breaks", None),
        ({"tue": {"breaks": [["12:00", "12:05"]] * 7}}, "tue.breaks", plans.TOO_MANY),
        ({"tue": {"pause": []}}, "tue.pause", None),
    ],
)
def test_bad_plans_name_the_bad_part(plan, part, problem):
    problems = plans.check_plan(plan)
    assert part in problems, problems
    if problem is not None:
        assert problems[part] == problem


def test_the_stored_form_is_in_week_order_with_breaks_sorted():
    plan = {
        "fri": {"breaks": [["14:00", "14:15"], ["11:30", "13:00"]]},
        "mon": {"hours": ["08:30", "14:00"]},
        "wed": {"breaks": []},
        "thu": None,
    }
    assert plans.normalise_plan(plan) == {
        "mon": {"hours": ["08:30", "14:00"]},
        "fri": {"breaks": [["11:30", "13:00"], ["14:00", "14:15"]]},
    }
    assert list(plans.normalise_plan(plan)) == ["mon", "fri"]


# --- absences in the branch's zone -----------------------------------------------------------


@pytest.mark.parametrize(("zone", "offset"), [("Asia/Jakarta", 7), ("Asia/Makassar", 8)])
def test_absences_are_local_times_of_the_branch(make, zone, offset):
    b = make.branch(timezone=zone, counters=[("Teller 1", ["teller"]), ("CS 1", ["cs"])])
    teller, cs = make.counter(b, "Teller 1"), make.counter(b, "CS 1")
    teller.plan = {
        "tue": {"hours": ["09:00", "14:00"], "breaks": [["12:00", "12:30"]]},
        "fri": {"breaks": [["11:30", "13:00"]]},
    }
    absences = plans.counter_absences(teller, TUESDAY)
    # 08:00-09:00 before it opens, its lunch, 14:00-15:00 after it closes (branch 08:00-15:00)
    assert absences == [
        (utc(TUESDAY, 8 - offset), utc(TUESDAY, 9 - offset)),
        (utc(TUESDAY, 12 - offset), utc(TUESDAY, 12 - offset, 30)),
        (utc(TUESDAY, 14 - offset), utc(TUESDAY, 15 - offset)),
    ]
    assert all(a.tzinfo is not None and str(a.tzinfo) == zone for a, _b in absences)
    assert plans.staffed_until(teller, TUESDAY) == utc(TUESDAY, 14 - offset)
    assert plans.counter_absences(teller, FRIDAY) == [
        (utc(FRIDAY, 11 - offset, 30), utc(FRIDAY, 13 - offset))
    ]
    assert plans.staffed_until(teller, FRIDAY) == utc(FRIDAY, 15 - offset)
    # Saturday: the branch is closed (the factory opens Monday to Friday)
    assert plans.counter_absences(teller, SATURDAY) == []
    assert plans.staffed_until(teller, SATURDAY) is None
    # no plan: the branch's hours, no absence
    assert plans.counter_absences(cs, TUESDAY) == []
    assert plans.staffed_until(cs, TUESDAY) == utc(TUESDAY, 15 - offset)


def test_hours_wider_than_the_branch_add_no_absence(make):
    b = make.branch(counters=[("Teller 1", ["teller"])])
    c = make.counter(b, "Teller 1")
    c.plan = {"tue": {"hours": ["07:00", "16:00"]}}
    assert plans.counter_absences(c, TUESDAY) == []
    assert plans.staffed_until(c, TUESDAY) == utc(TUESDAY, 8)  # never after the branch's 15:00
    c.plan = {"tue": {"hours": ["15:30", "17:00"]}}  # outside the branch's hours: away all day
    assert plans.counter_absences(c, TUESDAY) == [(utc(TUESDAY, 1), utc(TUESDAY, 8))]


# --- the service -----------------------------------------------------------------------------


def test_set_counter_plan_writes_and_logs_after_the_commit(floor, now, caplog):
    caplog.set_level(logging.INFO, logger="queue_app.branches.settings")
    counter = floor.counters["Teller 1"]
    plan = {"tue": {"breaks": [["12:30", "13:00"], ["10:00", "10:15"]]}, "wed": {}}
    done = plans.set_counter_plan(counter, plan, actor=floor.manager, now=now)
    assert [(c.field, c.old, c.new) for c in done] == [
        (
            "counters.Teller 1.plan",
            {},
            {"tue": {"breaks": [["10:00", "10:15"], ["12:30", "13:00"]]}},
        )
    ]
    assert not any("changed by" in r.getMessage() for r in caplog.records)
    db.session.commit()
    assert sum("changed by dewi" in r.getMessage() for r in caplog.records) == 1
    assert fresh(Counter, counter.id).plan == done[0].new
    # the same plan again: no change
    assert plans.set_counter_plan(counter, done[0].new, actor=floor.manager, now=now) == []
    # no plan: stored as an empty plan
    cleared = plans.set_counter_plan(counter, None, actor=floor.manager, now=now)
    assert cleared[0].new == {}
    db.session.commit()
    assert fresh(Counter, counter.id).plan == {}


def test_a_bad_plan_writes_nothing(floor, now):
    counter = floor.counters["Teller 1"]
    plans.set_counter_plan(counter, LUNCH, actor=floor.manager, now=now)
    db.session.commit()
    bad = {"tue": {"breaks": [["12:00", "12:30"]]}, "wed": {"hours": ["16:00", "09:00"]}}
    with pytest.raises(plans.InvalidPlan) as caught:
        plans.set_counter_plan(counter, bad, actor=floor.manager, now=now)
    assert caught.value.status == 422 and caught.value.code == "invalid_settings"
    assert caught.value.problems == {"wed.hours": plans.START_BEFORE_END}
    assert "counters.Teller 1.plan.wed.hours" in caught.value.fields
    db.session.rollback()
    assert fresh(Counter, counter.id).plan == LUNCH


def test_only_admins_and_the_branch_managers_may_set_a_plan(floor, make, now):
    counter = floor.counters["Teller 1"]
    for actor in (floor.staff, make.user(role=Role.BRANCH_MANAGER, branches=[floor.other_branch])):
        with pytest.raises(NotAllowed):
            plans.set_counter_plan(counter, LUNCH, actor=actor, now=now)
    stored = db.session.scalar(select(Counter.plan).where(Counter.id == counter.id))
    assert stored is None


# --- the API ---------------------------------------------------------------------------------


def test_the_api_shows_and_changes_the_plans(client, floor):
    body = ok(client.get(SETTINGS, headers=floor.h_manager))
    assert body["counters"]["Teller 1"] == {"plan": {}}
    assert set(body["counters"]) == {"Teller 1", "Teller 2", "CS 1", "Kredit 1"}
    plan = {"fri": {"breaks": [["11:30", "13:00"]]}, "tue": {"hours": ["08:00", "14:00"]}}
    body = ok(
        client.patch(
            SETTINGS,
            headers=floor.h_manager,
            json={"remote_intake": False, "counters": {"CS 1": {"plan": plan}}},
        )
    )
    assert body["counters"]["CS 1"]["plan"] == {
        "tue": {"hours": ["08:00", "14:00"]},
        "fri": {"breaks": [["11:30", "13:00"]]},
    }
    assert {c["field"] for c in body["changes"]} == {"remote_intake", "counters.CS 1.plan"}
    assert fresh(Counter, floor.counters["CS 1"].id).plan == body["counters"]["CS 1"]["plan"]
    body = ok(
        client.patch(SETTINGS, headers=floor.h_admin, json={"counters": {"CS 1": {"plan": None}}})
    )
    assert body["counters"]["CS 1"]["plan"] == {}


@pytest.mark.parametrize(
    ("counters", "path"),
    [
        (
            {"CS 1": {"plan": {"tue": {"hours": ["15:00", "08:00"]}}}},
            "counters.CS 1.plan.tue.hours",
        ),
        (
            {"CS 1": {"plan": {"tue": {"breaks": [["12:00", "13:00"], ["12:30", "13:30"]]}}}},
            "counters.CS 1.plan.tue.breaks",
        ),
        ({"CS 1": {"plan": {"someday": {}}}}, "counters.CS 1.plan.someday"),
        ({"CS 1": {"plan": []}}, "counters.CS 1"),
        ({"CS 1": {"plan": "lunch"}}, "counters.CS 1"),
        ({"CS 1": {}}, "counters.CS 1"),
        ({"CS 1": {"plan": {}, "colour": "red"}}, "counters.CS 1"),
        ({"Loket 9": {"plan": {}}}, "counters.Loket 9"),
        ({"CS 1": []}, "counters.CS 1"),
        ([], "counters"),
    ],
)
def test_the_api_refuses_a_bad_plan_and_writes_nothing(client, floor, counters, path):
    response = client.patch(
        SETTINGS, headers=floor.h_manager, json={"remote_intake": False, "counters": counters}
    )
    assert_invalid(response, path, ctx=counters)
    b = fresh(Branch, floor.branch.id)
    assert b.remote_intake is True  # the valid part of the body is not applied either
    assert fresh(Counter, floor.counters["CS 1"].id).plan is None


def test_only_managers_change_plans_through_the_api(client, floor):
    body = {"counters": {"CS 1": {"plan": LUNCH}}}
    assert_error(client.patch(SETTINGS, json=body, headers=floor.h_staff), 403)
    assert fresh(Counter, floor.counters["CS 1"].id).plan is None


# --- the page --------------------------------------------------------------------------------


@pytest.fixture
def people(make, monkeypatch):
    """JKT01 (three counters) with its manager dewi, as tests/test_branch_settings.py has it."""
    from .apihelp import fast_passwords

    fast_passwords(monkeypatch)
    jkt = make.branch(
        "JKT01", counters=[("Teller 1", ["teller"]), ("Teller 2", ["teller"]), ("CS 1", ["cs"])]
    )
    make.user("dewi", role=Role.BRANCH_MANAGER, branches=[jkt], password=PASSWORD)
    db.session.commit()
    return {"jkt": jkt}


def plan_field(counter: Counter, day: str, part: str) -> str:
    return f"plan-{counter.id}-{day}-{part}"


def test_the_page_shows_each_counters_plan(app, people):
    teller = next(c for c in people["jkt"].counters if c.name == "Teller 1")
    teller.plan = {"tue": {"hours": ["08:30", "14:00"], "breaks": [["12:00", "12:30"]]}}
    db.session.commit()
    manager = signed_in(app, "dewi")
    form = form_of(manager)
    assert form[plan_field(teller, "tue", "from")] == "08:30"
    assert form[plan_field(teller, "tue", "to")] == "14:00"
    assert form[plan_field(teller, "tue", "breaks")] == "12:00-12:30"
    assert form[plan_field(teller, "mon", "from")] == ""
    # the days the branch opens (Monday to Friday here), not the weekend
    assert plan_field(teller, "sat", "from") not in form
    html = manager.get(PAGE).get_data(as_text=True)
    assert 'data-testid="plans"' in html and "Asia/Jakarta" in html


def test_saving_a_plan_on_the_page(app, people, caplog):
    caplog.set_level(logging.INFO, logger="queue_app.branches.settings")
    counters = {c.name: c for c in people["jkt"].counters}
    counters["CS 1"].plan = {"sun": {"breaks": [["10:00", "10:30"]]}}  # a day the page hides
    db.session.commit()
    manager = signed_in(app, "dewi")
    form = form_of(manager)
    teller = counters["Teller 1"]
    form[plan_field(teller, "mon", "from")] = "8:30"
    form[plan_field(teller, "mon", "to")] = "14.00"
    form[plan_field(teller, "mon", "breaks")] = "12:00 - 12:30; 10:00-10:15"
    form[plan_field(teller, "fri", "breaks")] = "11:30-13:00"
    form[plan_field(counters["CS 1"], "tue", "breaks")] = "12:30-13:00"
    response = manager.post(PAGE, data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert fresh(Counter, teller.id).plan == {
        "mon": {"hours": ["08:30", "14:00"], "breaks": [["10:00", "10:15"], ["12:00", "12:30"]]},
        "fri": {"breaks": [["11:30", "13:00"]]},
    }
    assert fresh(Counter, counters["CS 1"].id).plan == {
        "tue": {"breaks": [["12:30", "13:00"]]},
        "sun": {"breaks": [["10:00", "10:30"]]},
    }
    assert fresh(Counter, counters["Teller 2"].id).plan is None  # untouched: not written
    assert sum("changed by dewi" in r.getMessage() for r in caplog.records) == 2
    # the page shows it as stored; saving it again unchanged writes nothing
    form = form_of(manager)
    assert form[plan_field(teller, "mon", "breaks")] == "10:00-10:15, 12:00-12:30"
    assert manager.post(PAGE, data=form).status_code == 302
    assert sum("changed by dewi" in r.getMessage() for r in caplog.records) == 2
    # emptied cells: the branch's hours, no breaks
    for part in ("from", "to", "breaks"):
        form[plan_field(teller, "mon", part)] = ""
    form[plan_field(teller, "fri", "breaks")] = ""
    assert manager.post(PAGE, data=form).status_code == 302
    assert fresh(Counter, teller.id).plan == {}


@pytest.mark.parametrize(
    ("part", "value", "error_part"),
    [
        ("from", "8", "from"),
        ("from", "25:00", "from"),
        ("to", "", "to"),  # only one of the two times
        ("from", "14:00", "from"),  # opens after it closes (to 13:00)
        ("breaks", "12:00", "breaks"),
        ("breaks", "lunch", "breaks"),
        ("breaks", "12:00-12:30, 12:15-12:45", "breaks"),
        ("breaks", "13:30-14:00", "breaks"),  # after its closing at 13:00
        ("breaks", "12:30-12:00", "breaks"),
    ],
)
def test_a_bad_plan_on_the_page_is_refused_and_nothing_is_saved(
    app, people, part, value, error_part
):
    teller = next(c for c in people["jkt"].counters if c.name == "Teller 1")
    manager = signed_in(app, "dewi")
    form = form_of(manager)
    form[plan_field(teller, "wed", "from")] = "09:00"
    form[plan_field(teller, "wed", "to")] = "13:00"
    form[plan_field(teller, "wed", part)] = value
    form["check_in_late_min"] = "25"  # a valid change in the same form
    response = manager.post(PAGE, data=form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    name = plan_field(teller, "wed", error_part)
    assert f'id="error-{name}"' in html and 'role="alert"' in html
    assert re.search(rf'name="{name}"[^>]*value="{re.escape(value)}"', html, re.S), value
    assert re.search(rf'id="{name}"[^>]*aria-invalid="true"', html, re.S)
    assert fresh(Counter, teller.id).plan is None
    assert fresh(Branch, people["jkt"].id).check_in_late_s == 900


def test_the_plan_table_names_the_days_in_the_page_language(app, people):
    manager = signed_in(app, "dewi")
    english = manager.get(f"{PAGE}?lang=en").get_data(as_text=True)
    assert "Counter plans" in english and "Tuesday" in english
    indonesian = manager.get(f"{PAGE}?lang=id").get_data(as_text=True)
    assert "Selasa" in indonesian and "Tuesday" not in indonesian


def test_a_plan_written_around_the_service_is_ignored_not_fatal(make, caplog):
    b = make.branch(counters=[("Teller 1", ["teller"])])
    c = make.counter(b, "Teller 1")
    c.plan = {"tue": {"breaks": [["12:00", "lunch"]]}}
    with caplog.at_level(logging.WARNING, logger="queue_app.branches.plans"):
        assert plans.counter_absences(c, TUESDAY) == []
    assert plans.staffed_until(c, TUESDAY) == utc(TUESDAY, 8)
    assert "invalid plan" in caplog.text
