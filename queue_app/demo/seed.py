"""Create the demo network. Idempotent: what exists already is left as it is."""

from __future__ import annotations

import random
import secrets
from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import insert, select

from ..accounts.models import Role, User
from ..accounts.services import create_user
from ..alerts.demo import seed_demo_rules
from ..branches.models import Branch, Counter, CounterService, PriorityPolicy, Service
from ..cases.demo import seed_demo_cases
from ..customers.models import Customer
from ..devices.models import Device, DeviceKind
from ..devices.services import digest
from ..extensions import db
from ..insights.services import roll_up_branch
from ..tickets.models import Priority, Source, Ticket, TicketStatus, Visit
from ..tickets.services import TOKEN_BYTES, format_number, issue_ticket
from . import data
from .feedback import write_feedback


def database_is_empty() -> bool:
    return db.session.scalar(select(Branch.id).limit(1)) is None


def seed(now) -> list[tuple[str, str, str, str]]:
    """Create what is missing; returns (username, role, branches, password) of new accounts."""
    created: list[tuple[str, str, str, str]] = []
    first_time = database_is_empty()
    admin = _user("admin", "Administrator", Role.ADMIN, [], None, None, created)
    for spec in data.BRANCHES:
        branch = _branch(spec, now)
        services = {s.code: s for s in branch.services}
        mgr_name, mgr_display = spec["manager"]
        manager = _user(mgr_name, mgr_display, Role.BRANCH_MANAGER, [branch], None, admin, created)
        for username, display, skills in spec["staff"]:
            _user(
                username,
                display,
                Role.STAFF,
                [branch],
                [services[c] for c in skills],
                manager,
                created,
            )
    every_branch = db.session.scalars(select(Branch).order_by(Branch.code)).all()
    for username, display, role in data.NETWORK_USERS[1:]:
        role = Role(role)
        # the CX team works cases of every branch; executives see the network by their role
        branches = every_branch if role == Role.CX_AGENT else []
        _user(username, display, role, branches, [] if branches else None, admin, created)
    customers = _customers()
    if current_app.config.get("PROFILE") != "production":
        _devices(admin, now)
    db.session.flush()
    seed_demo_rules(now)  # alert thresholds on every branch (those without rules)
    if first_time:
        # on by default; the test profile leaves it out (thousands of rows every seed)
        if current_app.config.get("DEMO_HISTORY", not current_app.testing):
            _history(now)
            # ratings for a share of those visits, for the CX metrics (no cases opened)
            write_feedback(data.HISTORY_BRANCHES, now)
            # and a few cases at every level, so /cx/cases shows the ladder at work
            seed_demo_cases(None, now)
        _opening_queue(now, customers)
    return created


def _branch(spec, now) -> Branch:
    branch = db.session.scalar(select(Branch).where(Branch.code == spec["code"]))
    if branch is not None:
        if branch.latitude is None and branch.longitude is None:  # seeded before 0006
            branch.latitude, branch.longitude = spec["latitude"], spec["longitude"]
        shifts = dict(
            zip(
                (n for n, _codes in spec["counters"]),
                data.lunch_shifts(spec["counters"]),
                strict=True,
            )
        )
        for counter in branch.counters:
            if counter.plan is None and counter.name in shifts:  # seeded before 0011
                counter.plan = data.counter_plan(shifts[counter.name], spec["country"])
        return branch
    branch = Branch(
        code=spec["code"],
        name=spec["name"],
        timezone=spec["timezone"],
        locale=spec["locale"],
        country=spec["country"],
        city=spec["city"],
        address=spec["address"],
        latitude=spec["latitude"],
        longitude=spec["longitude"],
        opening_hours=data.hours(),
        priority_policy=PriorityPolicy(spec["policy"]),
        interleave_priority=1,
        interleave_normal=2,
        aging_boost_s=600,
        recall_limit=3,
        appointment_early_s=300,
        appointment_grace_s=900,
        transfer_keeps_place=True,
        event_seq=0,
        created_at=now,
    )
    db.session.add(branch)
    by_code = {}
    for position, (code, prefix, name_id, name_en, segment, duration, target) in enumerate(
        spec["services"]
    ):
        primary = name_id if spec["locale"] == "id" else name_en
        service = Service(
            branch=branch,
            code=code,
            prefix=prefix,
            name=primary,
            names={"id": name_id, "en": name_en},
            segment=segment,
            expected_duration_s=duration,
            target_wait_s=target,
            position=position,
        )
        db.session.add(service)
        by_code[code] = service
    shifts = data.lunch_shifts(spec["counters"])
    for position, (name, codes) in enumerate(spec["counters"]):
        counter = Counter(
            branch=branch,
            name=name,
            position=position,
            plan=data.counter_plan(shifts[position], spec["country"]),
        )
        counter.service_links = [
            CounterService(service=by_code[c], position=i) for i, c in enumerate(codes)
        ]
        db.session.add(counter)
    db.session.flush()
    db.session.refresh(branch)
    return branch


def _user(username, display, role, branches, services, manager, created) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is not None:
        return user
    user = create_user(
        username,
        role=role,
        password=data.DEMO_PASSWORD,
        display_name=display,
        branches=branches,
        services=services,
        manager=manager,
        locale="en" if branches and branches[0].locale == "en" else None,
    )
    created.append(
        (username, role.value, ",".join(b.code for b in branches) or "*", data.DEMO_PASSWORD)
    )
    return user


