"""Create the demo network. Idempotent: what exists already is left as it is."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from ..accounts.models import Role, User
from ..accounts.services import create_user
from ..branches.models import Branch, Counter, CounterService, PriorityPolicy, Service
from ..customers.models import Customer
from ..devices.models import Device, DeviceKind
from ..devices.services import digest
from ..extensions import db
from ..tickets.models import Priority, Source, Ticket
from ..tickets.services import issue_ticket
from . import data


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
    if first_time:
        _opening_queue(now, customers)
    return created


def _branch(spec, now) -> Branch:
    branch = db.session.scalar(select(Branch).where(Branch.code == spec["code"]))
    if branch is not None:
        return branch
    branch = Branch(
        code=spec["code"],
        name=spec["name"],
        timezone=spec["timezone"],
        locale=spec["locale"],
        country=spec["country"],
        city=spec["city"],
        address=spec["address"],
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
    for position, (name, codes) in enumerate(spec["counters"]):
        counter = Counter(branch=branch, name=name, position=position)
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
    for i, (code, priority, customer_index) in enumerate(data.OPENING_QUEUE):
        moment = now - timedelta(minutes=2 * (len(data.OPENING_QUEUE) - i))
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