def _devices(admin: User, now) -> list[Device]:
    """The paired demo kiosk and display (data.DEMO_DEVICES), with their public tokens."""
    result = []
    for kind, name, code, token in data.DEMO_DEVICES:
        device = db.session.scalar(select(Device).where(Device.token_hash == digest(token)))
        if device is None:
            branch = db.session.scalar(select(Branch).where(Branch.code == code))
            device = Device(
                kind=DeviceKind(kind),
                name=name,
                branch=branch,
                token_hash=digest(token),
                settings={},
                created_at=now,
                paired_at=now,
                paired_by=admin,
            )
            db.session.add(device)
        result.append(device)
    return result


def _customers() -> list[Customer]:
    result = []
    for name, phone, cif in data.CUSTOMERS:
        customer = db.session.scalar(select(Customer).where(Customer.phone == phone))
        if customer is None:
            customer = Customer(
                name=name,
                phone=phone,
                external_id=cif,
                locale="id",
                consent_contact=True,
                consent_survey=True,
            )
            db.session.add(customer)
        result.append(customer)
    return result


def _opening_queue(now, customers) -> list[Ticket]:
    branch = db.session.scalar(select(Branch).where(Branch.code == "JKT01"))
    services = {s.code: s for s in branch.services}
    tickets = []
    # never before the branch's business day began: just after local midnight, minutes ago
    # are yesterday, whose numbers the history already took
    day_start = datetime.combine(branch.business_day(now), time(0), tzinfo=branch.tz)
    for i, (code, priority, customer_index) in enumerate(data.OPENING_QUEUE):
        moment = now - timedelta(minutes=2 * (len(data.OPENING_QUEUE) - i))
        moment = max(moment, min(now, day_start + timedelta(seconds=i)))
        tickets.append(
            issue_ticket(
                branch,
                services[code],
                now=moment,
                priority=Priority(priority),
                source=Source.KIOSK,
                customer=customers[customer_index] if customer_index is not None else None,
            )
        )
    return tickets


def _history(now) -> int:
    """Finished visits of the `data.HISTORY_DAYS` days before today at the branches of
    `data.HISTORY_BRANCHES` (deterministic but for the visit tokens), inserted in bulk, then
    rolled up for the busy-hours chart. The tickets issued; only on the first seed."""
    issued = 0
    for code in data.HISTORY_BRANCHES:
        branch = db.session.scalar(select(Branch).where(Branch.code == code))
        issued += _branch_history(branch, now)
        roll_up_branch(branch, now=now, lookback_days=data.HISTORY_DAYS)
    return issued


def _branch_history(branch: Branch, now) -> int:
    rng = random.Random(f"demo-history-{branch.code}")  # repeatable demo data  # nosec B311
    today = branch.business_day(now)
    branch_load = data.HISTORY_BRANCH_LOAD.get(branch.code, 0.8)
    serving = {}
    for counter in branch.counters:
        for service in counter.services:
            serving.setdefault(service.id, counter.id)
    visits, tickets = [], []
    for back in range(data.HISTORY_DAYS, 0, -1):
        day = today - timedelta(days=back)
        spans = branch.hours_on(day)
        day_load = data.HISTORY_WEEKDAY_LOAD[day.weekday()] * branch_load
        for service in branch.services:
            rate = data.HISTORY_ARRIVALS_PER_HOUR.get(service.code, 1)
            arrivals = []
            for opens, closes in spans:
                for hour in range(opens.hour, closes.hour):
                    load = data.HISTORY_HOUR_LOAD.get(hour, 0.7) * day_load
                    count = max(0, round(rate * load + rng.uniform(-1, 1)))
                    start = datetime.combine(day, time(hour), tzinfo=branch.tz)
                    for _ in range(count):
                        arrived = start + timedelta(seconds=rng.randrange(3600))
                        # waits grow with the square of the load: under half the target at
                        # a quiet hour, about twice the target at the busiest peak
                        wait = service.target_wait_s * (0.2 + 0.55 * load * load)
                        arrivals.append((arrived, round(wait * rng.uniform(0.7, 1.3))))
            arrivals.sort()
            for sequence, (arrived, wait) in enumerate(arrivals, start=1):
                arrived = arrived.astimezone(now.tzinfo)
                called = arrived + timedelta(seconds=wait)
                started = called + timedelta(seconds=rng.randrange(20, 90))
                finished = started + timedelta(
                    seconds=round(service.expected_duration_s * rng.uniform(0.6, 1.4))
                )
                visits.append(
                    {
                        "branch_id": branch.id,
                        "token": secrets.token_urlsafe(TOKEN_BYTES),
                        "arrived_at": arrived,
                        "closed_at": finished,
                    }
                )
                tickets.append(
                    {
                        "step": 1,
                        "branch_id": branch.id,
                        "service_id": service.id,
                        "business_day": day,
                        "sequence": sequence,
                        "number": format_number(service.prefix, sequence),
                        "priority": Priority.NORMAL,
                        "source": Source.KIOSK,
                        "status": TicketStatus.FINISHED,
                        "issued_at": arrived,
                        "queue_since": arrived,
                        "called_at": called,
                        "last_called_at": called,
                        "started_at": started,
                        "finished_at": finished,
                        "recall_count": 0,
                        "counter_id": serving.get(service.id),
                    }
                )
    if not visits:
        return 0
    ids = db.session.scalars(
        insert(Visit).returning(Visit.id, sort_by_parameter_order=True), visits
    ).all()
    for visit_id, ticket in zip(ids, tickets, strict=True):
        ticket["visit_id"] = visit_id
    db.session.execute(insert(Ticket), tickets)
    return len(tickets)
